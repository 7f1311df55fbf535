// The editor (/ui/editor: a new workflow; /ui/editor/<id>: an existing one): a definition built visually.
// The palette (editor-palette.js) adds nodes from the catalogue, the canvas (editor-canvas.js) moves and
// connects them, the forms (editor-form.js) edit the workflow and the selected node from its type's config
// schema, and the JSON view (editor-json.js) shows, imports and exports the same definition.
// Saving sends the whole definition: POST creates the workflow, each later save is a PUT with the last
// save's ETag in If-Match (a 412 means someone else saved meanwhile). The server keeps what does not
// validate as a draft and answers its problems by field path; they are shown on the node and the field
// they concern and in the problems list. Run starts the last save when it is valid and opens its
// execution page. Only an admin may save (the API's manage_workflows); others read, and operators may run.

import { ApiError } from "./api.js";
import { h } from "./dom.js";
import { createWorkflow, loadWorkflow, nodeTypes, runWorkflow, saveWorkflow } from "./editor-api.js";
import { editorCanvas } from "./editor-canvas.js";
import { edgeForm, nodeForm, workflowFields } from "./editor-form.js";
import { jsonPanel } from "./editor-json.js";
import {
  addNode, connect, emptyDefinition, indexCatalogue, moveNode, normalise, readProblems, removeEdge, removeNode,
  renameNode, specOf, withoutNodePrefix,
} from "./editor-model.js";
import { palette } from "./editor-palette.js";

const NO_PROBLEMS = readProblems({}, {});
const hasRole = (roles, role) => roles.includes("admin") || roles.includes(role); // admin has every role

function problemCount(problems) {
  return problems.all.reduce((sum, item) => sum + item.messages.length, 0);
}

function savedText(answer) {
  const { valid, version, changed, problems } = answer;
  const count = Object.values(problems || {}).reduce((sum, list) => sum + list.length, 0);
  if (changed === false) return valid ? `No change: version ${version} already holds this definition.` : "No change since the last draft.";
  if (valid) return `Saved: version ${version}, valid. It can run.`;
  const kept = version ? ` Version ${version} stays the one that runs.` : "";
  return `Saved as a draft with ${count} problem${count === 1 ? "" : "s"} to fix before it can run.${kept}`;
}

