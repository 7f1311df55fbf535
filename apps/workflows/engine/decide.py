"""What a command does to an execution: the events to append, and the work that follows from them.

``decide`` is pure. It never re-applies a command whose effect is already in the state (a stale or duplicate
node result, a timer for an attempt that already ended, a second cancel), which together with the inbox makes
state transitions exactly-once (invariant 2). What must happen later is returned as data: node runs, timers
(durable rows, invariant 5), attempts to stop, and outputs of nodes completed here.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from apps.workflows.engine.graph import Graph, GraphNode
from apps.workflows.engine.state import (
    ACTIVE_NODE,
    EventRecord,
    ExecutionState,
    ExecutionStatus,
    NodeStatus,
    apply_in_place,
    owned,
)
from apps.workflows.engine.waits import rejection_of


@dataclass(frozen=True)
class Start:
    pass


@dataclass(frozen=True)
class NodeSucceeded:
    node_id: str
    attempt: int
    records_processed: int
    duration_ms: int


@dataclass(frozen=True)
class NodeFailed:
    node_id: str
    attempt: int
    error: str
    retryable: bool = False


@dataclass(frozen=True)
class TimerFired:
    kind: str  # retry, node_timeout, wait, wait_timeout, workflow_timeout
    node_id: str = ""
    attempt: int = 0


@dataclass(frozen=True)
class Cancel:
    by: str = ""
    reason: str = "cancelled"


@dataclass(frozen=True)
class Pause:
    by: str = ""


@dataclass(frozen=True)
class Resume:
    by: str = ""


@dataclass(frozen=True)
class RetryFailed:
    by: str = ""


@dataclass(frozen=True)
class Signal:
    name: str
    payload: Any = None
    by: str = ""


@dataclass(frozen=True)
class RunStartedInline:
    """Run the inline attempts that were started but left for a later transaction (``services/batch.py``
    bounds the inline work of one transaction): they are the inline attempts still running, since an inline
    attempt runs only inside the transaction of its shard's owner."""


Command = (
    Start
    | NodeSucceeded
    | NodeFailed
    | TimerFired
    | Cancel
    | Pause
    | Resume
    | RetryFailed
    | Signal
    | RunStartedInline
)


@dataclass(frozen=True)
class RunNode:
    """Run attempt ``attempt`` of ``node_id``; ``inline`` nodes may run inside the deciding transaction."""

    node_id: str
    attempt: int
    inline: bool
    behavior: str = "run"


@dataclass(frozen=True)
class Timer:
    kind: str
    node_id: str
    attempt: int
    fire_at_ms: int


@dataclass
class Decision:
    state: ExecutionState
    events: list[EventRecord] = field(default_factory=list)
    runs: list[RunNode] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)
    stops: list[tuple[str, int]] = field(default_factory=list)
    # outputs of nodes completed by the decision itself: ("passthrough", None) or ("records", [...])
    outputs: dict[str, tuple[str, Any]] = field(default_factory=dict)
    # nodes found ready and not started yet, as (position in graph.order, node id): a heap
    ready: list[tuple[int, str]] = field(default_factory=list, repr=False)
    # node id -> how many of its upstream nodes, in edge order, are known completed (see ``decide``)
    upstream_done: dict[str, int] = field(default_factory=dict, repr=False)
    # whether ``state.nodes`` is this decision's to update in place; if not, the first event copies it
    owns_state: bool = field(default=False, repr=False)

    def emit(self, event_type: str, payload: dict[str, Any]) -> None:
        if not self.owns_state:
            self.state, self.owns_state = owned(self.state), True
        event = EventRecord(self.state.last_seq + 1, event_type, payload)
        self.state = apply_in_place(self.state, event)
        self.events.append(event)


@dataclass(frozen=True)
class _Ctx:
    graph: Graph
    now_ms: int

    def base(self, state: ExecutionState) -> dict[str, Any]:
        return {
            "workflowId": self.graph.workflow_id,
            "executionId": state.execution_id,
            "timestamp": self.now_ms,
        }

    def node_base(self, state: ExecutionState, node: GraphNode, attempt: int) -> dict[str, Any]:
        return {**self.base(state), "nodeId": node.id, "nodeType": node.node_type, "attempt": attempt}


