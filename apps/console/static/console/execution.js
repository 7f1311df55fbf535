// One execution: its status, error, graph coloured by node status, timeline of attempts, nodes (a table, with
// each node's output preview behind a button), input, event history and logs. While it runs, the API's live
// stream (Server-Sent Events) says when something happened; each burst of events refetches the execution (the
// stream signals, the execution's GET is the truth) and repaints in place: only the rows and bars whose data
// changed are touched, so a 500-node execution stays cheap to follow. The actions (actions.js) send commands;
// the stream, reopened if the execution had ended (a retry), shows their effect.
//
// A load is 4 requests whatever the size: the execution, its workflow's definition, the first page of events
// and of logs (those two are drawn when they arrive). Once the graph, the nodes and the timeline are drawn, the
// page root gets data-ready and the performance mark "execution-ready" (bench/console_load.py reads it).

import { actionsRegion } from "./actions.js";
import { get } from "./api.js";
import { h, statusBadge } from "./dom.js";
import { dateTime as when } from "./times.js";
import { drawGraph, paint } from "./graph.js";
import { eventHistory, executionLogs, toggle } from "./history.js";
import { timeline } from "./timeline.js";

const FINISHED = new Set(["completed", "failed", "cancelled"]);
// the journal's event types (apps/workflows/engine): each arrives as an SSE event of that name
const JOURNAL_EVENTS = [
  "WorkflowStarted", "WorkflowCompleted", "WorkflowFailed", "WorkflowCancelled", "WorkflowPaused",
  "WorkflowResumed", "WorkflowRetried", "NodeExecutionStarted", "NodeExecutionCompleted",
  "NodeExecutionFailed", "NodeRetryScheduled", "NodeWaiting", "SignalReceived",
];
const STREAM_RETRY_MS = 2000; // after the gateway refused a stream (429): refetch, then open it again
const REFRESH_MS = 200; // at most five refetches a second however many events arrive
const TICK_MS = 1000; // the timeline's open bars grow this often while the execution runs

/** The latest attempt of each node, in the order the nodes first started. */
function latestAttempts(execution) {
  const latest = new Map();
  for (const node of execution.nodes || []) latest.set(node.nodeId, node);
  return latest;
}

/** A node's status as shown: a failed attempt whose retry is scheduled is the node waiting to retry. */
function shownStatus(node, execution) {
  return node.status === "failed" && node.willRetry && !FINISHED.has(execution.status) ? "retry_wait" : node.status;
}

const rowId = (nodeId) => `node-row-${nodeId}`;

function outputCell(nodeId, output, row) {
  if (!output) return "—";
  const shown = (output.preview || []).length;
  const text = `${output.recordCount} record${output.recordCount === 1 ? "" : "s"}`;
  if (!output.recordCount) return text; // a sink's: nothing to preview
  return [
    text, " ",
    toggle(`Output of ${nodeId}`, () => {
      const detail = h("tr", { class: "output", "data-output-of": nodeId },
        h("td", { colspan: 8 },
          h("p", { class: "muted" }, `Output of ${nodeId}, attempt ${output.attempt}: ${shown < output.recordCount ? `the first ${shown} of ` : ""}${text} (${output.sizeBytes} bytes)`),
          h("pre", {}, JSON.stringify(output.preview, null, 2))));
      row.after(detail);
      return detail;
    }),
  ];
}