export async function editorPage(main, { params, base, user, navigate }) {
  const roles = (user && user.roles) || [];
  const canSave = roles.includes("admin"); // manage_workflows: admins only (docs/api.md, "Roles")
  const canRun = hasRole(roles, "operator");
  const readOnly = !canSave;
  const [catalogue, loaded] = await Promise.all([nodeTypes(), params[0] ? loadWorkflow(params[0]) : null]);
  const byKey = indexCatalogue(catalogue);

  const st = {
    savedId: loaded ? params[0] : null,
    etag: loaded ? loaded.etag : null,
    definition: normalise(loaded ? loaded.body : emptyDefinition()),
    problems: loaded ? readProblems(loaded.body.problems, loaded.body) : NO_PROBLEMS,
    lastSave: loaded ? { valid: loaded.body.valid } : null,
    selection: null,
    dirty: false,
  };
  const spec = (node) => specOf(byKey, node);

  // --- the parts of the page ---------------------------------------------------------------------------
  const heading = h("h1", {});
  const status = h("p", { class: "editor-status", role: "status" });
  const alert = h("p", { class: "alert", role: "alert" });
  const conflict = h("div", { class: "conflict", hidden: true });
  const saveButton = h("button", { type: "button", class: "primary", onclick: () => save(false) }, "Save");
  const runInput = h("textarea", { id: "run-input", rows: 2, class: "json", spellcheck: "false", placeholder: '{"name": "value"}' });
  const runButton = h("button", { type: "button", onclick: () => run() }, "Run");
  const runHint = h("span", { class: "muted run-hint" });
  const fieldsBox = h("section", { class: "editor-fields", "aria-label": "Workflow" });
  const inspector = h("aside", { class: "inspector", "aria-label": "Selected node or edge" });
  const problemsBox = h("section", { class: "editor-problems", "aria-labelledby": "problems-title" });
  let fields = {};
  let inspectorFields = {};

  const canvas = editorCanvas({
    readOnly,
    onSelect: (selection) => select(selection),
    onMove: (id, x, y) => {
      moveNode(st.definition, id, x, y);
      st.selection = { kind: "node", id };
      changed();
    },
    onConnect: (source, target) => {
      const { error } = connect(st.definition, source, target);
      if (error) status.textContent = error;
      else changed();
    },
    onDelete: (selection) => remove(selection),
  });

  const json = jsonPanel({
    readOnly,
    current: () => st.definition,
    onApply: (value, what) => {
      if (st.savedId && value.id !== st.savedId) {
        status.textContent = `${what}: its id “${value.id}” is not this workflow's (${st.savedId}); saving will be refused.`;
      } else status.textContent = `${what}: applied.`;
      st.definition = normalise(value);
      st.selection = null;
      st.problems = NO_PROBLEMS;
      changed();
      drawFields();
    },
  });

  // --- drawing -----------------------------------------------------------------------------------------
  function drawHeading() {
    heading.textContent = st.savedId ? `Edit workflow ${st.savedId}` : "New workflow";
  }

  function drawFields() {
    const built = workflowFields(st.definition, { isNew: !st.savedId, readOnly, problems: st.problems, onChange: () => changed({ form: false }) });
    fields = built.fields;
    fieldsBox.replaceChildren(built.element);
  }

  function drawCanvas() {
    canvas.draw(st.definition, { selection: st.selection, problems: st.problems, specOf: spec });
  }

  function drawInspector() {
    inspectorFields = {};
    const sel = st.selection;
    const node = sel && sel.kind === "node" && st.definition.nodes.find((candidate) => candidate.id === sel.id);
    const edge = sel && sel.kind === "edge" && st.definition.edges.find((candidate) => candidate.id === sel.id);
    if (node) {
      const built = nodeForm(node, spec(node), {
        readOnly,
        definition: st.definition,
        problems: st.problems.nodes.get(node.id),
        onChange: () => changed({ form: false }),
        onRename: (from, to) => {
          const refused = renameNode(st.definition, from, to);
          if (!refused) {
            st.selection = { kind: "node", id: to };
            changed();
          }
          return refused;
        },
        onConnect: (source, target) => {
          const { error } = connect(st.definition, source, target);
          if (!error) changed();
          return error;
        },
        onDeleteNode: (id) => remove({ kind: "node", id }),
        onDeleteEdge: (id) => remove({ kind: "edge", id }),
      });
      inspectorFields = built.fields;
      inspector.replaceChildren(built.element);
    } else if (edge) {
      inspector.replaceChildren(edgeForm(edge, { readOnly, problems: st.problems.edges.get(edge.id), onDeleteEdge: (id) => remove({ kind: "edge", id }) }));
    } else {
      inspector.replaceChildren(h("h2", {}, "Node"), h("p", { class: "muted" },
        "Select a node on the canvas (click it, or Tab to it and press Enter) to edit it here."));
    }
  }

  function drawProblems() {
    const count = problemCount(st.problems);
    const items = st.problems.all.map((item) => {
      const where = item.node !== undefined ? `Node ${item.node}${item.field ? `, ${item.field.replace(/^config\./, "")}` : ""}`
        : item.edge !== undefined ? `Edge ${item.edge}${item.field ? `, ${item.field}` : ""}` : item.path;
      const text = `${where}: ${item.messages.map(withoutNodePrefix).join(" ")}`;
      return h("li", { "data-path": item.path }, h("button", { type: "button", class: "link", onclick: () => focusProblem(item) }, text));
    });
    const empty = st.lastSave && st.lastSave.valid ? "None: the last save is valid." : "None reported (the server checks each save).";
    problemsBox.replaceChildren(
      h("h2", { id: "problems-title" }, count ? `Problems (${count})` : "Problems"),
      count ? h("ul", {}, ...items) : h("p", { class: "muted" }, empty),
    );
  }

  function drawToolbar() {
    const runnable = Boolean(st.savedId && st.lastSave && st.lastSave.valid && !st.dirty);
    runButton.disabled = !runnable;
    runHint.textContent = runnable ? "" : st.dirty || !st.savedId ? "Save first: Run starts the last save." : "The last save is a draft: fix its problems and save to run it.";
    root.dataset.dirty = st.dirty ? "true" : "false";
  }

  function drawAll() {
    drawHeading();
    drawFields();
    drawCanvas();
    drawInspector();
    drawProblems();
    drawToolbar();
    json.refresh(st.definition);
  }

  // --- changes -----------------------------------------------------------------------------------------
  /** The model changed: redraw what shows it (the node form too, unless the change came from it). */
  function changed({ form = true } = {}) {
    st.dirty = true;
    drawCanvas();
    if (form) drawInspector();
    drawToolbar();
    json.refresh(st.definition);
  }

  function select(selection) {
    st.selection = selection;
    drawCanvas();
    drawInspector();
  }

  function remove(selection) {
    if (readOnly || !selection) return;
    if (selection.kind === "node") removeNode(st.definition, selection.id);
    else removeEdge(st.definition, selection.id);
    status.textContent = `Deleted ${selection.kind} ${selection.id}.`;
    st.selection = null;
    changed();
  }

  function focusProblem(item) {
    if (item.node !== undefined && st.definition.nodes.some((node) => node.id === item.node)) {
      select({ kind: "node", id: item.node });
      const control = inspectorFields[item.field];
      if (control) control.focus();
      else canvas.svgRoot.querySelector(`g.node[data-node-id="${CSS.escape(item.node)}"]`)?.focus();
    } else if (item.edge !== undefined && st.definition.edges.some((edge) => edge.id === item.edge)) {
      select({ kind: "edge", id: item.edge });
      canvas.svgRoot.querySelector(`g.edge[data-edge-id="${CSS.escape(item.edge)}"]`)?.focus();
    } else if (fields[item.field]) {
      fields[item.field].focus();
    } else {
      canvas.element.scrollIntoView({ block: "nearest" });
      (canvas.svgRoot.querySelector("g.node") || canvas.svgRoot).focus?.();
    }
  }

  // --- saving and running ------------------------------------------------------------------------------
  async function save(overwrite) {
    const body = structuredClone(st.definition);
    alert.textContent = "";
    conflict.hidden = true;
    saveButton.disabled = true;
    status.textContent = "Saving…";
    try {
      const answer = st.savedId
        ? await saveWorkflow(st.savedId, body, overwrite ? null : st.etag)
        : await createWorkflow(body);
      if (!st.savedId) {
        st.savedId = answer.body.workflowId;
        history.replaceState(null, "", `${base}editor/${encodeURIComponent(st.savedId)}`); // a reload edits it
      }
      st.etag = answer.etag;
      st.problems = readProblems(answer.body.problems, body);
      st.lastSave = { valid: answer.body.valid, version: answer.body.version };
      st.dirty = JSON.stringify(st.definition) !== JSON.stringify(body); // edits made while it saved
      status.textContent = savedText(answer.body);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      status.textContent = "Not saved.";
      if (error.status === 412) showConflict(error);
      else {
        alert.textContent = `Not saved: ${error.message}`;
        if (error.body && error.body.details) st.problems = readProblems(error.body.details, body);
      }
    } finally {
      saveButton.disabled = false;
    }
    drawAll();
  }

  function showConflict(error) {
    conflict.replaceChildren(
      h("p", {}, "Someone else saved this workflow after you loaded it, so your save was refused rather than " +
        `overwrite theirs (412: ${error.message})`),
      h("button", { type: "button", onclick: () => reload() }, "Reload their version"),
      " (your changes are lost) or ",
      h("button", { type: "button", onclick: () => save(true) }, "Save mine anyway"),
      " (theirs stays in the version history when it was valid).",
    );
    conflict.hidden = false;
  }

  async function reload() {
    const answer = await loadWorkflow(st.savedId);
    st.etag = answer.etag;
    st.definition = normalise(answer.body);
    st.problems = readProblems(answer.body.problems, answer.body);
    st.lastSave = { valid: answer.body.valid };
    st.selection = null;
    st.dirty = false;
    conflict.hidden = true;
    alert.textContent = "";
    status.textContent = "Reloaded the latest save.";
    drawAll();
  }

  async function run() {
    let input;
    if (runInput.value.trim()) {
      try {
        input = JSON.parse(runInput.value);
      } catch (error) {
        alert.textContent = `Run input: not valid JSON (${error.message}).`;
        return;
      }
      if (input === null || typeof input !== "object" || Array.isArray(input)) {
        alert.textContent = "Run input: must be a JSON object.";
        return;
      }
    }
    alert.textContent = "";
    runButton.disabled = true;
    try {
      const answer = await runWorkflow(st.savedId, input);
      if (answer.executionId) {
        await navigate(`${base}executions/${encodeURIComponent(answer.executionId)}`);
        return;
      }
      status.textContent = answer.message; // skipped under the concurrency policy
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      alert.textContent = `Not started: ${error.message}`;
    }
    drawToolbar();
  }

  // --- the page ----------------------------------------------------------------------------------------
  const toolbar = h("div", { class: "editor-toolbar" },
    canSave ? saveButton : null,
    canRun ? h("span", { class: "run" }, h("label", { for: "run-input" }, "Run input (JSON, optional)"), runInput, runButton, runHint) : null);
  const note = readOnly
    ? h("p", { class: "note" }, `Your role (${roles.length ? roles.join(", ") : "no role"}) may not change definitions: the editor is read-only.`,
      canRun ? " You may run the workflow's last valid save." : "")
    : null;
  const root = h("div", { class: `editor${readOnly ? " read-only" : ""}` },
    heading, note, toolbar, status, alert, conflict, fieldsBox,
    h("div", { class: "editor-body" },
      readOnly ? null : palette(byKey, {
        onAdd: (nodeSpec, at) => {
          const id = addNode(st.definition, nodeSpec, at);
          st.selection = { kind: "node", id };
          status.textContent = `Added node ${id}.`;
          changed();
        },
        dropAt: (x, y) => {
          const over = document.elementFromPoint(x, y);
          if (!over || !canvas.svgRoot.contains(over)) return null;
          const p = canvas.point({ clientX: x, clientY: y });
          return { x: p.x - 88, y: p.y - 28 }; // the node's centre under the pointer
        },
      }),
      h("div", { class: "canvas-column" }, h("h2", { class: "visually-hidden" }, "Canvas"), canvas.element, problemsBox),
      inspector),
    json.element);
  root.addEventListener("keydown", (event) => {
    if (event.key !== "Delete" || event.target.closest("input, textarea, select")) return;
    if (st.selection) {
      event.preventDefault();
      remove(st.selection);
    }
  });
  main.replaceChildren(root);
  drawAll();
  if (loaded) status.textContent = loaded.body.valid ? "Loaded the latest save: valid." : "Loaded the latest save: a draft (its problems are below).";

  // leaving with unsaved changes asks first: closing the tab, and the console's own links
  const beforeUnload = (event) => {
    if (!st.dirty) return;
    event.preventDefault();
    event.returnValue = "";
  };
  const guardLinks = (event) => {
    const link = event.target.closest && event.target.closest("a[href]");
    if (!link || !st.dirty || link.hasAttribute("download")) return; // an export leaves nothing
    const url = new URL(link.href, location.href);
    if (url.origin !== location.origin || !url.pathname.startsWith(base)) return; // the browser's own guard
    if (!window.confirm("Leave the editor? Your changes are not saved.")) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  };
  window.addEventListener("beforeunload", beforeUnload);
  document.addEventListener("click", guardLinks, true);
  return () => {
    window.removeEventListener("beforeunload", beforeUnload);
    document.removeEventListener("click", guardLinks, true);
  };
}
