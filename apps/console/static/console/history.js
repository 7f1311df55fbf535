// An execution's journal and logs, each a paged table that loads a page at a time (long journals stay cheap).
//
// The event history (GET /api/v1/executions/{id}/events?after=&limit=): one compact row per event (seq, time,
// type, node, a short summary) and, behind a button per row, the event's raw JSON. Once the last page is
// shown, new events are appended as the execution's lastSeq moves (live), a page at most per refetch.
//
// The logs (GET /api/v1/workflows/{wf}/executions/{id}/logs?limit=&offset=): time, node, level, message;
// while the execution runs, new lines are asked for at most every LOG_POLL_MS.

import { get, query } from "./api.js";
import { h } from "./dom.js";
import { dateTime as when } from "./times.js";
import { duration, waitText } from "./timeline.js";

export const EVENTS_PAGE = 100;
export const LOGS_PAGE = 100;
const LOG_POLL_MS = 2000;
const SUMMARY_CHARS = 140;

function clip(text) {
  const value = String(text ?? "");
  return value.length > SUMMARY_CHARS ? `${value.slice(0, SUMMARY_CHARS - 1)}…` : value;
}

/** One line saying what an event means, from its payload (the engine's event types; others: their keys). */
export function summary(type, p) {
  switch (type) {
    case "WorkflowStarted": return `${p.workflowName || p.workflowId}, ${p.totalNodes ?? "?"} nodes`;
    case "NodeExecutionStarted": return `attempt ${p.attempt} (${p.nodeType})`;
    case "NodeExecutionCompleted":
      return `attempt ${p.attempt}: ${p.recordsProcessed ?? 0} records in ${duration(p.duration ?? 0)}` +
        (p.approvedBy ? `, approved by ${p.approvedBy}` : "");
    case "NodeExecutionFailed": return `attempt ${p.attempt}: ${clip(p.error)}${p.willRetry ? " (will retry)" : ""}`;
    case "NodeRetryScheduled": return `attempt ${p.nextAttempt} in ${duration(p.delayMs ?? 0)}`;
    case "NodeWaiting": return `waiting: ${waitText({ ...p, until: p.until ? new Date(p.until).toISOString() : null })}`;
    case "SignalReceived": return `signal ${p.name}${p.by ? ` from ${p.by}` : ""}`;
    case "WorkflowCompleted": return `in ${duration(p.duration ?? 0)}`;
    case "WorkflowFailed": return clip(`${p.failedNodeId ? `${p.failedNodeId}: ` : ""}${p.reason ?? ""}`);
    case "WorkflowCancelled": return clip(`${p.reason ?? ""}${p.by ? ` (by ${p.by})` : ""}`);
    case "WorkflowPaused": case "WorkflowResumed": return p.by ? `by ${p.by}` : "";
    case "WorkflowRetried": return `nodes ${(p.nodes || []).join(", ")}${p.by ? ` (by ${p.by})` : ""}`;
    default: return clip(Object.keys(p || {}).join(", "));
  }
}

/** A button that shows and hides `target` (created on first opening by `make`), with aria-expanded. */
export function toggle(text, make) {
  let target = null;
  const button = h("button", { type: "button", class: "view toggle", "aria-expanded": "false" }, text);
  button.addEventListener("click", () => {
    const open = button.getAttribute("aria-expanded") !== "true";
    if (open && !target) {
      target = make();
      target.id ||= `toggled-${Math.random().toString(36).slice(2)}`;
      button.setAttribute("aria-controls", target.id);
    }
    button.setAttribute("aria-expanded", String(open));
    target.hidden = !open;
  });
  return button;
}

