"""What a command does to an execution: the events to append and the nodes to run.

``decide`` is pure. It never re-applies a command whose effect is already in the state (a stale or duplicate
node result is a no-op), which together with the inbox makes state transitions exactly-once (invariant 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apps.workflows.engine.graph import Graph
from apps.workflows.engine.state import EventRecord, ExecStatus, ExecutionState, NodeStatus, apply


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


Command = Start | NodeSucceeded | NodeFailed


@dataclass(frozen=True)
class RunNode:
    """Run attempt ``attempt`` of ``node_id``; ``inline`` nodes may run inside the deciding transaction."""

    node_id: str
    attempt: int
    inline: bool


@dataclass
class Decision:
    state: ExecutionState
    events: list[EventRecord] = field(default_factory=list)
    runs: list[RunNode] = field(default_factory=list)

    def emit(self, event_type: str, payload: dict[str, Any]) -> None:
        event = EventRecord(self.state.last_seq + 1, event_type, payload)
        self.state = apply(self.state, event)
        self.events.append(event)


def decide(state: ExecutionState, graph: Graph, command: Command, now_ms: int) -> Decision:
    """Events and node runs for ``command``; an empty decision when it changes nothing."""
    d = Decision(state)
    if state.terminal:
        return d
    if isinstance(command, Start):
        _start(d, graph, now_ms)
    elif isinstance(command, NodeSucceeded):
        _node_succeeded(d, graph, command, now_ms)
    else:
        _node_failed(d, graph, command, now_ms)
    return d


def _base(graph: Graph, state: ExecutionState, now_ms: int) -> dict[str, Any]:
    return {"workflowId": graph.workflow_id, "executionId": state.execution_id, "timestamp": now_ms}


def _start(d: Decision, graph: Graph, now_ms: int) -> None:
    if d.state.status != ExecStatus.PENDING:
        return
    d.emit(
        "WorkflowStarted",
        {**_base(graph, d.state, now_ms), "workflowName": graph.name, "totalNodes": len(graph.nodes)},
    )
    _start_ready(d, graph, now_ms)


def _start_ready(d: Decision, graph: Graph, now_ms: int) -> None:
    for node_id in graph.order:
        node = graph.nodes[node_id]
        if d.state.node(node_id).status != NodeStatus.PENDING:
            continue
        if all(d.state.node(u).status == NodeStatus.COMPLETED for u in node.upstream):
            attempt = d.state.node(node_id).attempt + 1
            d.emit(
                "NodeExecutionStarted",
                {
                    **_base(graph, d.state, now_ms),
                    "nodeId": node_id,
                    "nodeType": node.node_type,
                    "attempt": attempt,
                },
            )
            d.runs.append(RunNode(node_id, attempt, node.inline))


def _is_current(state: ExecutionState, node_id: str, attempt: int) -> bool:
    node = state.node(node_id)
    return node.status == NodeStatus.RUNNING and node.attempt == attempt


def _node_succeeded(d: Decision, graph: Graph, c: NodeSucceeded, now_ms: int) -> None:
    if c.node_id not in graph.nodes or not _is_current(d.state, c.node_id, c.attempt):
        return
    d.emit(
        "NodeExecutionCompleted",
        {
            **_base(graph, d.state, now_ms),
            "nodeId": c.node_id,
            "nodeType": graph.nodes[c.node_id].node_type,
            "attempt": c.attempt,
            "duration": c.duration_ms,
            "recordsProcessed": c.records_processed,
        },
    )
    if all(d.state.node(n).status == NodeStatus.COMPLETED for n in graph.nodes):
        started = d.state.started_ms or now_ms
        d.emit(
            "WorkflowCompleted",
            {
                **_base(graph, d.state, now_ms),
                "duration": now_ms - started,
                "completedNodes": len(graph.nodes),
            },
        )
        return
    _start_ready(d, graph, now_ms)


def _node_failed(d: Decision, graph: Graph, c: NodeFailed, now_ms: int) -> None:
    if c.node_id not in graph.nodes or not _is_current(d.state, c.node_id, c.attempt):
        return
    d.emit(
        "NodeExecutionFailed",
        {
            **_base(graph, d.state, now_ms),
            "nodeId": c.node_id,
            "nodeType": graph.nodes[c.node_id].node_type,
            "attempt": c.attempt,
            "error": c.error,
            "retryable": c.retryable,
        },
    )
    d.emit(
        "WorkflowFailed",
        {
            **_base(graph, d.state, now_ms),
            "reason": f"Node {c.node_id} failed: {c.error}",
            "failedNodeId": c.node_id,
        },
    )


def running_attempts(state: ExecutionState) -> list[tuple[str, int]]:
    """Node attempts started but not finished: what recovery must re-drive after a crash."""
    return [(n, s.attempt) for n, s in state.nodes.items() if s.status == NodeStatus.RUNNING]