/** The nodes table: one row per node (its latest attempt), updated in place row by row. */
function nodesTable() {
  const body = h("tbody");
  const rows = new Map(); // nodeId -> {row, signature}
  const table = h("table", { class: "list nodes" },
    h("thead", {}, h("tr", {}, ["Node", "Status", "Attempt", "Started", "Ended", "Records", "Output", "Error"].map((name) => h("th", { scope: "col" }, name)))),
    body);
  function update(execution) {
    const outputs = execution.outputs || {};
    for (const [nodeId, node] of latestAttempts(execution)) {
      const output = outputs[nodeId];
      const status = shownStatus(node, execution);
      const signature = [status, node.attempt, node.endTime, node.error, output && output.attempt].join("|");
      let entry = rows.get(nodeId);
      if (entry && entry.signature === signature) continue;
      const row = h("tr", { id: rowId(nodeId), "data-node-id": nodeId, tabindex: -1 });
      row.append(
        h("td", {}, nodeId),
        h("td", {}, statusBadge(status)),
        h("td", {}, node.attempt),
        h("td", {}, when(node.startTime)),
        h("td", {}, when(node.endTime)),
        h("td", {}, node.recordsProcessed ?? ""),
        h("td", {}, outputCell(nodeId, output, row)),
        h("td", {}, node.error || ""),
      );
      if (entry) {
        const open = entry.row.nextElementSibling;
        if (open && open.dataset.outputOf === nodeId) open.remove(); // its output changed: closed again
        entry.row.replaceWith(row);
      } else body.append(row);
      rows.set(nodeId, { row, signature });
    }
  }
  return { element: h("div", { class: "nodes-frame" }, table), update };
}

/** Bring a node to the eye: its row (focused) and its box in the graph (marked). */
function showNode(graph, nodeId) {
  for (const marked of graph.querySelectorAll("g.node[data-selected]")) marked.removeAttribute("data-selected");
  const box = graph.querySelector(`g.node[data-node-id="${CSS.escape(nodeId)}"]`);
  if (box) {
    box.setAttribute("data-selected", "true");
    box.scrollIntoView({ block: "nearest", inline: "center" });
  }
  const row = document.getElementById(rowId(nodeId));
  if (row) {
    row.scrollIntoView({ block: "center" });
    row.focus({ preventScroll: true });
  }
}

function errorRegion(graph) {
  const region = h("section", { class: "execution-error", role: "region", "aria-label": "Error", "data-testid": "error" });
  region.hidden = true;
  let shown = "";
  function update(execution) {
    const signature = `${execution.error || ""}|${execution.failedNodeId || ""}`;
    if (signature === shown) return;
    shown = signature;
    region.hidden = !execution.error;
    if (!execution.error) return region.replaceChildren();
    const failed = execution.failedNodeId;
    const link = failed
      ? h("a", { href: `#${rowId(failed)}`, onclick: (event) => { event.preventDefault(); showNode(graph, failed); } }, failed)
      : null;
    region.replaceChildren(
      h("h2", {}, "Error"),
      failed ? h("p", {}, "Failed node: ", link) : null,
      h("pre", { class: "error-text" }, execution.error),
    );
  }
  return { element: region, update };
}

function inputSection(execution) {
  const input = execution.input;
  const empty = input === null || input === undefined || (typeof input === "object" && !Object.keys(input).length);
  return h("section", { "aria-label": "Input", "data-testid": "input" },
    h("h2", {}, "Input"),
    empty ? h("p", { class: "muted" }, "No input.") : h("pre", {}, JSON.stringify(input, null, 2)));
}

function facts(execution) {
  const parts = [`trigger ${execution.trigger || "?"}`];
  if (execution.startedBy) parts.push(`by ${execution.startedBy}`);
  parts.push(`started ${when(execution.startTime)}`);
  if (execution.endTime) parts.push(`ended ${when(execution.endTime)}`);
  return parts.join(" · ");
}

/** After two frames the first one has been painted: the page is drawn, not just built. */
function markReady(root) {
  requestAnimationFrame(() => requestAnimationFrame(() => {
    performance.mark("execution-ready");
    root.dataset.ready = "true";
  }));
}