def decide(
    state: ExecutionState,
    graph: Graph,
    command: Command,
    now_ms: int,
    *,
    owned_state: bool = False,
    upstream_done: dict[str, int] | None = None,
) -> Decision:
    """Events and follow-up work for ``command``; an empty decision when it changes nothing.

    Its cost follows what the command changes, not the graph's size: a node's result looks at that node's
    downstream nodes only. Only a start, a resume and a retry of failed nodes look at every node.

    A caller deciding many commands in a row (``services/batch.py``) passes ``owned_state``: it owns
    ``state.nodes`` (``state.owned``) and gives it up, so it is not copied; and the same ``upstream_done``
    dict each time, so that a fan-in of n nodes costs n checks in all rather than n². It holds counts of
    leading upstream nodes seen completed, valid for any later state of the execution (a completed node
    stays completed); never pass it with an earlier state."""
    memo = {} if upstream_done is None else upstream_done
    d = Decision(state, upstream_done=memo, owns_state=owned_state)
    ctx = _Ctx(graph, now_ms)
    if state.terminal and not isinstance(command, RetryFailed):
        return d
    handler = _HANDLERS[type(command)]
    handler(d, ctx, command)
    return d


# --- starting -------------------------------------------------------------------------------------------


def _start(d: Decision, ctx: _Ctx, c: Start) -> None:
    if d.state.status != ExecutionStatus.PENDING:
        return
    d.emit(
        "WorkflowStarted",
        {**ctx.base(d.state), "workflowName": ctx.graph.name, "totalNodes": len(ctx.graph.nodes)},
    )
    _workflow_timer(d, ctx)
    _start_ready(d, ctx)


def _workflow_timer(d: Decision, ctx: _Ctx) -> None:
    timeout = ctx.graph.policies.timeout_ms
    if timeout:
        d.timers.append(Timer("workflow_timeout", "", d.state.last_seq, ctx.now_ms + timeout))


def _start_ready(d: Decision, ctx: _Ctx, candidates: Iterable[str] | None = None) -> None:
    """Start every pending node whose upstream nodes all completed, lowest position in ``graph.order``
    first (also across nested calls: a node completed on start, by a buffered signal, starts its own).

    Only ``candidates`` can have become ready: the downstream nodes of a node that just completed, since
    every other ready node was started when it became ready. ``None`` looks at every node (a start, a resume,
    a retry of failed nodes: what a pause or a failure left unstarted)."""
    if d.state.status != ExecutionStatus.RUNNING:
        return  # paused: nothing new starts; resume picks up from here
    position = ctx.graph.position
    for node_id in ctx.graph.order if candidates is None else candidates:
        if _is_ready(d, ctx.graph.nodes[node_id]):
            heapq.heappush(d.ready, (position[node_id], node_id))
    while d.ready and d.state.status == ExecutionStatus.RUNNING:
        _, node_id = heapq.heappop(d.ready)
        if d.state.node(node_id).status == NodeStatus.PENDING:  # not started by a nested call meanwhile
            _start_node(d, ctx, ctx.graph.nodes[node_id])


def _is_ready(d: Decision, node: GraphNode) -> bool:
    """Pending, with every upstream node completed; resumes where the last check of the node stopped."""
    if d.state.node(node.id).status != NodeStatus.PENDING:
        return False
    upstream, done = node.upstream, d.upstream_done.get(node.id, 0)
    while done < len(upstream) and d.state.node(upstream[done]).status == NodeStatus.COMPLETED:
        done += 1
    d.upstream_done[node.id] = done
    return done == len(upstream)


def _start_node(d: Decision, ctx: _Ctx, node: GraphNode) -> None:
    attempt = d.state.node(node.id).attempt + 1
    d.emit("NodeExecutionStarted", ctx.node_base(d.state, node, attempt))
    if node.behavior == "wait":
        _start_wait(d, ctx, node, attempt)
        return
    d.runs.append(RunNode(node.id, attempt, node.inline, node.behavior))
    if node.timeout_ms and not node.inline:
        d.timers.append(Timer("node_timeout", node.id, attempt, ctx.now_ms + node.timeout_ms))


def _start_wait(d: Decision, ctx: _Ctx, node: GraphNode, attempt: int) -> None:
    spec = node.wait
    assert spec is not None
    if spec.kind == "timer":
        until = spec.fire_at(ctx.now_ms)
        d.emit(
            "NodeWaiting", {**ctx.node_base(d.state, node, attempt), "waitingFor": "timer", "until": until}
        )
        d.timers.append(Timer("wait", node.id, attempt, until))
        return
    what = "approval" if spec.approval else "signal"
    d.emit(
        "NodeWaiting", {**ctx.node_base(d.state, node, attempt), "waitingFor": what, "signal": spec.signal}
    )
    if spec.timeout_ms:
        d.timers.append(Timer("wait_timeout", node.id, attempt, ctx.now_ms + spec.timeout_ms))
    _deliver_signals(d, ctx)


# --- node outcomes ---------------------------------------------------------------------------------------


def _is_current(state: ExecutionState, node_id: str, attempt: int) -> bool:
    node = state.node(node_id)
    return node.status in ACTIVE_NODE and node.attempt == attempt


