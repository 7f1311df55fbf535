// One execution: its status, its nodes (a table) and its workflow's graph coloured by node status. While it
// runs, the API's live stream (Server-Sent Events) says when something happened; each burst of events
// refetches the execution (the stream signals, the execution's GET is the truth) and repaints in place.
// The actions (actions.js) send commands; the stream, reopened if the execution had ended (a retry), shows
// their effect.

import { actionsRegion } from "./actions.js";
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

export async function executionPage(main, { params, base, user }) {
  const id = params[0];
  const path = `/api/v1/executions/${encodeURIComponent(id)}`;
  let execution = await get(path);
  const definition = await get(`/api/v1/workflows/${encodeURIComponent(execution.workflowId)}`);

  const status = h("p", { class: "execution-status", "aria-live": "polite" });
  const live = h("p", { class: "live" });
  const body = h("tbody");
  const graph = drawGraph(definition);
  const actions = actionsRegion(id, (user && user.roles) || [], { base, onSent: (route) => sent(route) });

  function show() {
    status.replaceChildren("Status: ", statusBadge(execution.status));
    body.replaceChildren(...nodeRows(execution));
    paint(graph, new Map((execution.nodes || []).map((node) => [node.nodeId, node.status])));
    live.textContent = FINISHED.has(execution.status) ? "" : "Live: updates as the execution runs.";
    actions.update(execution);
  }

  main.replaceChildren(
    h("h1", {}, `Execution ${id}`),
    h("p", {}, "Workflow ", h("a", { href: `${base}executions?workflowId=${encodeURIComponent(execution.workflowId)}` }, execution.workflowId),
      ` (version ${execution.version ?? "?"})`),
    status,
    live,
    actions.region,
    h("h2", {}, "Graph"),
    h("div", { class: "graph-frame" }, graph),
    h("h2", {}, "Nodes"),
    h("table", { class: "list" },
      h("thead", {}, h("tr", {}, ["Node", "Status", "Started", "Ended", "Error"].map((name) => h("th", { scope: "col" }, name)))),
      body),
  );
  show();

  let timer = null;
  let stream = null;
  let watch = null; // after a command to an ended execution: refetch until its status moves
  async function refresh() {
    timer = null;
    try {
      execution = await get(path);
    } catch (error) {
      live.textContent = `Live updates paused: ${error.message}`; // the next event tries again
      return;
    }
    show();
    if (FINISHED.has(execution.status)) stop();
    else follow();
  }
  const schedule = () => { timer = timer || setTimeout(refresh, REFRESH_MS); };
  function follow() {
    if (stream) return;
    stream = new EventSource(`${path}/stream`);
    stream.onmessage = schedule; // an event without a type, should the API send one
    for (const type of JOURNAL_EVENTS) stream.addEventListener(type, schedule);
    stream.addEventListener("end", () => { stop(); schedule(); });
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
  return () => { stop(); clearTimeout(timer); clearInterval(watch); };
}
