// One workflow: its graph by node category (a click, or Enter/Space on a focused node, opens the node's
// config beside it), "Run" with an input form (operators and admins, and only when the latest save is valid;
// a draft shows its problems instead), its versions with a line diff of two of them, its schedules and its
// recent executions. Reads: GET /api/v1/workflows/{id}, .../versions(/{n}), /api/v1/schedules?workflowId=,
// /api/v1/executions?workflowId=; writes only POST .../execute.

import { hasRole } from "./actions.js";
import { ApiError, get, getWithTotal, post, query } from "./api.js";
import { h, statusBadge, when } from "./dom.js";
import { drawGraph } from "./graph.js";

const RECENT_EXECUTIONS = 10;
const VERSIONS = 100; // the newest ones offered for a diff
const CONTEXT = 3; // unchanged lines shown around each change
const MAX_EDITS = 2000; // past this many changed lines the diff shows "everything replaced" (Myers is O(N·D))

// --- the line diff ------------------------------------------------------------------------------------------

function walkBack(snaps, a, b) {
  const out = [];
  let x = a.length;
  let y = b.length;
  for (let d = snaps.length - 1; d > 0; d--) {
    const prev = snaps[d - 1]; // the furthest x on each diagonal k in [-(d-1), d-1], at k + d - 1
    const at = (k) => prev[k + d - 1];
    const k = x - y;
    const down = k === -d || (k !== d && at(k - 1) < at(k + 1)); // came down: a line of b inserted
    const prevK = down ? k + 1 : k - 1;
    const prevX = at(prevK);
    const prevY = prevX - prevK;
    for (; x > prevX && y > prevY; y--) out.push([" ", a[--x]]); // the diagonal run after the move
    if (down) out.push(["+", b[--y]]);
    else out.push(["-", a[--x]]);
  }
  for (; x > 0 && y > 0; y--) out.push([" ", a[--x]]);
  return out.reverse();
}

/** Myers' shortest edit script between two arrays of lines, or null past MAX_EDITS changes. */
function myers(a, b) {
  const n = a.length;
  const m = b.length;
  const off = n + m + 1;
  const v = new Int32Array(2 * off + 1);
  const snaps = [];
  for (let d = 0; d <= n + m; d++) {
    if (d > MAX_EDITS) return null;
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[off + k - 1] < v[off + k + 1]) ? v[off + k + 1] : v[off + k - 1] + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) { x++; y++; }
      v[off + k] = x;
      if (x >= n && y >= m) {
        snaps.push(v.slice(off - d, off + d + 1));
        return walkBack(snaps, a, b);
      }
    }
    snaps.push(v.slice(off - d, off + d + 1));
  }
  return [];
}

/** [[mark, line], ...] with mark "+", "-" or " ": b from a, line by line. */
export function diffLines(a, b) {
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) { endA--; endB--; }
  const midA = a.slice(start, endA);
  const midB = b.slice(start, endB);
  const middle = myers(midA, midB) || [...midA.map((line) => ["-", line]), ...midB.map((line) => ["+", line])];
  return [...a.slice(0, start).map((line) => [" ", line]), ...middle, ...a.slice(endA).map((line) => [" ", line])];
}

const lines = (n) => `${n} line${n === 1 ? "" : "s"}`;

function diffView(edits) {
  const changed = edits.map((edit, i) => (edit[0] === " " ? -1 : i)).filter((i) => i >= 0);
  const added = edits.filter((edit) => edit[0] === "+").length;
  const summary = h("p", { class: "diff-summary", role: "status" },
    changed.length ? `${lines(added)} added (+), ${lines(changed.length - added)} removed (-).` : "The two versions are the same.");
  if (!changed.length) return [summary];
  const shown = new Set();
  for (const i of changed) for (let j = i - CONTEXT; j <= i + CONTEXT; j++) shown.add(j);
  const items = [];
  let skipped = 0;
  edits.forEach(([mark, line], i) => {
    if (!shown.has(i)) { skipped++; return; }
    if (skipped) items.push(h("li", { class: "skipped" }, `… ${skipped} unchanged lines`));
    skipped = 0;
    const kind = mark === "+" ? "added" : mark === "-" ? "removed" : "same";
    items.push(h("li", { class: kind, "data-mark": mark }, `${mark} ${line}`));
  });
  if (skipped) items.push(h("li", { class: "skipped" }, `… ${skipped} unchanged lines`));
  return [summary, h("ol", { class: "diff", "aria-label": "Changed lines: + added, - removed" }, items)];
}

