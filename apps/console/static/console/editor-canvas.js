// The editor's canvas: the definition as SVG, each node at its `position`. Pointer events do the rest:
// dragging a node moves it, dragging from a node's output port (right) to another node connects them,
// a click selects a node or an edge. The keyboard does the same: Tab reaches each node and edge, Enter
// selects, the arrow keys move a node (Shift: further), Delete removes. The canvas changes nothing itself:
// it reports what the person did (`on*` callbacks) and the page redraws it from the model.

import { svg } from "./dom.js";
import { NODE_H, NODE_W, withoutNodePrefix } from "./editor-model.js";

const MIN_W = 640;
const MIN_H = 420;
const MOVE_THRESHOLD = 3; // pixels a press must travel to be a drag, not a click

const cut = (text, length) => (text.length > length ? `${text.slice(0, length - 1)}…` : text);

function edgePath(from, to) {
  const x1 = from.x + NODE_W;
  const y1 = from.y + NODE_H / 2;
  const x2 = to.x;
  const y2 = to.y + NODE_H / 2;
  const bend = Math.max(40, Math.abs(x2 - x1) / 2);
  return `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`;
}

/** Two lines under a node: the first field concerned, then its first message (the full text is the
 * marker's tooltip, the node form's and the problems list's). */
function problemLines(fields) {
  const [field, messages] = fields.entries().next().value;
  const name = field.replace(/^config\./, "");
  const count = [...fields.values()].reduce((sum, list) => sum + list.length, 0);
  const more = count > 1 ? ` (+${count - 1})` : "";
  return [`⚠ ${name ? `${name}:` : "problem:"}${more} `, cut(withoutNodePrefix(messages[0]), 30)];
}

function allProblems(fields) {
  return [...fields.entries()].map(([field, messages]) => `${field || "node"}: ${messages.map(withoutNodePrefix).join(" ")}`).join("\n");
}

function drawNode(node, spec, { selected, problems }) {
  const category = node.type || (spec && spec.category) || "unknown";
  const { x, y } = node.position;
  const label = String(node.label || node.id);
  const classes = ["node", `category-${category}`];
  if (selected) classes.push("selected");
  if (problems) classes.push("has-problems");
  if (!spec) classes.push("unknown-type");
  const group = svg(
    "g",
    {
      class: classes.join(" "),
      "data-node-id": node.id,
      "data-category": category,
      transform: `translate(${x},${y})`,
      tabindex: 0,
      role: "button",
      "aria-pressed": selected ? "true" : "false",
      "aria-label": `${category} node ${label} (${node.id}, ${node.nodeType})${problems ? ": has problems" : ""}`,
    },
    svg("title", {}, `${node.id}: ${category} ${node.nodeType}${spec ? "" : " (unknown type)"}`),
    svg("rect", { class: "body", width: NODE_W, height: NODE_H, rx: 6 }),
    svg("text", { x: 10, y: 17, class: "category" }, cut(`${category} · ${node.nodeType}`, 28)),
    svg("text", { x: 10, y: 35, class: "label" }, cut(label, 24)),
    svg("text", { x: 10, y: 50, class: "node-id" }, cut(node.id, 28)),
  );
  if (category !== "source") group.append(svg("circle", { class: "port port-in", cx: 0, cy: NODE_H / 2, r: 7 }));
  if (category !== "sink") {
    group.append(
      svg("circle", { class: "port port-out", cx: NODE_W, cy: NODE_H / 2, r: 8 },
        svg("title", {}, `Drag to another node to connect ${node.id} to it`)),
    );
  }
  if (problems) {
    const [first, second] = problemLines(problems);
    group.append(
      svg("g", { class: "problem-marker" },
        svg("title", {}, allProblems(problems)),
        svg("circle", { cx: NODE_W - 12, cy: 12, r: 9 }),
        svg("text", { x: NODE_W - 12, y: 16, "text-anchor": "middle" }, "!")),
      svg("text", { class: "problem", x: 0, y: NODE_H + 14 },
        svg("tspan", { x: 0 }, first), svg("tspan", { x: 0, dy: 14 }, second)),
    );
  }
  return group;
}

