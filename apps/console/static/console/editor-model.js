// The editor's model: a workflow definition in the origin DSL ({id, name, description, tags, nodes, edges,
// and whatever else it holds, kept as it came}), the functions that change it, and the reading of the
// server's problems (field path -> messages) into problems per node, per edge and for the workflow.
// Pure: no DOM, so each function does one thing to plain data.

import { depths } from "./graph.js";

export const CATEGORIES = ["source", "transform", "sink"];
export const NODE_W = 176;
export const NODE_H = 56;
const GRID = 10;

export function emptyDefinition() {
  return { id: "", name: "", description: "", tags: [], nodes: [], edges: [] };
}

/** The catalogue ({source: [...], ...}) as one map `${category}:${type}` -> node type description. */
export function indexCatalogue(catalogue) {
  const byKey = new Map();
  for (const category of CATEGORIES) {
    for (const spec of catalogue[category] || []) byKey.set(`${category}:${spec.type}`, { ...spec, category });
  }
  return byKey;
}

/** The description of a node's type: by its declared category, else the first category that has it. */
export function specOf(byKey, node) {
  if (node.type && byKey.has(`${node.type}:${node.nodeType}`)) return byKey.get(`${node.type}:${node.nodeType}`);
  for (const category of CATEGORIES) {
    if (byKey.has(`${category}:${node.nodeType}`)) return byKey.get(`${category}:${node.nodeType}`);
  }
  return null;
}

/** A definition read from JSON (a file, the JSON view, the API): an object whose nodes and edges are
 * arrays of objects. Returns the error in words, or null. */
export function shapeError(value) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return "The definition must be a JSON object.";
  for (const key of ["nodes", "edges"]) {
    if (value[key] === undefined) continue;
    if (!Array.isArray(value[key])) return `"${key}" must be an array.`;
    const bad = value[key].findIndex((item) => item === null || typeof item !== "object" || Array.isArray(item));
    if (bad >= 0) return `${key}[${bad}] must be an object.`;
  }
  return null;
}

/** A copy of `value` ready for the editor: nodes and edges present, `valid` and `problems` (read-only
 * answers of the API) dropped. When a node has no position, or two share one (the API fills an omitted
 * position with {x: 0, y: 0}, so a definition posted without positions comes back with all nodes at the
 * origin), every node is laid out by depth, as the execution page's graph is: a pile is unreadable. */