// --- the parts of the page ----------------------------------------------------------------------------------

const pretty = (value) => JSON.stringify(value, null, 2);

/** Nodes and edges a draft may hold in any shape: only what can be drawn. */
function drawable(definition) {
  const nodes = (Array.isArray(definition.nodes) ? definition.nodes : []).filter(
    (node) => node && typeof node === "object" && typeof node.id === "string");
  const ids = new Set(nodes.map((node) => node.id));
  const edges = (Array.isArray(definition.edges) ? definition.edges : []).filter(
    (edge) => edge && typeof edge === "object" && ids.has(edge.source) && ids.has(edge.target));
  return { nodes, edges };
}

function problemsRegion(problems) {
  const entries = Object.entries(problems || {});
  return h("section", { class: "problems", "aria-labelledby": "problems-title", "data-testid": "problems" },
    h("h2", { id: "problems-title" }, "Draft: not runnable until these are fixed"),
    h("ul", {}, entries.map(([field, messages]) =>
      h("li", {}, h("code", {}, field), ": ", (Array.isArray(messages) ? messages : [messages]).join(" ")))));
}

function alertText(error) {
  const details = error instanceof ApiError && error.body && error.body.details ? error.body.details : {};
  const lines = Object.entries(details).map(([field, problems]) =>
    `${field}: ${(Array.isArray(problems) ? problems : [problems]).join(" ")}`);
  return [error.message, ...lines].join("\n");
}

function runForm(workflowId, { base, navigate }) {
  const input = h("textarea", { id: "run-input", rows: 5, spellcheck: "false", "aria-describedby": "run-help" }, "{}");
  const alert = h("p", { class: "alert", role: "alert", id: "run-alert" });
  const button = h("button", { type: "submit" }, "Run");
  async function submit(event) {
    event.preventDefault();
    alert.textContent = "";
    input.removeAttribute("aria-invalid");
    let given;
    try {
      given = input.value.trim() ? JSON.parse(input.value) : {};
    } catch (error) {
      return refuse(`Input: not valid JSON (${error.message}).`);
    }
    if (given === null || typeof given !== "object" || Array.isArray(given)) {
      return refuse('Input: must be a JSON object, such as {"n": 1}.');
    }
    button.disabled = true;
    try {
      const answer = await post(`/api/v1/workflows/${encodeURIComponent(workflowId)}/execute`, { input: given });
      if (answer.executionId) return navigate(`${base}executions/${encodeURIComponent(answer.executionId)}`);
      alert.textContent = answer.message; // skipped: the workflow is at its concurrency limit
    } catch (error) {
      alert.textContent = alertText(error);
    }
    button.disabled = false;
  }
  function refuse(message) {
    alert.textContent = message;
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
  return h("section", { class: "run-form", "aria-labelledby": "run-title" },
    h("h2", { id: "run-title" }, "Run"),
    h("form", { "aria-label": "Run this workflow", onsubmit: submit },
      h("label", { for: "run-input" }, "Input (a JSON object)"),
      h("p", { id: "run-help", class: "muted" }, "What the execution.input node outputs. {} for none."),
      input, button, alert));
}

function nodePanel() {
  const body = h("div", {}, h("p", { class: "muted" },
    "Select a node in the graph (click it, or Tab to it and press Enter) to see its configuration."));
  const title = h("h2", { id: "node-title" }, "Node");
  const panel = h("section", { class: "node-panel", "aria-labelledby": "node-title", "data-testid": "node-panel" }, title, body);
  function show(node) {
    title.textContent = `Node ${node.id}`;
    const rows = [["Id", node.id], ["Type", node.nodeType], ["Category", node.type], ["Label", node.label]];
    if (node.retry) rows.push(["Retry", pretty(node.retry)]);
    if (node.timeout !== undefined) rows.push(["Timeout", String(node.timeout)]);
    body.replaceChildren(
      h("dl", {}, rows.flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, value === undefined ? "—" : String(value))])),
      h("h3", {}, "Config"),
      h("pre", { "data-testid": "node-config", tabindex: 0, "aria-label": `Config of ${node.id}` }, pretty(node.config ?? {})),
    );
  }
  return { panel, show };
}