def _node_succeeded(d: Decision, ctx: _Ctx, c: NodeSucceeded) -> None:
    if c.node_id in ctx.graph.nodes and _is_current(d.state, c.node_id, c.attempt):
        _complete_node(d, ctx, ctx.graph.nodes[c.node_id], c.attempt, c.records_processed, c.duration_ms)


def _complete_node(
    d: Decision, ctx: _Ctx, node: GraphNode, attempt: int, records: int, duration: int, **extra: Any
) -> None:
    d.emit(
        "NodeExecutionCompleted",
        {**ctx.node_base(d.state, node, attempt), "duration": duration, "recordsProcessed": records, **extra},
    )
    if d.state.completed == len(ctx.graph.nodes):  # the state holds nodes of this graph only
        started = d.state.started_ms or ctx.now_ms
        d.emit(
            "WorkflowCompleted",
            {**ctx.base(d.state), "duration": ctx.now_ms - started, "completedNodes": len(ctx.graph.nodes)},
        )
        return
    _start_ready(d, ctx, node.downstream)


def _node_failed(d: Decision, ctx: _Ctx, c: NodeFailed) -> None:
    if c.node_id in ctx.graph.nodes and _is_current(d.state, c.node_id, c.attempt):
        _fail_node(d, ctx, ctx.graph.nodes[c.node_id], c.attempt, c.error, c.retryable)


def _fail_node(
    d: Decision, ctx: _Ctx, node: GraphNode, attempt: int, error: str, retryable: bool, **extra: Any
) -> None:
    """Retry by the node's policy, or fail the execution."""
    retry = node.retry.should_retry(attempt, retryable)
    d.emit(
        "NodeExecutionFailed",
        {
            **ctx.node_base(d.state, node, attempt),
            "error": error,
            "retryable": retryable,
            "willRetry": retry,
            **extra,
        },
    )
    if retry:
        delay = node.retry.delay_ms(attempt, f"{d.state.execution_id}:{node.id}:{attempt}")
        fire_at = ctx.now_ms + delay
        d.emit(
            "NodeRetryScheduled",
            {
                **ctx.node_base(d.state, node, attempt),
                "nextAttempt": attempt + 1,
                "delayMs": delay,
                "fireAt": fire_at,
            },
        )
        d.timers.append(Timer("retry", node.id, attempt + 1, fire_at))
        return
    _fail_workflow(d, ctx, f"Node {node.id} failed: {error}", node.id)


def _fail_workflow(d: Decision, ctx: _Ctx, reason: str, node_id: str | None, **extra: Any) -> None:
    _stop_active(d)
    d.emit("WorkflowFailed", {**ctx.base(d.state), "reason": reason, "failedNodeId": node_id, **extra})


def _stop_active(d: Decision) -> None:
    d.stops.extend((n, s.attempt) for n, s in d.state.nodes.items() if s.status in ACTIVE_NODE)


# --- timers ----------------------------------------------------------------------------------------------


def _timer_fired(d: Decision, ctx: _Ctx, c: TimerFired) -> None:
    if c.kind == "workflow_timeout":
        timeout = ctx.graph.policies.timeout_ms or 0
        _fail_workflow(d, ctx, f"Workflow timed out after {timeout / 1000:g}s", None, timedOut=True)
        return
    node = ctx.graph.nodes.get(c.node_id)
    if node is None:
        return
    state = d.state.node(c.node_id)
    if c.kind == "retry":
        if state.status == NodeStatus.RETRY_WAIT and state.attempt + 1 == c.attempt:
            _start_retry(d, ctx, node)
    elif _is_current(d.state, c.node_id, c.attempt):
        _attempt_timer(d, ctx, node, c)


def _start_retry(d: Decision, ctx: _Ctx, node: GraphNode) -> None:
    if d.state.status == ExecutionStatus.RUNNING and all(
        d.state.node(u).status == NodeStatus.COMPLETED for u in node.upstream
    ):
        _start_node(d, ctx, node)


def _attempt_timer(d: Decision, ctx: _Ctx, node: GraphNode, c: TimerFired) -> None:
    if c.kind == "wait" and d.state.node(node.id).waiting_for == "timer":
        d.outputs[node.id] = ("passthrough", None)
        _complete_node(
            d, ctx, node, c.attempt, 0, ctx.now_ms - (d.state.node(node.id).started_ms or ctx.now_ms)
        )
    elif c.kind == "node_timeout":
        d.stops.append((node.id, c.attempt))
        _fail_node(
            d,
            ctx,
            node,
            c.attempt,
            f"timed out after {(node.timeout_ms or 0) / 1000:g}s",
            True,
            timedOut=True,
        )
    elif c.kind == "wait_timeout":
        spec = node.wait
        what = f"signal {spec.signal!r}" if spec and spec.signal else "signal"
        timeout = (spec.timeout_ms if spec else 0) or 0
        _fail_node(d, ctx, node, c.attempt, f"no {what} within {timeout / 1000:g}s", False, timedOut=True)


