// The palette: the node catalogue (GET /api/v1/workflows/node-types) grouped by category, each type with
// its display name and description. A type is added by dragging it onto the canvas (pointer events, so a
// mouse, a pen and a finger all work) or, from the keyboard, with its "Add <name>" button, which places
// it below the others of its category.

import { h } from "./dom.js";
import { CATEGORIES } from "./editor-model.js";

const TITLES = { source: "Sources", transform: "Transforms", sink: "Sinks" };

/** `dropAt(clientX, clientY)` answers the canvas position under the pointer, or null off the canvas. */
export function palette(byKey, { onAdd, dropAt }) {
  let drag = null; // {spec, ghost, pointerId}

  function item(spec) {
    const add = h("button", { type: "button", class: "add", onclick: () => onAdd(spec, null) }, `Add ${spec.displayName}`);
    const entry = h("li", {
      class: "palette-item",
      "data-node-type": spec.type,
      "data-category": spec.category,
      title: `Drag onto the canvas to add a ${spec.displayName} node`,
    },
    h("span", { class: "name" }, spec.displayName), " ", h("code", { class: "type" }, spec.type),
    h("p", { class: "description", title: spec.description || "" }, spec.description || ""), // clamped to two lines
    add);
    entry.addEventListener("pointerdown", (event) => {
      if (event.button !== 0 || event.target.closest("button")) return;
      event.preventDefault(); // no text selection while dragging
      const ghost = h("div", { class: "palette-ghost", "aria-hidden": "true" }, spec.displayName);
      document.body.append(ghost);
      drag = { spec, ghost, pointerId: event.pointerId };
      follow(event);
      entry.setPointerCapture(event.pointerId);
    });
    entry.addEventListener("pointermove", follow);
    entry.addEventListener("pointerup", (event) => drop(event, true));
    entry.addEventListener("pointercancel", (event) => drop(event, false));
    return entry;
  }

  function follow(event) {
    if (!drag) return;
    drag.ghost.style.left = `${event.clientX + 8}px`;
    drag.ghost.style.top = `${event.clientY + 8}px`;
  }

  function drop(event, placed) {
    if (!drag) return;
    const { spec, ghost } = drag;
    drag = null;
    ghost.remove();
    const at = placed && dropAt(event.clientX, event.clientY);
    if (at) onAdd(spec, at);
  }

  const groups = CATEGORIES.map((category) => {
    const specs = [...byKey.values()].filter((spec) => spec.category === category);
    return h("section", { class: `palette-group category-${category}`, "aria-labelledby": `palette-${category}` },
      h("h3", { id: `palette-${category}` }, TITLES[category]),
      h("ul", {}, ...specs.map(item)));
  });
  return h("aside", { class: "palette", "aria-labelledby": "palette-title" },
    h("h2", { id: "palette-title" }, "Palette"),
    h("p", { class: "muted" }, "Drag a node type onto the canvas, or use its “Add” button."),
    ...groups);
}