function graphSection(definition) {
  const { nodes, edges } = drawable(definition);
  const byId = new Map(nodes.map((node) => [node.id, node]));
  const graph = drawGraph({ nodes, edges }, { categories: true, focusable: true });
  const details = nodePanel();
  let selected = null;
  function select(group) {
    if (selected) selected.classList.remove("selected");
    selected = group;
    group.classList.add("selected");
    details.show(byId.get(group.dataset.nodeId));
  }
  // one listener for all the nodes (a 500-node graph gets no 1,000 handlers)
  graph.addEventListener("click", (event) => {
    const group = event.target.closest("g.node");
    if (group) select(group);
  });
  graph.addEventListener("keydown", (event) => {
    const group = event.target.closest("g.node");
    if (group && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      select(group);
    }
  });
  const legend = h("p", { class: "legend" }, ["source", "transform", "sink"].map((category) =>
    h("span", {}, h("span", { class: `swatch category-${category}`, "aria-hidden": "true" }), category)));
  return [
    h("h2", {}, "Graph"),
    legend,
    h("div", { class: "graph-and-node" },
      nodes.length ? h("div", { class: "graph-frame" }, graph) : h("p", { class: "muted" }, "No nodes yet."),
      details.panel),
  ];
}

function versionsSection(workflowId, versions, total) {
  const path = (n) => `/api/v1/workflows/${encodeURIComponent(workflowId)}/versions/${n}`;
  const cache = new Map();
  const definitionOf = async (n) => {
    if (!cache.has(n)) cache.set(n, get(path(n)).then((version) => version.definition));
    return cache.get(n);
  };
  const table = h("table", { class: "list versions" },
    h("thead", {}, h("tr", {}, ["Version", "Saved", "By", "Content hash"].map((name) => h("th", { scope: "col" }, name)))),
    h("tbody", {}, versions.map((version) => h("tr", { "data-version": version.number },
      h("td", {}, `v${version.number}`), h("td", {}, when(version.createdAt)), h("td", {}, version.createdBy || "—"),
      h("td", {}, h("code", { title: version.contentHash }, version.contentHash.slice(0, 12)))))));
  const more = total > versions.length ? h("p", { class: "muted" }, `The newest ${versions.length} of ${total} versions.`) : null;
  if (versions.length < 2) {
    return [h("h2", {}, "Versions"), versions.length ? table : h("p", { class: "muted" }, "No valid version yet."),
      h("p", { class: "muted" }, "A diff needs two versions.")];
  }
  const choose = (id, chosen) => h("select", { id }, versions.map((version) =>
    h("option", { value: version.number, selected: version.number === chosen }, `v${version.number} (${when(version.createdAt)})`)));
  const from = choose("diff-from", versions[1].number);
  const to = choose("diff-to", versions[0].number);
  const out = h("div", { class: "diff-output", "aria-live": "polite" });
  async function compare(event) {
    event.preventDefault();
    out.replaceChildren(h("p", { class: "muted" }, "Comparing…"));
    try {
      const [a, b] = await Promise.all([definitionOf(from.value), definitionOf(to.value)]);
      out.replaceChildren(
        h("h3", {}, `Changes from v${from.value} to v${to.value}`),
        ...diffView(diffLines(pretty(a).split("\n"), pretty(b).split("\n"))));
    } catch (error) {
      out.replaceChildren(h("p", { class: "alert", role: "alert" }, error.message));
    }
  }
  return [
    h("h2", {}, "Versions"),
    table,
    more,
    h("form", { class: "versions-form", "aria-label": "Compare two versions", onsubmit: compare },
      h("label", { for: "diff-from" }, "From version"), from,
      h("label", { for: "diff-to" }, "To version"), to,
      h("button", { type: "submit" }, "Show diff")),
    out,
  ];
}

function schedulesSection(answer, base) {
  const found = answer.ok ? answer.value.schedules : [];
  const manage = h("p", {}, h("a", { href: `${base}schedules` }, "Manage schedules"));
  if (!answer.ok) return [h("h2", {}, "Schedules"), h("p", { class: "alert", role: "alert" }, answer.error.message), manage];
  if (!found.length) return [h("h2", {}, "Schedules"), h("p", { class: "muted" }, "No schedules."), manage];
  return [
    h("h2", {}, "Schedules"),
    h("table", { class: "list schedules" },
      h("thead", {}, h("tr", {}, ["Schedule", "Type", "When", "State", "Next fire"].map((name) => h("th", { scope: "col" }, name)))),
      h("tbody", {}, found.map((schedule) => h("tr", { "data-schedule-id": schedule.id },
        h("td", {}, schedule.name || schedule.id),
        h("td", {}, schedule.scheduleType),
        h("td", {}, schedule.cronExpression || schedule.interval || "—"),
        h("td", {}, schedule.state),
        h("td", {}, when(schedule.nextFireAt)))))),
    manage,
  ];
}