function drawEdge(edge, from, to, { selected, problems }) {
  const classes = ["edge"];
  if (selected) classes.push("selected");
  if (problems) classes.push("has-problems");
  const d = edgePath(from, to);
  return svg(
    "g",
    {
      class: classes.join(" "),
      "data-edge-id": edge.id,
      tabindex: 0,
      role: "button",
      "aria-pressed": selected ? "true" : "false",
      "aria-label": `Edge ${edge.id}: ${edge.source} to ${edge.target}${problems ? ": has problems" : ""}`,
    },
    svg("title", {}, `${edge.id}: ${edge.source} → ${edge.target}${problems ? ` (${problems.join(" ")})` : ""}`),
    svg("path", { class: "hit", d }),
    svg("path", { class: "line", d, "marker-end": "url(#editor-arrow)" }),
  );
}

/** The canvas element and `draw(definition, {selection, problems, specOf})` to redraw it from the model. */
export function editorCanvas({ readOnly, onSelect, onMove, onConnect, onDelete }) {
  const root = svg("svg", {
    class: "editor-canvas",
    width: MIN_W,
    height: MIN_H,
    role: "group",
    "aria-label": "Canvas: the workflow's nodes and edges",
  });
  const frame = document.createElement("div");
  frame.className = "editor-canvas-frame";
  frame.append(root);
  let definition = { nodes: [], edges: [] };
  let drag = null; // {mode: "move"|"connect", id, start, origin, moved, line?}

  function point(event) {
    const matrix = root.getScreenCTM();
    const p = new DOMPoint(event.clientX, event.clientY).matrixTransform(matrix.inverse());
    return { x: p.x, y: p.y };
  }

  function nodeById(id) {
    return definition.nodes.find((node) => node.id === id);
  }

  function draw(next, { selection, problems, specOf }) {
    definition = next;
    const active = document.activeElement;
    const refocus = active && root.contains(active) ? { node: active.dataset.nodeId, edge: active.dataset.edgeId } : null;
    const nodes = definition.nodes.filter((node) => node.position);
    const width = Math.max(MIN_W, ...nodes.map((node) => node.position.x + NODE_W + 60));
    const height = Math.max(MIN_H, ...nodes.map((node) => node.position.y + NODE_H + 60));
    root.setAttribute("width", width);
    root.setAttribute("height", height);
    root.replaceChildren(
      svg("defs", {},
        svg("marker", { id: "editor-arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
          svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow" }))),
      svg("rect", { class: "backdrop", width, height }),
    );
    const place = new Map(nodes.map((node) => [node.id, node.position]));
    for (const edge of definition.edges) {
      const from = place.get(edge.source);
      const to = place.get(edge.target);
      if (!from || !to) continue; // an edge to a missing node: the server names it in the problems
      const selected = selection && selection.kind === "edge" && selection.id === edge.id;
      root.append(drawEdge(edge, from, to, { selected, problems: problems.edges.get(edge.id) }));
    }
    for (const node of nodes) {
      const selected = selection && selection.kind === "node" && selection.id === node.id;
      root.append(drawNode(node, specOf(node), { selected, problems: problems.nodes.get(node.id) }));
    }
    if (!definition.nodes.length) {
      root.append(svg("text", { class: "hint", x: 24, y: 40 },
        readOnly ? "This workflow has no nodes." : "Drag a node from the palette here, or use its “Add” button."));
    }
    if (refocus) {
      const again = refocus.node !== undefined
        ? root.querySelector(`g.node[data-node-id="${CSS.escape(refocus.node)}"]`)
        : refocus.edge !== undefined && root.querySelector(`g.edge[data-edge-id="${CSS.escape(refocus.edge)}"]`);
      if (again) again.focus({ preventScroll: true });
    }
  }

  root.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    const nodeGroup = event.target.closest("g.node");
    const edgeGroup = event.target.closest("g.edge");
    if (edgeGroup) {
      onSelect({ kind: "edge", id: edgeGroup.dataset.edgeId });
      return;
    }
    if (!nodeGroup) {
      onSelect(null);
      return;
    }
    const id = nodeGroup.dataset.nodeId;
    const node = nodeById(id);
    if (!node) return;
    event.preventDefault(); // no text selection while dragging
    nodeGroup.focus({ preventScroll: true });
    if (readOnly) {
      onSelect({ kind: "node", id });
      return;
    }
    const start = point(event);
    if (event.target.classList.contains("port-out")) {
      const line = svg("path", { class: "connecting", d: edgePath(node.position, { x: start.x, y: start.y - NODE_H / 2 }) });
      root.append(line);
      drag = { mode: "connect", id, line, node: nodeGroup };
    } else {
      drag = { mode: "move", id, start, origin: { ...node.position }, moved: false, node: nodeGroup };
    }
    root.setPointerCapture(event.pointerId);
  });

  root.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const now = point(event);
    if (drag.mode === "connect") {
      const node = nodeById(drag.id);
      drag.line.setAttribute("d", edgePath(node.position, { x: now.x, y: now.y - NODE_H / 2 }));
      return;
    }
    const dx = now.x - drag.start.x;
    const dy = now.y - drag.start.y;
    if (!drag.moved && Math.hypot(dx, dy) < MOVE_THRESHOLD) return;
    drag.moved = true;
    const x = Math.max(0, drag.origin.x + dx);
    const y = Math.max(0, drag.origin.y + dy);
    drag.node.setAttribute("transform", `translate(${x},${y})`);
    drag.at = { x, y };
    for (const group of root.querySelectorAll("g.edge")) {
      const edge = definition.edges.find((candidate) => candidate.id === group.dataset.edgeId);
      if (!edge || (edge.source !== drag.id && edge.target !== drag.id)) continue;
      const from = edge.source === drag.id ? drag.at : nodeById(edge.source).position;
      const to = edge.target === drag.id ? drag.at : nodeById(edge.target).position;
      for (const path of group.querySelectorAll("path")) path.setAttribute("d", edgePath(from, to));
    }
  });

  function finish(event, cancelled) {
    if (!drag) return;
    const done = drag;
    drag = null;
    if (root.hasPointerCapture(event.pointerId)) root.releasePointerCapture(event.pointerId);
    if (done.mode === "connect") {
      done.line.remove();
      const over = !cancelled && document.elementFromPoint(event.clientX, event.clientY);
      const target = over && over.closest && over.closest("g.node");
      if (target && root.contains(target) && target.dataset.nodeId !== done.id) onConnect(done.id, target.dataset.nodeId);
      return;
    }
    if (done.moved && !cancelled) onMove(done.id, done.at.x, done.at.y);
    else onSelect({ kind: "node", id: done.id });
  }
  root.addEventListener("pointerup", (event) => finish(event, false));
  root.addEventListener("pointercancel", (event) => finish(event, true));

  root.addEventListener("keydown", (event) => {
    const nodeGroup = event.target.closest && event.target.closest("g.node");
    const edgeGroup = event.target.closest && event.target.closest("g.edge");
    const selection = nodeGroup ? { kind: "node", id: nodeGroup.dataset.nodeId }
      : edgeGroup ? { kind: "edge", id: edgeGroup.dataset.edgeId } : null;
    if (!selection) return;
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      onSelect(selection);
    } else if ((event.key === "Delete" || event.key === "Backspace") && !readOnly) {
      event.preventDefault();
      event.stopPropagation(); // the page's own Delete handler acts on the selection, this on the focused item
      onDelete(selection);
    } else if (selection.kind === "node" && !readOnly && event.key.startsWith("Arrow")) {
      event.preventDefault();
      const node = nodeById(selection.id);
      const step = event.shiftKey ? 50 : 10;
      const [dx, dy] = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] }[event.key];
      onMove(selection.id, Math.max(0, node.position.x + dx), Math.max(0, node.position.y + dy));
    }
  });

  return { element: frame, draw, point, svgRoot: root };
}
