"""An execution's state: a pure fold of its events (invariant 7).

``apply(state, event)`` is the only way state changes; snapshots are this state as JSON with a schema version,
and a snapshot that does not decode is ignored in favour of a full replay.

An event changes one node, so its cost must not follow the graph's size: ``apply`` copies the nodes mapping
(it is pure for every caller), while ``apply_in_place`` updates a mapping its caller owns. ``fold`` and
``decide`` copy once and then apply in place, so folding the events of a 5,000-node execution is linear.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from operator import itemgetter
from typing import Any

SCHEMA_VERSION = 3  # 3: ExecutionState.completed; a snapshot of an older schema falls back to replay


class ExecutionStatus(StrEnum):
    QUEUED = "queued"  # admission's: waiting for a slot under a concurrency limit, not started (no events)
    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class NodeStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"  # for a timer, a signal, an approval or a Celery task's result
    RETRY_WAIT = "retry_wait"  # failed; the next attempt starts when its retry timer fires
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATUSES = (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED)
# executions that hold a slot under a concurrency limit
ACTIVE_STATUSES = (ExecutionStatus.PENDING, ExecutionStatus.RUNNING, ExecutionStatus.PAUSED)
ACTIVE_NODE = (NodeStatus.RUNNING, NodeStatus.WAITING)


@dataclass(frozen=True)
class EventRecord:
    """One journal entry as the engine sees it."""

    seq: int
    type: str
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class NodeState:
    status: NodeStatus = NodeStatus.PENDING
    attempt: int = 0
    started_ms: int | None = None
    ended_ms: int | None = None
    duration_ms: int | None = None
    records_processed: int = 0
    error: str | None = None
    retry_at_ms: int | None = None
    waiting_for: str | None = None


@dataclass(frozen=True)
class ExecutionState:
    execution_id: str
    workflow_id: str
    status: ExecutionStatus = ExecutionStatus.PENDING
    last_seq: int = 0
    started_ms: int | None = None
    ended_ms: int | None = None
    error: str | None = None
    failed_node: str | None = None
    nodes: Mapping[str, NodeState] = field(default_factory=dict)
    signals: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)  # received, not yet consumed
    # how many of ``nodes`` are completed: "every node completed" without a scan of the graph
    completed: int = 0

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def node(self, node_id: str) -> NodeState:
        return self.nodes.get(node_id, NodeState())


def _with_node(state: ExecutionState, node_id: str, own: bool, **changes: Any) -> ExecutionState:
    """``own``: ``state.nodes`` is a dict only the caller holds, updated in place (``apply_in_place``)."""
    before = state.node(node_id)
    after = replace(before, **changes)
    nodes = state.nodes if own else dict(state.nodes)
    assert isinstance(nodes, dict)
    nodes[node_id] = after
    completed = (
        state.completed + (after.status == NodeStatus.COMPLETED) - (before.status == NodeStatus.COMPLETED)
    )
    return replace(state, nodes=nodes, completed=completed)


def _count_completed(nodes: Mapping[str, NodeState]) -> int:
    return sum(1 for n in nodes.values() if n.status == NodeStatus.COMPLETED)


def _started(s: ExecutionState, p: Mapping[str, Any], own: bool) -> ExecutionState:
    return replace(s, status=ExecutionStatus.RUNNING, started_ms=p["timestamp"])


def _node_started(s: ExecutionState, p: Mapping[str, Any], own: bool) -> ExecutionState:
    return _with_node(
        s,
        p["nodeId"],
        own,
        status=NodeStatus.RUNNING,
        attempt=p.get("attempt", 1),
        started_ms=p["timestamp"],
        ended_ms=None,
        duration_ms=None,
        error=None,
        retry_at_ms=None,
        waiting_for=None,
    )


def _node_waiting(s: ExecutionState, p: Mapping[str, Any], own: bool) -> ExecutionState:
    return _with_node(s, p["nodeId"], own, status=NodeStatus.WAITING, waiting_for=p["waitingFor"])


def _node_completed(s: ExecutionState, p: Mapping[str, Any], own: bool) -> ExecutionState:
    s = _consume_signal(s, p.get("signal"))
    return _with_node(
        s,
        p["nodeId"],
        own,
        status=NodeStatus.COMPLETED,
        ended_ms=p["timestamp"],
        duration_ms=p["duration"],
        records_processed=p.get("recordsProcessed", 0),
        waiting_for=None,
    )


def _node_failed(s: ExecutionState, p: Mapping[str, Any], own: bool) -> ExecutionState:
    s = _consume_signal(s, p.get("signal"))
    started = s.node(p["nodeId"]).started_ms or p["timestamp"]
    return _with_node(
        s,
        p["nodeId"],
        own,
        status=NodeStatus.FAILED,
        ended_ms=p["timestamp"],
        duration_ms=p["timestamp"] - started,
        error=p["error"],
        waiting_for=None,
    )


def _retry_scheduled(s: ExecutionState, p: Mapping[str, Any], own: bool) -> ExecutionState:
    return _with_node(s, p["nodeId"], own, status=NodeStatus.RETRY_WAIT, retry_at_ms=p["fireAt"])


def _consume_signal(s: ExecutionState, name: str | None) -> ExecutionState:
    if not name or not s.signals.get(name):
        return s
    signals = dict(s.signals)
    signals[name] = signals[name][1:]
    return replace(s, signals={k: v for k, v in signals.items() if v})


def _signal(s: ExecutionState, p: Mapping[str, Any], own: bool) -> ExecutionState:
    signals = dict(s.signals)
    signals[p["name"]] = (*signals.get(p["name"], ()), {"payload": p.get("payload"), "by": p.get("by")})
    return replace(s, signals=signals)


def _completed(s: ExecutionState, p: Mapping[str, Any], own: bool) -> ExecutionState:
    return replace(s, status=ExecutionStatus.COMPLETED, ended_ms=p["timestamp"])


def _failed(s: ExecutionState, p: Mapping[str, Any], own: bool) -> ExecutionState:
    return replace(
        s,
        status=ExecutionStatus.FAILED,
        ended_ms=p["timestamp"],
        error=p["reason"],
        failed_node=p.get("failedNodeId"),
    )


def _cancelled(s: ExecutionState, p: Mapping[str, Any], own: bool) -> ExecutionState:
    nodes = {
        k: replace(v, status=NodeStatus.CANCELLED) if v.status in (*ACTIVE_NODE, NodeStatus.RETRY_WAIT) else v
        for k, v in s.nodes.items()
    }
    return replace(
        s,
        status=ExecutionStatus.CANCELLED,
        ended_ms=p["timestamp"],
        error=p.get("reason"),
        nodes=nodes,
        completed=_count_completed(nodes),
    )


def _retried(s: ExecutionState, p: Mapping[str, Any], own: bool) -> ExecutionState:
    nodes = {
        k: replace(v, status=NodeStatus.PENDING, error=None) if k in p["nodes"] else v
        for k, v in s.nodes.items()
    }
    return replace(
        s,
        status=ExecutionStatus.RUNNING,
        ended_ms=None,
        error=None,
        failed_node=None,
        nodes=nodes,
        completed=_count_completed(nodes),
    )


_HANDLERS = {
    "WorkflowStarted": _started,
    "NodeExecutionStarted": _node_started,
    "NodeWaiting": _node_waiting,
    "NodeExecutionCompleted": _node_completed,
    "NodeExecutionFailed": _node_failed,
    "NodeRetryScheduled": _retry_scheduled,
    "SignalReceived": _signal,
    "WorkflowPaused": lambda s, p, own: replace(s, status=ExecutionStatus.PAUSED),
    "WorkflowResumed": lambda s, p, own: replace(s, status=ExecutionStatus.RUNNING),
    "WorkflowRetried": _retried,
    "WorkflowCancelled": _cancelled,
    "WorkflowCompleted": _completed,
    "WorkflowFailed": _failed,
}


def apply(state: ExecutionState, event: EventRecord) -> ExecutionState:
    """The state after ``event``. Events of types this version does not know change only ``last_seq``."""
    return _apply(state, event, own=False)


def apply_in_place(state: ExecutionState, event: EventRecord) -> ExecutionState:
    """``apply`` for a caller that owns ``state.nodes`` (a dict no other state shares, see ``owned``): the
    node an event changes is updated in that dict, which the returned state shares. ``state`` must not be
    used afterwards."""
    return _apply(state, event, own=True)


def owned(state: ExecutionState) -> ExecutionState:
    """``state`` with a copy of its nodes, for ``apply_in_place``: one copy rather than one per event."""
    return replace(state, nodes=dict(state.nodes))


def _apply(state: ExecutionState, event: EventRecord, own: bool) -> ExecutionState:
    if event.seq != state.last_seq + 1:
        raise ValueError(f"event seq {event.seq} does not follow {state.last_seq} for {state.execution_id}")
    handler = _HANDLERS.get(event.type)
    changed = handler(state, event.payload, own) if handler else state
    return replace(changed, last_seq=event.seq)


def fold(state: ExecutionState, events: Iterable[EventRecord]) -> ExecutionState:
    """The state after ``events``; ``state`` itself is left as it was."""
    state = owned(state)
    for event in events:
        state = apply_in_place(state, event)
    return state


_NODE_STATUSES = {s.value: s for s in NodeStatus}
_NODE_FIELDS = tuple(f.name for f in fields(NodeState))
_HEAD_FIELDS = tuple(f.name for f in fields(ExecutionState) if f.name not in ("nodes", "signals"))


def to_json(state: ExecutionState) -> dict[str, Any]:
    """The snapshot body: what ``dataclasses.asdict`` gives, built shallowly (asdict deep-copies every
    value, 30 to 50 ms for a thousand nodes, inside the apply transaction)."""
    body: dict[str, Any] = {"schema": SCHEMA_VERSION, **{name: getattr(state, name) for name in _HEAD_FIELDS}}
    body["nodes"] = {k: {name: getattr(n, name) for name in _NODE_FIELDS} for k, n in state.nodes.items()}
    body["signals"] = {k: list(v) for k, v in state.signals.items()}
    return body


assert _NODE_FIELDS[0] == "status"
_node_rest = itemgetter(*_NODE_FIELDS[1:])


def _node_from_json(body: Mapping[str, Any]) -> NodeState:
    """Positional, with the status looked up rather than converted: a snapshot holds every node started so
    far, and decoding them was the largest part of a hydration from a snapshot (bench/hydration.py)."""
    if len(body) != len(_NODE_FIELDS):
        raise TypeError(f"node state with fields {sorted(body)}")
    return NodeState(_NODE_STATUSES[body["status"]], *_node_rest(body))


def from_json(data: Mapping[str, Any]) -> ExecutionState:
    """Decode a snapshot; raises ``ValueError`` on an unknown schema or a malformed body."""
    if data.get("schema") != SCHEMA_VERSION:
        raise ValueError(f"snapshot schema {data.get('schema')!r} is not {SCHEMA_VERSION}")
    try:
        body = {k: v for k, v in data.items() if k != "schema"}
        nodes = {k: _node_from_json(v) for k, v in body.pop("nodes").items()}
        signals = {k: tuple(v) for k, v in body.pop("signals").items()}
        state = ExecutionState(
            **{**body, "status": ExecutionStatus(body["status"]), "nodes": nodes, "signals": signals}
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed snapshot: {exc}") from exc
    if state.completed != _count_completed(nodes):
        raise ValueError(f"malformed snapshot: completed={state.completed} does not match its nodes")
    return state
