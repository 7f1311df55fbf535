// One execution: its status, its nodes (a table) and its workflow's graph coloured by node status. While it
// runs, the API's live stream (Server-Sent Events) says when something happened; each burst of events
// refetches the execution (the stream signals, the execution's GET is the truth) and repaints in place.

import { get } from "./api.js";
import { h, statusBadge, when } from "./dom.js";
import { drawGraph, paint } from "./graph.js";

const FINISHED = new Set(["completed", "failed", "cancelled"]);
// the journal's event types (apps/workflows/engine): each arrives as an SSE event of that name
const JOURNAL_EVENTS = [
  "WorkflowStarted", "WorkflowCompleted", "WorkflowFailed", "WorkflowCancelled", "WorkflowPaused",
  "WorkflowResumed", "WorkflowRetried", "NodeExecutionStarted", "NodeExecutionCompleted",
  "NodeExecutionFailed", "NodeRetryScheduled", "NodeWaiting", "SignalReceived",
];
const REFRESH_MS = 200; // at most five refetches a second however many events arrive

function nodeRows(execution) {
  return (execution.nodes || []).map((node) =>
    h(
      "tr",
      { "data-node-id": node.nodeId },
      h("td", {}, node.nodeId),
      h("td", {}, statusBadge(node.status)),
      h("td", {}, when(node.startTime)),
      h("td", {}, when(node.endTime)),
      h("td", {}, node.error || ""),
    ),
  );
}

export async function executionPage(main, { params, base }) {
  const id = params[0];
  const path = `/api/v1/executions/${encodeURIComponent(id)}`;
  let execution = await get(path);
  const definition = await get(`/api/v1/workflows/${encodeURIComponent(execution.workflowId)}`);

  const status = h("p", { class: "execution-status", "aria-live": "polite" });
  const live = h("p", { class: "live" });
  const body = h("tbody");
  const graph = drawGraph(definition);

  function show() {
    status.replaceChildren("Status: ", statusBadge(execution.status));
    body.replaceChildren(...nodeRows(execution));
    paint(graph, new Map((execution.nodes || []).map((node) => [node.nodeId, node.status])));
    live.textContent = FINISHED.has(execution.status) ? "" : "Live: updates as the execution runs.";
  }

  main.replaceChildren(
    h("h1", {}, `Execution ${id}`),
    h("p", {}, "Workflow ", h("a", { href: `${base}executions?workflowId=${encodeURIComponent(execution.workflowId)}` }, execution.workflowId),
      ` (version ${execution.version ?? "?"})`),
    status,
    live,
    h("h2", {}, "Graph"),
    h("div", { class: "graph-frame" }, graph),
    h("h2", {}, "Nodes"),
    h("table", { class: "list" },
      h("thead", {}, h("tr", {}, ["Node", "Status", "Started", "Ended", "Error"].map((name) => h("th", { scope: "col" }, name)))),
      body),
  );
  show();
  if (FINISHED.has(execution.status)) return null;

  let timer = null;
  async function refresh() {
    timer = null;
    try {
      execution = await get(path);
    } catch (error) {
      live.textContent = `Live updates paused: ${error.message}`; // the next event tries again
      return;
    }
    show();
    if (FINISHED.has(execution.status)) stream.close();
  }
  const schedule = () => { timer = timer || setTimeout(refresh, REFRESH_MS); };
  const stream = new EventSource(`${path}/stream`);
  stream.onmessage = schedule; // an event without a type, should the API send one
  for (const type of JOURNAL_EVENTS) stream.addEventListener(type, schedule);
  stream.addEventListener("end", () => { stream.close(); schedule(); });
  return () => { stream.close(); clearTimeout(timer); };
}