function executionsSection(answer, workflowId, base) {
  const all = h("p", {}, h("a", { href: `${base}executions${query({ workflowId })}` }, `All executions of ${workflowId}`));
  if (!answer.ok) return [h("h2", {}, "Recent executions"), h("p", { class: "alert", role: "alert" }, answer.error.message), all];
  const found = answer.value.executions;
  if (!found.length) return [h("h2", {}, "Recent executions"), h("p", { class: "muted" }, "No executions yet."), all];
  return [
    h("h2", {}, "Recent executions"),
    h("table", { class: "list executions" },
      h("thead", {}, h("tr", {}, ["Execution", "Status", "Trigger", "Started"].map((name) => h("th", { scope: "col" }, name)))),
      h("tbody", {}, found.map((execution) => h("tr", { "data-execution-id": execution.executionId },
        h("td", {}, h("a", { href: `${base}executions/${encodeURIComponent(execution.executionId)}` }, execution.executionId)),
        h("td", {}, statusBadge(execution.status)),
        h("td", {}, execution.trigger || ""),
        h("td", {}, when(execution.startTime || execution.createdAt)))))),
    all,
  ];
}

const settle = (promise) => promise.then((value) => ({ ok: true, value }), (error) => ({ ok: false, error }));

export async function workflowPage(main, { params, base, navigate, user }) {
  const id = params[0];
  const path = `/api/v1/workflows/${encodeURIComponent(id)}`;
  const [head, versions, schedules, executions] = await Promise.all([
    settle(get(path)),
    settle(getWithTotal(`${path}/versions?limit=${VERSIONS}`)),
    settle(get(`/api/v1/schedules${query({ workflowId: id })}`)),
    settle(get(`/api/v1/executions${query({ workflowId: id, limit: String(RECENT_EXECUTIONS), count: "true" })}`)),
  ]);
  if (!head.ok) {
    if (head.error instanceof ApiError && head.error.status === 404) {
      main.replaceChildren(h("h1", {}, "Workflow not found"), h("p", {}, `There is no workflow ${id}.`),
        h("p", {}, h("a", { href: `${base}workflows` }, "All workflows")));
      return null;
    }
    throw head.error;
  }
  const definition = head.value;
  const roles = (user && user.roles) || [];
  const listed = versions.ok ? versions.value.items : [];
  const current = listed.length ? `version ${listed[0].number}` : "no valid version";
  const runs = executions.ok && executions.value.total !== undefined ? ` (${executions.value.total})` : "";

  let run;
  if (!definition.valid) run = problemsRegion(definition.problems);
  else if (hasRole(roles, "operator")) run = runForm(id, { base, navigate });
  else run = h("p", { class: "muted" }, `Your role (${roles.length ? roles.join(", ") : "no role"}) may not start executions.`);

  // replaceChildren writes null as the text "null": the parts that may be absent are dropped first
  main.replaceChildren(...[
    h("h1", {}, `Workflow ${id}`),
    h("div", { class: "workflow-head" },
      h("span", { class: "workflow-name" }, typeof definition.name === "string" ? definition.name : ""),
      definition.valid ? h("span", {}, `valid, ${current}`) : h("span", { class: "status status-failed" }, "draft"),
      hasRole(roles, "admin") ? h("a", { class: "button-link", href: `${base}editor/${encodeURIComponent(id)}` }, "Edit") : null,
      h("a", { href: `${base}executions${query({ workflowId: id })}` }, `Executions${runs}`)),
    typeof definition.description === "string" && definition.description
      ? h("p", { class: "workflow-description" }, definition.description) : null,
    run,
    ...graphSection(definition),
    ...(versions.ok ? versionsSection(id, listed, versions.value.total) : [h("h2", {}, "Versions"), h("p", { class: "alert", role: "alert" }, versions.error.message)]),
    ...schedulesSection(schedules, base),
    ...executionsSection(executions, id, base),
  ].filter(Boolean));
  return null;
}
