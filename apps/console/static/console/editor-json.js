// The definition as JSON, kept beside the visual editor: the JSON view follows the model as it changes and,
// once edited, "Apply JSON" replaces the model with it (a parse error is shown, nothing changes). Import
// reads a .json file the same way; Export downloads the definition as <id>.json through a Blob link.

import { h } from "./dom.js";
import { shapeError } from "./editor-model.js";

/** Parse `text` as a definition: {value} or {error} in words. */
export function parseDefinition(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { error: `Not valid JSON: ${error.message}` };
  }
  const shape = shapeError(value);
  return shape ? { error: shape } : { value };
}

export const pretty = (definition) => `${JSON.stringify(definition, null, 2)}\n`;

export function jsonPanel({ readOnly, onApply, current }) {
  let edited = false;
  const area = h("textarea", { id: "editor-json", rows: 16, class: "json", spellcheck: "false", readonly: readOnly });
  const alert = h("p", { class: "alert", role: "alert" });
  const note = h("p", { class: "muted", "aria-live": "polite" });
  area.addEventListener("input", () => {
    edited = true;
    note.textContent = "Edited: “Apply JSON” replaces the editor's definition with this text.";
  });

  function apply(text, what) {
    const { value, error } = parseDefinition(text);
    if (error) {
      alert.textContent = `${what}: ${error}`;
      return;
    }
    alert.textContent = "";
    edited = false;
    note.textContent = "";
    onApply(value, what);
  }

  const applyButton = h("button", { type: "button", onclick: () => apply(area.value, "JSON view") }, "Apply JSON");
  const revertButton = h("button", { type: "button", onclick: () => {
    edited = false;
    note.textContent = "";
    alert.textContent = "";
    refresh(current());
  } }, "Revert JSON");

  const file = h("input", { id: "editor-import", type: "file", accept: ".json,application/json" });
  file.addEventListener("change", async () => {
    const [chosen] = file.files;
    if (!chosen) return;
    apply(await chosen.text(), `Import of ${chosen.name}`);
    file.value = ""; // the same file may be imported again
  });

  const exportButton = h("button", { type: "button", onclick: () => {
    const definition = current();
    const blob = new Blob([pretty(definition)], { type: "application/json" });
    const url = URL.createObjectURL(blob);
    const link = h("a", { href: url, download: `${definition.id || "workflow"}.json`, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000); // after the browser has taken the download
  } }, "Export JSON");

  function refresh(definition) {
    if (!edited) area.value = pretty(definition);
  }

  const element = h("section", { class: "editor-json", "aria-labelledby": "editor-json-title" },
    h("h2", { id: "editor-json-title" }, "JSON"),
    h("label", { for: "editor-json" }, "Definition (JSON)"),
    area,
    note,
    h("div", { class: "buttons" },
      readOnly ? null : applyButton,
      readOnly ? null : revertButton,
      exportButton,
      readOnly ? null : h("span", { class: "import" }, h("label", { for: "editor-import" }, "Import a definition (.json file)"), file)),
    alert);
  return { element, refresh };
}