export function normalise(value) {
  const { valid: _valid, problems: _problems, ...definition } = structuredClone(value);
  definition.nodes = definition.nodes || [];
  definition.edges = definition.edges || [];
  const seen = new Set();
  const placed = definition.nodes.every((node) => {
    const p = node.position;
    if (!p || typeof p !== "object" || !Number.isFinite(p.x) || !Number.isFinite(p.y)) return false;
    const key = `${p.x},${p.y}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  if (placed) return definition;
  const depth = depths(definition.nodes, definition.edges);
  const rows = new Map();
  for (const node of definition.nodes) {
    const column = depth.get(node.id) || 0;
    const row = rows.get(column) || 0;
    rows.set(column, row + 1);
    node.position = { x: 20 + column * (NODE_W + 64), y: 20 + row * (NODE_H + 44) }; // on the 10-pixel grid
  }
  return definition;
}

/** `base` or `base_2`, `base_3`, ... : the first one `taken` does not hold. */
export function uniqueId(base, taken) {
  const stem = base.replace(/[^A-Za-z0-9_-]+/g, "_").replace(/^_+|_+$/g, "") || "node";
  if (!taken.has(stem)) return stem;
  for (let n = 2; ; n += 1) if (!taken.has(`${stem}_${n}`)) return `${stem}_${n}`;
}

const snap = (value) => Math.max(0, Math.round(value / GRID) * GRID);

/** Add a node of `spec` at `position` (or below the others of its category); returns its id. */
export function addNode(definition, spec, position) {
  const id = uniqueId(spec.type, new Set(definition.nodes.map((node) => node.id)));
  const at = position || nextFreeSpot(definition, spec.category);
  definition.nodes.push({
    id,
    type: spec.category,
    nodeType: spec.type,
    label: spec.displayName,
    position: { x: snap(at.x), y: snap(at.y) },
    config: {},
  });
  return id;
}

function nextFreeSpot(definition, category) {
  const x = 20 + CATEGORIES.indexOf(category) * (NODE_W + 50);
  const below = definition.nodes
    .filter((node) => Math.abs((node.position?.x ?? -1000) - x) < NODE_W)
    .map((node) => node.position.y + NODE_H + 40);
  return { x, y: Math.max(20, ...below) };
}

export function moveNode(definition, id, x, y) {
  const node = definition.nodes.find((candidate) => candidate.id === id);
  if (node) node.position = { x: snap(x), y: snap(y) };
}

/** Connect source -> target; refuses (with the reason) a self-loop or an edge that exists. */
export function connect(definition, source, target) {
  if (source === target) return { error: "A node cannot be connected to itself." };
  if (definition.edges.some((edge) => edge.source === source && edge.target === target)) {
    return { error: `${source} is already connected to ${target}.` };
  }
  const taken = new Set(definition.edges.map((edge) => edge.id));
  let n = definition.edges.length + 1;
  while (taken.has(`e${n}`)) n += 1;
  const edge = { id: `e${n}`, source, target };
  definition.edges.push(edge);
  return { edge };
}

export function removeNode(definition, id) {
  definition.nodes = definition.nodes.filter((node) => node.id !== id);
  definition.edges = definition.edges.filter((edge) => edge.source !== id && edge.target !== id);
}

export function removeEdge(definition, id) {
  definition.edges = definition.edges.filter((edge) => edge.id !== id);
}

/** Rename a node, following its edges; refuses a blank id, a slash or one another node has. */
export function renameNode(definition, from, to) {
  if (!to.trim()) return "A node needs an id.";
  if (to.includes("/")) return "An id may not contain '/'.";
  if (to !== from && definition.nodes.some((node) => node.id === to)) return `Another node is already named ${to}.`;
  for (const node of definition.nodes) if (node.id === from) node.id = to;
  for (const edge of definition.edges) {
    if (edge.source === from) edge.source = to;
    if (edge.target === from) edge.target = to;
  }
  return null;
}

/** The server's problems ({"nodes[1].config.condition": [...], "name": [...]}) of the body that was sent,
 * attached to what they concern by id (indexes shift as one edits; ids are what the person sees):
 * {nodes: Map(id -> Map(field | "" -> messages)), edges: Map(id -> messages), all: [{path, messages, node?,
 * edge?, field?}]}. */
export function readProblems(problems, sent) {
  const result = { nodes: new Map(), edges: new Map(), all: [] };
  for (const [path, messages] of Object.entries(problems || {})) {
    const item = { path, messages: [].concat(messages) };
    const nodeMatch = path.match(/^nodes\[(\d+)\](?:\.(.+))?$/);
    const edgeMatch = path.match(/^edges\[(\d+)\](?:\.(.+))?$/);
    const node = nodeMatch && (sent.nodes || [])[Number(nodeMatch[1])];
    const edge = edgeMatch && (sent.edges || [])[Number(edgeMatch[1])];
    if (node && typeof node.id === "string") {
      item.node = node.id;
      item.field = nodeMatch[2] || "";
      if (!result.nodes.has(node.id)) result.nodes.set(node.id, new Map());
      const fields = result.nodes.get(node.id);
      fields.set(item.field, [...(fields.get(item.field) || []), ...item.messages]);
    } else if (edge && typeof edge.id === "string") {
      item.edge = edge.id;
      item.field = edgeMatch[2] || "";
      result.edges.set(edge.id, [...(result.edges.get(edge.id) || []), ...item.messages]);
    } else {
      item.field = path; // a workflow field (id, name, tags, ...) or the graph as a whole (nodes, edges)
    }
    result.all.push(item);
  }
  return result;
}

/** "Node 'f' (filter): This field is required." -> "This field is required." (the node is shown already). */
export function withoutNodePrefix(message) {
  return String(message).replace(/^Node '[^']*' \([^)]*\): /, "");
}
