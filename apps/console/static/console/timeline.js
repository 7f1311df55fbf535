// The timeline (Gantt) of an execution's node attempts: one row per node in the order they first started, a bar
// per attempt from its start to its end (to now while it runs), the wait before a retry as a bar of its own,
// and attempts that wait on a timer, a signal or an approval drawn hatched with that said in words.
//
// Positions are CSS variables: each bar holds its start and end in milliseconds from the execution's start
// (--s, --e) and the table holds the span shown (--span), so a longer span (time passing, a new attempt)
// is one style write on the table, not one per bar. `update` touches only the rows whose attempts changed;
// it is called on every refetch of the execution and, while it runs, once a second (the open bars grow).

import { h } from "./dom.js";
import { clock } from "./times.js";

// tick steps of the time axis, in milliseconds: the first that gives at most MAX_TICKS ticks is used
const STEPS = [10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 10e3, 15e3, 30e3, 60e3, 120e3, 300e3, 600e3, 900e3,
  1800e3, 3600e3, 7200e3, 21600e3, 43200e3, 86400e3];
const MAX_TICKS = 8;

/** "750 ms", "12.5 s", "3 min 20 s", "2 h 5 min". */
export function duration(ms) {
  if (ms < 1e3) return `${Math.round(ms)} ms`;
  if (ms < 60e3) return `${+(ms / 1e3).toFixed(ms < 10e3 ? 2 : 1)} s`;
  if (ms < 3600e3) return `${Math.floor(ms / 60e3)} min ${Math.round((ms % 60e3) / 1e3)} s`;
  return `${Math.floor(ms / 3600e3)} h ${Math.round((ms % 3600e3) / 60e3)} min`;
}

/** What an attempt waits (or waited) on, in words: "timer until 12:00:05", "signal order", "approval". */
export function waitText(node) {
  if (node.waitingFor === "timer") return node.until ? `timer until ${clock(node.until)}` : "timer";
  if (node.waitingFor === "signal") return `signal ${node.signal || ""}`.trim();
  if (node.waitingFor === "approval") return "approval";
  return node.waitingFor || "";
}

/** The bar's text: attempt number and status, and what it waits on. */
function label(node) {
  if (node.status === "waiting") return `#${node.attempt} waiting: ${waitText(node)}`;
  let text = `#${node.attempt} ${node.status}`;
  if (node.waitingFor) text += ` (waited: ${waitText(node)})`;
  if (node.approvedBy) text += `, approved by ${node.approvedBy}`;
  return text;
}

function tooltip(node, now) {
  const end = node.endTime ?? now;
  const parts = [`${node.nodeId} attempt ${node.attempt}: ${node.status}`, `started ${clock(node.startTime)}`];
  parts.push(node.endTime ? `ended ${clock(node.endTime)} (${duration(end - node.startTime)})` : `${duration(end - node.startTime)} so far`);
  if (node.error) parts.push(`error: ${node.error}`);
  return parts.join(", ");
}

function place(element, from, to) {
  element.style.setProperty("--s", String(from));
  element.style.setProperty("--e", String(Math.max(to, from)));
}

export function timeline() {
  const axis = h("div", { class: "timeline-axis", "aria-hidden": "true" });
  const start = h("span");
  const body = h("tbody");
  const table = h(
    "table",
    { class: "timeline", "data-testid": "timeline" },
    h("caption", {}, "Node attempts over time from the start (", start,
      "). Hatched bars wait on a timer, a signal or an approval; a dotted bar is the wait before a retry."),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Node"), h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Attempts"), axis))),
    body,
  );
  const empty = h("p", { class: "muted" }, "No node has started yet.");
  const frame = h("div", { class: "timeline-frame" }, empty, table);
  const rows = new Map(); // nodeId -> the row's track cell
  const bars = new Map(); // "nodeId#attempt" -> {bar, gap, signature, node}
  let origin = null; // the execution's start, epoch ms: 0 on the axis
  let axisStep = 0;
  let axisSpan = 0;

  function track(nodeId) {
    let cell = rows.get(nodeId);
    if (!cell) {
      cell = h("td", { class: "track" });
      body.append(h("tr", { "data-timeline-node": nodeId }, h("th", { scope: "row" }, nodeId), cell));
      rows.set(nodeId, cell);
    }
    return cell;
  }

  function draw(key, node, now) {
    let entry = bars.get(key);
    if (!entry) {
      entry = { bar: h("span", { class: "bar", "data-attempt": node.attempt }), gap: null, signature: "" };
      track(node.nodeId).append(entry.bar);
      bars.set(key, entry);
    }
    entry.node = node;
    const signature = [node.status, node.endTime, node.waitingFor, node.until, node.nextAttemptAt, node.approvedBy].join("|");
    if (signature !== entry.signature) {
      entry.signature = signature;
      const waits = node.waitingFor ? " bar-wait" : "";
      entry.bar.className = `bar bar-${node.status}${waits}`;
      entry.bar.dataset.status = node.status;
      entry.bar.textContent = label(node);
      if (node.nextAttemptAt && !entry.gap) {
        entry.gap = h("span", { class: "bar bar-retry", "data-kind": "retry-wait" });
        entry.bar.after(entry.gap);
      }
      if (entry.gap) entry.gap.textContent = `retry in ${duration(node.retryDelayMs || 0)}`;
    }
    entry.bar.title = tooltip(node, now);
    place(entry.bar, node.startTime - origin, (node.endTime ?? now) - origin);
    if (entry.gap) place(entry.gap, node.endTime - origin, Date.parse(node.nextAttemptAt) - origin);
  }

  function drawAxis(span) {
    const step = STEPS.find((candidate) => span / candidate <= MAX_TICKS) || STEPS[STEPS.length - 1];
    const count = Math.floor(span / step);
    if (step === axisStep && count === Math.floor(axisSpan / step)) return;
    axisStep = step;
    axisSpan = span;
    const ticks = [];
    for (let i = 0; i <= count; i++) {
      const tick = h("span", { class: "tick" }, `+${duration(i * step)}`);
      tick.style.setProperty("--t", String(i * step));
      ticks.push(tick);
    }
    axis.replaceChildren(...ticks);
  }

  /** Draw the attempts of `execution` (GET /api/v1/executions/{id}): new bars, changed ones, the span. */
  function update(execution, now = Date.now()) {
    const nodes = (execution.nodes || []).filter((node) => node.startTime != null);
    if (!nodes.length) return;
    const first = execution.startTime ?? Math.min(...nodes.map((node) => node.startTime));
    if (origin !== first) {
      origin = first;
      start.textContent = clock(first);
      for (const entry of bars.values()) entry.signature = ""; // every bar moves
    }
    empty.hidden = true;
    const ended = execution.endTime ?? null;
    let last = ended ?? now;
    for (const node of nodes) {
      const open = node.endTime == null;
      const key = `${node.nodeId}#${node.attempt}`;
      const entry = bars.get(key);
      // a closed attempt whose data did not change stays as it is; open ones grow with time
      if (!entry || open || entry.signature === "" || entry.node.endTime !== node.endTime || entry.node.status !== node.status ||
          entry.node.nextAttemptAt !== node.nextAttemptAt || entry.node.waitingFor !== node.waitingFor) {
        draw(key, node, ended ?? now);
      }
      last = Math.max(last, node.endTime ?? 0, node.nextAttemptAt ? Date.parse(node.nextAttemptAt) : 0);
    }
    const span = Math.max(1, last - origin);
    table.style.setProperty("--span", String(span));
    drawAxis(span);
  }

  return { element: frame, update };
}