# --- control ---------------------------------------------------------------------------------------------


def _cancel(d: Decision, ctx: _Ctx, c: Cancel) -> None:
    _stop_active(d)
    d.emit("WorkflowCancelled", {**ctx.base(d.state), "reason": c.reason, "by": c.by})


def _pause(d: Decision, ctx: _Ctx, c: Pause) -> None:
    if d.state.status == ExecutionStatus.RUNNING:
        d.emit("WorkflowPaused", {**ctx.base(d.state), "by": c.by})


def _resume(d: Decision, ctx: _Ctx, c: Resume) -> None:
    if d.state.status != ExecutionStatus.PAUSED:
        return
    d.emit("WorkflowResumed", {**ctx.base(d.state), "by": c.by})
    for node_id in ctx.graph.order:  # retries whose timer fired while paused
        state = d.state.node(node_id)
        if state.status == NodeStatus.RETRY_WAIT and (state.retry_at_ms or 0) <= ctx.now_ms:
            _start_retry(d, ctx, ctx.graph.nodes[node_id])
    _start_ready(d, ctx)


def _retry_failed(d: Decision, ctx: _Ctx, c: RetryFailed) -> None:
    if d.state.status != ExecutionStatus.FAILED:
        return
    failed = [
        n
        for n, s in d.state.nodes.items()
        if s.status in (NodeStatus.FAILED, *ACTIVE_NODE, NodeStatus.RETRY_WAIT)
    ]
    d.emit("WorkflowRetried", {**ctx.base(d.state), "by": c.by, "nodes": sorted(failed)})
    _workflow_timer(d, ctx)
    _start_ready(d, ctx)


def _signal(d: Decision, ctx: _Ctx, c: Signal) -> None:
    d.emit("SignalReceived", {**ctx.base(d.state), "name": c.name, "payload": c.payload, "by": c.by})
    _deliver_signals(d, ctx)


def _deliver_signals(d: Decision, ctx: _Ctx) -> None:
    """Hand buffered signals to the nodes waiting for them, in graph order, one signal per node."""
    for node_id in ctx.graph.signal_waiters:
        if not d.state.signals:
            return  # nothing to hand out: a fan-out of approvals starts in linear time
        node, state = ctx.graph.nodes[node_id], d.state.node(node_id)
        if state.status != NodeStatus.WAITING or node.wait is None or node.wait.signal is None:
            continue
        name = node.wait.signal
        if d.state.signals.get(name):
            signal = d.state.signals[name][0]
            d.outputs[node_id] = (
                ("passthrough", None) if node.wait.approval else ("records", [signal["payload"]])
            )
            by = {"approvedBy": signal["by"]} if node.wait.approval else {}
            _complete_node(
                d,
                ctx,
                node,
                state.attempt,
                1,
                ctx.now_ms - (state.started_ms or ctx.now_ms),
                signal=name,
                **by,
            )
        elif node.wait.approval and d.state.signals.get(rejection_of(name)):
            signal = d.state.signals[rejection_of(name)][0]
            payload = signal.get("payload")
            comment = payload.get("comment") if isinstance(payload, dict) else None
            error = f"rejected by {signal['by'] or 'unknown'}" + (f": {comment}" if comment else "")
            _fail_node(
                d, ctx, node, state.attempt, error, False, signal=rejection_of(name), rejectedBy=signal["by"]
            )


def _run_started_inline(d: Decision, ctx: _Ctx, c: RunStartedInline) -> None:
    d.runs.extend(
        RunNode(node_id, s.attempt, True, ctx.graph.nodes[node_id].behavior)
        for node_id, s in d.state.nodes.items()
        if s.status == NodeStatus.RUNNING and ctx.graph.nodes[node_id].inline
    )


_HANDLERS: dict[type, Any] = {
    Start: _start,
    NodeSucceeded: _node_succeeded,
    NodeFailed: _node_failed,
    TimerFired: _timer_fired,
    Cancel: _cancel,
    Pause: _pause,
    Resume: _resume,
    RetryFailed: _retry_failed,
    Signal: _signal,
    RunStartedInline: _run_started_inline,
}


def running_attempts(state: ExecutionState) -> list[tuple[str, int]]:
    """Node attempts started but not finished: what recovery must re-drive after a crash."""
    return [(n, s.attempt) for n, s in state.nodes.items() if s.status == NodeStatus.RUNNING]
