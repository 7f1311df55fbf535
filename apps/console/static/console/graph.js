// A workflow's graph as SVG: nodes in columns by depth (the longest path from a source, so every edge points
// right), stacked in their column in definition order. Each node is coloured by its status and names it in
// text too; `paint` recolours the drawn graph in place when statuses change (no redraw, no layout). The
// workflow page draws the same layout by node category instead, with each node a keyboard button.

import { svg } from "./dom.js";

const NODE_W = 160;
const NODE_H = 44;
const GAP_X = 60;
const GAP_Y = 18;
const PAD = 12;

/** Depth of each node id: 0 for sources, else 1 + the deepest predecessor (Kahn's order; linear). */
export function depths(nodes, edges) {
  const ids = nodes.map((node) => node.id);
  const incoming = new Map(ids.map((id) => [id, 0]));
  const next = new Map(ids.map((id) => [id, []]));
  for (const edge of edges) {
    if (!incoming.has(edge.source) || !incoming.has(edge.target)) continue;
    incoming.set(edge.target, incoming.get(edge.target) + 1);
    next.get(edge.source).push(edge.target);
  }
  const depth = new Map(ids.map((id) => [id, 0]));
  const ready = ids.filter((id) => incoming.get(id) === 0);
  while (ready.length) {
    const id = ready.pop();
    for (const target of next.get(id)) {
      depth.set(target, Math.max(depth.get(target), depth.get(id) + 1));
      incoming.set(target, incoming.get(target) - 1);
      if (incoming.get(target) === 0) ready.push(target);
    }
  }
  return depth; // nodes on a cycle (an invalid definition) stay in column 0
}

function layout(nodes, edges) {
  const depth = depths(nodes, edges);
  const rows = new Map();
  const place = new Map();
  for (const node of nodes) {
    const column = depth.get(node.id);
    const row = rows.get(column) || 0;
    rows.set(column, row + 1);
    place.set(node.id, { x: PAD + column * (NODE_W + GAP_X), y: PAD + row * (NODE_H + GAP_Y) });
  }
  const columns = Math.max(1, ...[...depth.values()].map((d) => d + 1));
  const height = Math.max(1, ...rows.values());
  return {
    place,
    width: PAD * 2 + columns * NODE_W + (columns - 1) * GAP_X,
    height: PAD * 2 + height * NODE_H + (height - 1) * GAP_Y,
  };
}

const categoryOf = (node) => (["source", "transform", "sink"].includes(node.type) ? node.type : "node");

// a node as the execution page draws it: `pending` until painted
function statusNode(node) {
  return [
    { class: "node status-pending", "data-status": "pending" },
    svg("title", {}, `${node.id} (${node.nodeType || node.type}): pending`),
    svg("text", { x: 8, y: 35, class: "state" }, "pending"),
  ];
}

// a node as the workflow page draws it: its category (source, transform, sink) by class and in text, and,
// when `focusable`, a button for the keyboard (Tab to it, Enter or Space opens it: the page listens)
function categoryNode(node, focusable) {
  const category = categoryOf(node);
  const kind = `${category} · ${node.nodeType || "?"}`;
  const attrs = { class: `node category-${category}`, "data-category": category };
  if (focusable) {
    Object.assign(attrs, { tabindex: 0, role: "button", "aria-label": `${node.label || node.id}: ${kind}` });
  }
  return [
    attrs,
    svg("title", {}, `${node.id} (${node.nodeType || "?"}): ${category}`),
    svg("text", { x: 8, y: 35, class: "kind" }, kind.length > 24 ? `${kind.slice(0, 23)}…` : kind),
  ];
}

/**
 * The SVG of a definition ({nodes, edges}). By default every node is `pending` until painted (`paint`);
 * with `{categories: true}` each node shows its category instead, and `{focusable: true}` makes each a
 * keyboard-reachable button (`data-node-id` names it).
 */
export function drawGraph(definition, { categories = false, focusable = false } = {}) {
  const nodes = definition.nodes || [];
  const edges = definition.edges || [];
  const { place, width, height } = layout(nodes, edges);
  const root = svg("svg", {
    class: "graph",
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: focusable ? "group" : "img",
    "aria-label": `Graph of ${nodes.length} nodes and ${edges.length} edges`,
  });
  root.append(
    svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto" },
      svg("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow" }))),
  );
  for (const edge of edges) {
    const from = place.get(edge.source);
    const to = place.get(edge.target);
    if (!from || !to) continue;
    root.append(svg("line", {
      class: "edge", x1: from.x + NODE_W, y1: from.y + NODE_H / 2, x2: to.x, y2: to.y + NODE_H / 2, "marker-end": "url(#arrow)",
    }));
  }
  for (const node of nodes) {
    const { x, y } = place.get(node.id);
    const [attrs, title, second] = categories ? categoryNode(node, focusable) : statusNode(node);
    root.append(
      svg("g", { ...attrs, "data-node-id": node.id, transform: `translate(${x},${y})` },
        title,
        svg("rect", { width: NODE_W, height: NODE_H, rx: 6 }),
        svg("text", { x: 8, y: 18, class: "label" }, String(node.label || node.id).slice(0, 22)),
        second,
      ),
    );
  }
  return root;
}

/** Recolour the drawn nodes: `statuses` maps node id -> status; nodes it does not name stay as they are. */
export function paint(root, statuses) {
  for (const group of root.querySelectorAll("g.node")) {
    const status = statuses.get(group.dataset.nodeId);
    if (!status || group.dataset.status === status) continue;
    group.setAttribute("class", `node status-${status}`);
    group.dataset.status = status;
    group.querySelector("text.state").textContent = status;
    const title = group.querySelector("title");
    title.textContent = title.textContent.replace(/: [a-z_]+$/, `: ${status}`);
  }
}