function eventRows(event) {
  const json = h("tr", { class: "raw" }, h("td", { colspan: 6 }, h("pre", {}, JSON.stringify(event, null, 2))));
  json.hidden = true;
  const row = h(
    "tr",
    { "data-seq": event.seq },
    h("td", {}, event.seq),
    h("td", {}, when(event.timestamp)),
    h("td", {}, event.type),
    h("td", {}, event.payload?.nodeId || ""),
    h("td", {}, summary(event.type, event.payload || {})),
    h("td", {}, toggle(`JSON of event ${event.seq}`, () => { row.after(json); return json; })),
  );
  return row;
}

/** A table filled a page at a time by `load(state) -> {items, done}`, with a "more" button while more may come. */
function pagedTable({ heading, columns, moreText, emptyText, rowsOf, load }) {
  const body = h("tbody");
  const note = h("p", { class: "muted" }, "Loading…");
  const more = h("button", { type: "button", class: "view more" }, moreText);
  more.hidden = true;
  const table = h("table", { class: "list compact" },
    h("thead", {}, h("tr", {}, columns.map((name) => h("th", { scope: "col" }, name)))), body);
  table.hidden = true;
  let busy = null;
  let done = false;
  let count = 0;
  async function next() {
    if (busy) return busy;
    busy = (async () => {
      try {
        const page = await load(count);
        for (const item of page.items) body.append(...[].concat(rowsOf(item)));
        count += page.items.length;
        done = page.items.length < page.limit;
        note.textContent = count ? "" : emptyText;
        note.hidden = !!count;
        table.hidden = !count;
        more.hidden = done;
      } catch (error) {
        note.hidden = false;
        note.textContent = `Could not load: ${error.message}`;
      } finally {
        busy = null;
      }
    })();
    return busy;
  }
  more.addEventListener("click", next);
  return {
    element: h("section", { "aria-label": heading }, h("h2", {}, heading), note, table, more),
    next,
    get done() { return done; },
    get count() { return count; },
  };
}

export function eventHistory(executionId) {
  let lastSeq = 0;
  const pager = pagedTable({
    heading: "Event history",
    columns: ["Seq", "Time", "Type", "Node", "Summary", "Raw JSON"],
    moreText: "Show more events",
    emptyText: "No events yet.",
    rowsOf: eventRows,
    async load() {
      const page = await get(`/api/v1/executions/${encodeURIComponent(executionId)}/events${query({ after: String(lastSeq), limit: String(EVENTS_PAGE) })}`);
      if (page.events.length) lastSeq = page.events[page.events.length - 1].seq;
      return { items: page.events, limit: EVENTS_PAGE };
    },
  });
  pager.element.dataset.testid = "history";
  return {
    element: pager.element,
    load: () => pager.next(),
    /** The execution now has `seq` events: if the table shows the end of the journal, append the new ones. */
    update(seq) {
      if (pager.done && seq > lastSeq) pager.next();
    },
  };
}

function logRow(entry) {
  return h("tr", { class: `log log-${entry.level}` },
    h("td", {}, when(entry.timestamp)), h("td", {}, entry.nodeId || ""), h("td", {}, entry.level), h("td", {}, h("code", {}, entry.message)));
}

export function executionLogs(workflowId, executionId) {
  const path = `/api/v1/workflows/${encodeURIComponent(workflowId)}/executions/${encodeURIComponent(executionId)}/logs`;
  let asked = 0;
  const pager = pagedTable({
    heading: "Logs",
    columns: ["Time", "Node", "Level", "Message"],
    moreText: "Show more log lines",
    emptyText: "No log lines.",
    rowsOf: logRow,
    async load(offset) {
      asked = Date.now();
      const page = await get(`${path}${query({ limit: String(LOGS_PAGE), offset: String(offset) })}`);
      return { items: page.entries, limit: LOGS_PAGE };
    },
  });
  pager.element.dataset.testid = "logs";
  return {
    element: pager.element,
    load: () => pager.next(),
    /** After a refetch: when the last page is shown, look for new lines (throttled while it runs; once at the end). */
    update(finished) {
      if (!pager.done) return;
      if (finished || Date.now() - asked >= LOG_POLL_MS) pager.next();
    },
  };
}
