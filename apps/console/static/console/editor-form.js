// The editor's forms: the workflow's own fields, and the form of the selected node, generated from its
// type's config schema (GET /api/v1/workflows/node-types: {field: {type, required, label, default?,
// choices?}}). Every input is labelled; a required field says so in its label; a default shows as the
// placeholder (an empty field is left out of the config, so the node type's default applies). The server's
// problems for a field appear next to it (aria-describedby), and `fields` maps each field path
// ("config.condition", "id", "name", ...) to its input so that a problem in the list can focus it.

import { h } from "./dom.js";
import { withoutNodePrefix } from "./editor-model.js";

let serial = 0;
const uid = (stem) => `${stem}-${(serial += 1)}`;

function shown(value) {
  if (value === undefined || value === null) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** A labelled control with its problems under it; `problems` is a list of messages (or nothing). */
function row(labelText, control, problems, { hint } = {}) {
  const id = control.id || (control.id = uid("field"));
  const parts = [h("label", { for: id }, labelText), control];
  if (hint) parts.push(h("p", { class: "field-hint muted" }, hint));
  const problemId = `${id}-problem`;
  const problem = h("p", { class: "field-problem", id: problemId });
  if (problems && problems.length) {
    problem.textContent = problems.map(withoutNodePrefix).join(" ");
    control.setAttribute("aria-invalid", "true");
    control.setAttribute("aria-describedby", problemId);
  }
  parts.push(problem);
  return { element: h("div", { class: `field${problems && problems.length ? " invalid" : ""}` }, ...parts), problem };
}

/** The control of one config field, reading `config[key]` and writing through `set(value | undefined)`.
 * `invalid(message)` shows a client-side problem (JSON that does not parse) without changing the model. */
function configControl(key, schema, value, { readOnly, set, invalid }) {
  const placeholder = schema.default !== undefined ? `default: ${shown(schema.default)}` : "";
  const common = { name: key, disabled: readOnly, required: schema.required || false, "aria-required": schema.required ? "true" : false };
  const type = schema.type;
  if (schema.choices) {
    const select = h("select", common,
      h("option", { value: "" }, schema.default !== undefined ? `(default: ${shown(schema.default)})` : "(none)"),
      ...schema.choices.map((choice) => h("option", { value: choice }, String(choice))));
    select.value = value === undefined ? "" : String(value);
    select.addEventListener("change", () => set(select.value === "" ? undefined : select.value));
    return select;
  }
  if (type === "boolean") {
    const box = h("input", { ...common, type: "checkbox", required: false });
    box.checked = Boolean(value === undefined ? schema.default : value);
    box.addEventListener("change", () => set(box.checked));
    return box;
  }
  if (type === "integer" || type === "number") {
    const input = h("input", { ...common, type: "number", step: type === "integer" ? 1 : "any", placeholder });
    input.value = value === undefined ? "" : String(value);
    input.addEventListener("input", () => set(input.value === "" ? undefined : Number(input.value)));
    return input;
  }
  if (type === "object" || type === "array") {
    const area = h("textarea", { ...common, rows: 3, class: "json", placeholder, spellcheck: "false" });
    area.value = value === undefined ? "" : JSON.stringify(value, null, 2);
    area.addEventListener("input", () => {
      if (area.value.trim() === "") return set(undefined);
      try {
        const parsed = JSON.parse(area.value);
        const ok = type === "array" ? Array.isArray(parsed) : parsed !== null && typeof parsed === "object" && !Array.isArray(parsed);
        if (!ok) return invalid(`Must be a JSON ${type}.`);
        return set(parsed);
      } catch (error) {
        return invalid(`Not valid JSON: ${error.message}`);
      }
    });
    return area;
  }
  // string, number_or_string, any: one line of text; `any` reads JSON when the text is JSON ([1, 2], 5,
  // true, {"a": 1}), else keeps the text ("30s"); number_or_string reads a number when it is one
  const input = h("input", { ...common, type: "text", placeholder, spellcheck: "false" });
  input.value = shown(value);
  input.addEventListener("input", () => {
    const text = input.value;
    if (text === "") return set(undefined);
    if (type === "number_or_string") return set(/^-?\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : text);
    if (type === "any") {
      try {
        return set(JSON.parse(text));
      } catch {
        return set(text);
      }
    }
    return set(text);
  });
  return input;
}

/** The workflow's own fields: id (a new workflow only), name, description, tags. */
export function workflowFields(definition, { isNew, readOnly, problems, onChange }) {
  const fields = {};
  const problemsOf = (field) => problems.all.filter((item) => item.field === field).flatMap((item) => item.messages);
  const text = (field, label, { area = false, value, write } = {}) => {
    const control = h(area ? "textarea" : "input", { id: `workflow-${field}`, name: field, disabled: readOnly, rows: area ? 2 : null, spellcheck: "false" });
    control.value = value !== undefined ? value : shown(definition[field]);
    control.addEventListener("input", () => {
      (write || ((v) => { definition[field] = v; }))(control.value);
      onChange();
    });
    fields[field] = control;
    return row(label, control, problemsOf(field)).element;
  };
  const parts = [];
  if (isNew) {
    parts.push(text("id", "Workflow id", {}));
    fields.id.required = true;
  } else {
    parts.push(h("p", { class: "workflow-id" }, "Workflow id: ", h("code", {}, String(definition.id))));
    const idProblems = problemsOf("id");
    if (idProblems.length) parts.push(h("p", { class: "field-problem" }, idProblems.join(" ")));
  }
  parts.push(
    text("name", "Workflow name"),
    text("description", "Description", { area: true }),
    text("tags", "Tags (comma-separated)", {
      value: Array.isArray(definition.tags) ? definition.tags.join(", ") : shown(definition.tags),
      write: (value) => {
        definition.tags = value.split(",").map((tag) => tag.trim()).filter(Boolean);
      },
    }),
  );
  return { element: h("div", { class: "workflow-fields" }, ...parts), fields };
}

/** The selected node's form: its type, id, label, config fields, connections and a delete button. */
export function nodeForm(node, spec, context) {
  const { readOnly, problems, definition, onChange, onRename, onConnect, onDeleteNode, onDeleteEdge } = context;
  const fields = {};
  const mine = problems || new Map();
  const category = node.type || (spec && spec.category) || "unknown";

  const idInput = h("input", { id: "node-id", name: "id", disabled: readOnly, spellcheck: "false" });
  idInput.value = node.id;
  const idRow = row("Node id", idInput, mine.get("id"));
  idInput.addEventListener("change", () => {
    const refused = onRename(node.id, idInput.value.trim());
    if (refused) {
      idRow.problem.textContent = refused;
      idInput.setAttribute("aria-invalid", "true");
      idInput.setAttribute("aria-describedby", idRow.problem.id);
      idInput.value = node.id;
    }
  });
  fields.id = idInput;

  const labelInput = h("input", { id: "node-label", name: "label", disabled: readOnly });
  labelInput.value = shown(node.label);
  labelInput.addEventListener("input", () => {
    node.label = labelInput.value;
    onChange();
  });
  fields.label = labelInput;

  const configRows = [];
  const schema = spec ? spec.config : null;
  node.config = node.config && typeof node.config === "object" && !Array.isArray(node.config) ? node.config : {};
  if (schema) {
    for (const [key, field] of Object.entries(schema)) {
      let shownRow = null;
      const control = configControl(key, field, node.config[key], {
        readOnly,
        set: (value) => {
          if (value === undefined) delete node.config[key];
          else node.config[key] = value;
          shownRow.problem.textContent = "";
          onChange();
        },
        invalid: (message) => {
          shownRow.problem.textContent = message;
        },
      });
      control.id = `node-config-${key}`;
      const label = `${field.label || key}${field.required ? " (required)" : ""}`;
      shownRow = row(label, control, mine.get(`config.${key}`));
      configRows.push(shownRow.element);
      fields[`config.${key}`] = control;
    }
    if (!configRows.length) configRows.push(h("p", { class: "muted" }, "This node type has no settings."));
  } else {
    // a type the catalogue does not know: its config stays editable as JSON
    const area = h("textarea", { id: "node-config-json", rows: 5, class: "json", disabled: readOnly, spellcheck: "false" });
    area.value = JSON.stringify(node.config, null, 2);
    let shownRow = null;
    area.addEventListener("input", () => {
      try {
        const parsed = JSON.parse(area.value);
        if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("must be an object");
        node.config = parsed;
        shownRow.problem.textContent = "";
        onChange();
      } catch (error) {
        shownRow.problem.textContent = `Config: not a JSON object (${error.message}).`;
      }
    });
    shownRow = row("Config (JSON)", area, null);
    configRows.push(shownRow.element);
    fields.config = area;
  }
  // problems of config keys the schema does not list, and of the node as a whole (nodeType, edges, ...)
  const elsewhere = [...mine.entries()].filter(([field]) => !(field in fields));
  const nodeProblems = elsewhere.length
    ? h("ul", { class: "node-problems", "aria-label": `Problems of node ${node.id}` },
      ...elsewhere.map(([field, messages]) => h("li", {}, `${field ? `${field}: ` : ""}${messages.map(withoutNodePrefix).join(" ")}`)))
    : null;

  const parts = [
    h("h2", { id: "node-form-title" }, `Node ${node.id}`),
    h("p", { class: "node-type" },
      h("strong", {}, spec ? spec.displayName : node.nodeType), ` — ${category} `, h("code", {}, String(node.nodeType))),
    spec && spec.description ? h("p", { class: "muted node-description" }, spec.description) : null,
    spec ? null : h("p", { class: "field-problem" }, `The catalogue has no ${category} node type “${node.nodeType}”.`),
    nodeProblems,
    idRow.element,
    row("Node label", labelInput, mine.get("label")).element,
    h("fieldset", { class: "config" }, h("legend", {}, "Config"), ...configRows),
    connections(node, category, { readOnly, definition, onConnect, onDeleteEdge }),
  ];
  if (!readOnly) parts.push(h("button", { type: "button", class: "danger", onclick: () => onDeleteNode(node.id) }, `Delete node ${node.id}`));
  return { element: h("form", { class: "node-form", "aria-labelledby": "node-form-title", onsubmit: (event) => event.preventDefault() }, ...parts), fields };
}

/** The node's edges (each with a delete button) and the keyboard's way to connect: "Connect to" a target. */
function connections(node, category, { readOnly, definition, onConnect, onDeleteEdge }) {
  const edges = definition.edges.filter((edge) => edge.source === node.id || edge.target === node.id);
  const list = edges.length
    ? h("ul", { class: "edges" }, ...edges.map((edge) => h("li", {},
      `${edge.id}: ${edge.source} → ${edge.target} `,
      readOnly ? null : h("button", { type: "button", class: "link", onclick: () => onDeleteEdge(edge.id) }, `Delete edge ${edge.id}`))))
    : h("p", { class: "muted" }, "No edges yet.");
  const parts = [h("legend", {}, "Edges"), list];
  if (!readOnly && category !== "sink") {
    const targets = definition.nodes.filter((other) => other.id !== node.id && other.type !== "source");
    const select = h("select", { id: "connect-target" },
      h("option", { value: "" }, "(choose a node)"),
      ...targets.map((other) => h("option", { value: other.id }, `${other.id} (${other.label || other.nodeType})`)));
    const message = h("p", { class: "field-problem", role: "status" });
    const button = h("button", { type: "button", onclick: () => {
      if (!select.value) {
        message.textContent = "Choose the node to connect to.";
        return;
      }
      message.textContent = onConnect(node.id, select.value) || "";
    } }, "Connect");
    parts.push(h("div", { class: "connect" }, h("label", { for: "connect-target" }, "Connect to"), select, button), message);
  }
  return h("fieldset", { class: "connections" }, ...parts);
}

/** The selected edge: its ends, its problems, and a delete button. */
export function edgeForm(edge, { readOnly, problems, onDeleteEdge }) {
  return h("div", { class: "edge-form" },
    h("h2", {}, `Edge ${edge.id}`),
    h("p", {}, `From ${edge.source} to ${edge.target}.`),
    problems && problems.length ? h("p", { class: "field-problem" }, problems.join(" ")) : null,
    readOnly ? null : h("button", { type: "button", class: "danger", onclick: () => onDeleteEdge(edge.id) }, `Delete edge ${edge.id}`));
}