export async function executionPage(main, { params, base, user }) {
  const id = params[0];
  const path = `/api/v1/executions/${encodeURIComponent(id)}`;
  const history = eventHistory(id);
  const historyLoaded = history.load(); // needs only the id: asked for alongside the execution
  let execution = await get(path);
  const logs = executionLogs(execution.workflowId, id);
  const logsLoaded = logs.load();
  const definition = await get(`/api/v1/workflows/${encodeURIComponent(execution.workflowId)}`);
  performance.mark("execution-data"); // the parts of a load, for bench/console_load.py

  const status = h("p", { class: "execution-status", "aria-live": "polite" });
  const about = h("p", { class: "muted" });
  const live = h("p", { class: "live" });
  const graph = drawGraph(definition);
  const nodes = nodesTable();
  const gantt = timeline();
  const error = errorRegion(graph);
  const actions = actionsRegion(id, (user && user.roles) || [], { base, onSent: (route) => sent(route) });

  function show() {
    status.replaceChildren("Status: ", statusBadge(execution.status));
    about.textContent = facts(execution);
    error.update(execution);
    nodes.update(execution);
    gantt.update(execution);
    paint(graph, new Map([...latestAttempts(execution)].map(([nodeId, node]) => [nodeId, shownStatus(node, execution)])));
    live.textContent = FINISHED.has(execution.status) ? "" : "Live: updates as the execution runs.";
    actions.update(execution);
    history.update(execution.lastSeq || 0);
    logs.update(FINISHED.has(execution.status));
  }

  const root = h("div", { class: "execution-page" },
    h("h1", {}, `Execution ${id}`),
    h("p", {}, "Workflow ", h("a", { href: `${base}executions?workflowId=${encodeURIComponent(execution.workflowId)}` }, execution.workflowId),
      ` (version ${execution.version ?? "?"})`),
    status,
    about,
    live,
    error.element,
    actions.region,
    h("h2", {}, "Graph"),
    h("div", { class: "graph-frame" }, graph),
    h("h2", {}, "Timeline"),
    gantt.element,
    h("h2", {}, "Nodes"),
    nodes.element,
    inputSection(execution),
    history.element,
    logs.element,
  );
  main.replaceChildren(root);
  show();
  performance.mark("execution-built");
  markReady(root);
  Promise.all([historyLoaded, logsLoaded]).then(() => history.update(execution.lastSeq || 0));

  let timer = null;
  let stream = null;
  let watch = null; // after a command to an ended execution: refetch until its status moves
  let retrying = null; // a stream the gateway refused: refetch and reopen after STREAM_RETRY_MS
  const ticker = setInterval(() => { if (!FINISHED.has(execution.status)) gantt.update(execution); }, TICK_MS);
  async function refresh() {
    timer = null;
    try {
      execution = await get(path);
    } catch (failure) {
      live.textContent = `Live updates paused: ${failure.message}`;
      retrying = retrying || setTimeout(() => { retrying = null; refresh(); }, STREAM_RETRY_MS);
      return;
    }
    show();
    if (FINISHED.has(execution.status)) stop();
    else follow();
  }
  const schedule = () => { timer = timer || setTimeout(refresh, REFRESH_MS); };
  function follow() {
    if (stream || retrying) return;
    stream = new EventSource(`${path}/stream`);
    stream.onmessage = schedule; // an event without a type, should the API send one
    for (const type of JOURNAL_EVENTS) stream.addEventListener(type, schedule);
    stream.addEventListener("end", () => { stop(); schedule(); });
    stream.onerror = () => {
      // EventSource reconnects by itself after a dropped connection (readyState CONNECTING), but gives up on
      // an HTTP refusal such as the gateway's 429 when its streams are all taken (CLOSED): then refetch now
      // and open a stream again a little later, so the page never stops following a running execution
      if (!stream || stream.readyState !== EventSource.CLOSED) return;
      stop();
      live.textContent = "Live updates: the stream was refused; trying again.";
      retrying = setTimeout(() => { retrying = null; refresh(); }, STREAM_RETRY_MS);
    };
  }
  function stop() {
    if (stream) stream.close();
    stream = null;
  }
  // a command is applied by the shard's owner moments after the 202: a running execution's stream shows it;
  // an ended one (retry) has no stream until it runs again, so look a few times
  function sent(route) {
    schedule();
    if (route === "rerun" || !FINISHED.has(execution.status)) return; // a rerun is another execution
    const was = execution.status;
    let tries = 0;
    clearInterval(watch);
    watch = setInterval(() => {
      if (++tries > 40 || execution.status !== was) clearInterval(watch);
      else schedule();
    }, 500);
  }
  if (!FINISHED.has(execution.status)) follow();
  return () => { stop(); clearTimeout(timer); clearTimeout(retrying); clearInterval(watch); clearInterval(ticker); };
}
