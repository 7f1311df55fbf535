// The actions on one execution: cancel, pause, resume, retry from failed, rerun, send a signal, approve or
// reject. Each is shown only when the execution's status allows it AND the signed-in user's roles may use it
// (docs/api.md, "Roles": operator controls and signals, approver approves, admin both, viewer only reads);
// the API refuses the rest anyway, and its refusal (a 409 when the status moved on meanwhile) shows in the
// alert. Each action is confirmed in a modal <dialog> first. The page repaints from the live stream, so an
// action only sends its command and tells the page (onSent) to look again.

import { post } from "./api.js";
import { h } from "./dom.js";

const ENDED = new Set(["completed", "failed", "cancelled"]);

/** Whether roles (from GET /api/v1/auth/session) include `role`; admin includes every role. */
export const hasRole = (roles, role) => roles.includes("admin") || roles.includes(role);

// the controls of the operator role: the status that allows each, and the question its dialog asks
const CONTROLS = [
  { label: "Cancel execution", command: "cancel", allowed: (status) => !ENDED.has(status),
    question: "Cancel this execution? Running attempts are stopped and it ends cancelled." },
  { label: "Pause", command: "pause", allowed: (status) => status === "running",
    question: "Pause this execution? No new node starts until it is resumed." },
  { label: "Resume", command: "resume", allowed: (status) => status === "paused",
    question: "Resume this execution?" },
  { label: "Retry from failed", command: "retry", allowed: (status) => status === "failed",
    question: "Retry this execution from its failed nodes? Completed nodes keep their outputs." },
  { label: "Rerun", command: "rerun", allowed: () => true,
    question: "Start a new execution of the same workflow version? Its input is empty." },
];

let dialogs = 0;

/** A modal dialog asking `question`; resolves true when the person confirms, false on "Go back" or Escape. */
export function confirmAction(question, confirmLabel) {
  const titleId = `confirm-title-${++dialogs}`;
  const yes = h("button", { type: "button", class: "primary" }, confirmLabel);
  const no = h("button", { type: "button" }, "Go back");
  const dialog = h("dialog", { class: "confirm", "aria-labelledby": titleId },
    h("p", { id: titleId }, question), h("div", { class: "buttons" }, yes, no));
  document.body.append(dialog);
  return new Promise((resolve) => {
    const close = (answer) => { dialog.close(); dialog.remove(); resolve(answer); };
    yes.addEventListener("click", () => close(true));
    no.addEventListener("click", () => close(false));
    dialog.addEventListener("cancel", (event) => { event.preventDefault(); close(false); }); // Escape
    dialog.showModal();
    no.focus(); // the harmless answer under Enter
  });
}

/**
 * The actions region of an execution page. `update(execution)` redraws its buttons when what they depend on
 * changed (not at every live event, so a half-typed signal survives); `onSent()` runs after each accepted
 * command, with its route; `base` is the console's root, for the link to a rerun.
 */
export function actionsRegion(executionId, roles, { onSent, base }) {
  const path = `/api/v1/executions/${encodeURIComponent(executionId)}`;
  const alert = h("p", { class: "alert", role: "alert" });
  const done = h("p", { class: "done", role: "status" });
  const controls = h("div", { class: "actions" });
  const region = h("section", { class: "actions-region", "aria-labelledby": "actions-title", "data-testid": "actions" },
    h("h2", { id: "actions-title" }, "Actions"), controls, alert, done);
  let drawn = null;

  async function act(question, confirmLabel, route, body, said) {
    alert.textContent = "";
    done.textContent = "";
    if (!(await confirmAction(question, confirmLabel))) return;
    try {
      const answer = await post(`${path}/${route}`, body);
      if (answer && answer.executionId && answer.executionId !== executionId) {
        done.replaceChildren(`${said}: `, h("a", { href: `${base}executions/${encodeURIComponent(answer.executionId)}` }, answer.executionId));
      } else {
        done.textContent = `${said}.`;
      }
      onSent(route);
    } catch (error) {
      alert.textContent = error.message;
    }
  }

  function controlButtons(status) {
    if (!hasRole(roles, "operator")) return [];
    return CONTROLS.filter((control) => control.allowed(status)).map((control) =>
      h("button", { type: "button", "data-command": control.command,
        onclick: () => act(control.question, control.label, control.command, undefined, `${control.label}: sent`) },
      control.label));
  }

  function signalForm() {
    const name = h("input", { id: "signal-name", required: true, maxlength: 100, autocomplete: "off" });
    const payload = h("textarea", { id: "signal-payload", rows: 2, placeholder: "null" });
    const submit = async (event) => {
      event.preventDefault();
      let body;
      try {
        body = payload.value.trim() ? JSON.parse(payload.value) : undefined; // no body: the payload is null
      } catch (error) {
        alert.textContent = `Payload: not valid JSON (${error.message}).`;
        return;
      }
      const signal = name.value.trim();
      await act(`Send signal "${signal}" to this execution?`, "Send signal",
        `signals/${encodeURIComponent(signal)}`, body, `Signal ${signal}: sent`);
    };
    return h("form", { class: "signal", "aria-label": "Send a signal", onsubmit: submit },
      h("label", { for: "signal-name" }, "Signal name"), name,
      h("label", { for: "signal-payload" }, "Payload (JSON)"), payload,
      h("button", { type: "submit" }, "Send signal"));
  }

  function approvalForm(node) {
    const id = `comment-${node.nodeId}`;
    const comment = h("input", { id, autocomplete: "off" });
    const decide = (approve) => {
      const signal = approve ? node.signal : `${node.signal}.reject`; // engine/waits.py rejection_of
      const verb = approve ? "Approve" : "Reject";
      return act(`${verb} ${node.nodeId}?${comment.value ? ` Comment: "${comment.value}"` : ""}`, verb,
        `signals/${encodeURIComponent(signal)}`, { comment: comment.value }, `${verb}: sent`);
    };
    return h("fieldset", { class: "approval", "data-node-id": node.nodeId },
      h("legend", {}, `Approval ${node.nodeId} waits (signal "${node.signal}")`),
      h("label", { for: id }, "Comment"), comment,
      h("button", { type: "button", onclick: () => decide(true) }, "Approve"),
      h("button", { type: "button", onclick: () => decide(false) }, "Reject"));
  }

  function update(execution) {
    const status = execution.status;
    const approvals = ENDED.has(status) || !hasRole(roles, "approver") ? []
      : (execution.nodes || []).filter((node) => node.status === "waiting" && node.waitingFor === "approval" && node.signal);
    const key = JSON.stringify([status, approvals.map((node) => node.nodeId)]);
    if (key === drawn) return;
    drawn = key;
    const parts = [...controlButtons(status)];
    if (!ENDED.has(status) && hasRole(roles, "operator")) parts.push(signalForm());
    parts.push(...approvals.map(approvalForm));
    if (!parts.length) {
      const who = roles.length ? roles.join(", ") : "no role";
      parts.push(h("p", { class: "muted" }, hasRole(roles, "operator") || hasRole(roles, "approver")
        ? `No action applies to a ${status} execution.` : `Your role (${who}) may only read.`));
    }
    controls.replaceChildren(...parts);
  }

  return { region, update };
}
