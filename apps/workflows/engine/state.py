"""An execution's state: a pure fold of its events (invariant 7).

``apply(state, event)`` is the only way state changes; snapshots are this state as JSON with a schema version,
and a snapshot that does not decode is ignored in favour of a full replay.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from operator import itemgetter
from typing import Any

SCHEMA_VERSION = 2


class ExecStatus(StrEnum):
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


TERMINAL = (ExecStatus.COMPLETED, ExecStatus.FAILED, ExecStatus.CANCELLED)
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
    status: ExecStatus = ExecStatus.PENDING
    last_seq: int = 0
    started_ms: int | None = None
    ended_ms: int | None = None
    error: str | None = None
    failed_node: str | None = None
    nodes: Mapping[str, NodeState] = field(default_factory=dict)
    signals: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)  # received, not yet consumed

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def node(self, node_id: str) -> NodeState:
        return self.nodes.get(node_id, NodeState())


def _with_node(state: ExecutionState, node_id: str, **changes: Any) -> ExecutionState:
    nodes = dict(state.nodes)
    nodes[node_id] = replace(state.node(node_id), **changes)
    return replace(state, nodes=nodes)


def _started(s: ExecutionState, p: Mapping[str, Any]) -> ExecutionState:
    return replace(s, status=ExecStatus.RUNNING, started_ms=p["timestamp"])


def _node_started(s: ExecutionState, p: Mapping[str, Any]) -> ExecutionState:
    return _with_node(
        s,
        p["nodeId"],
        status=NodeStatus.RUNNING,
        attempt=p.get("attempt", 1),
        started_ms=p["timestamp"],
        ended_ms=None,
        duration_ms=None,
        error=None,
        retry_at_ms=None,
        waiting_for=None,
    )


def _node_waiting(s: ExecutionState, p: Mapping[str, Any]) -> ExecutionState:
    return _with_node(s, p["nodeId"], status=NodeStatus.WAITING, waiting_for=p["waitingFor"])


def _node_completed(s: ExecutionState, p: Mapping[str, Any]) -> ExecutionState:
    s = _consume_signal(s, p.get("signal"))
    return _with_node(
        s,
        p["nodeId"],
        status=NodeStatus.COMPLETED,
        ended_ms=p["timestamp"],
        duration_ms=p["duration"],
        records_processed=p.get("recordsProcessed", 0),
        waiting_for=None,
    )


def _node_failed(s: ExecutionState, p: Mapping[str, Any]) -> ExecutionState:
    s = _consume_signal(s, p.get("signal"))
    started = s.node(p["nodeId"]).started_ms or p["timestamp"]
    return _with_node(
        s,
        p["nodeId"],
        status=NodeStatus.FAILED,
        ended_ms=p["timestamp"],
        duration_ms=p["timestamp"] - started,
        error=p["error"],
        waiting_for=None,
    )


def _retry_scheduled(s: ExecutionState, p: Mapping[str, Any]) -> ExecutionState:
    return _with_node(s, p["nodeId"], status=NodeStatus.RETRY_WAIT, retry_at_ms=p["fireAt"])


def _consume_signal(s: ExecutionState, name: str | None) -> ExecutionState:
    if not name or not s.signals.get(name):
        return s
    signals = dict(s.signals)
    signals[name] = signals[name][1:]
    return replace(s, signals={k: v for k, v in signals.items() if v})


def _signal(s: ExecutionState, p: Mapping[str, Any]) -> ExecutionState:
    signals = dict(s.signals)
    signals[p["name"]] = (*signals.get(p["name"], ()), {"payload": p.get("payload"), "by": p.get("by")})
    return replace(s, signals=signals)


def _completed(s: ExecutionState, p: Mapping[str, Any]) -> ExecutionState:
    return replace(s, status=ExecStatus.COMPLETED, ended_ms=p["timestamp"])


def _failed(s: ExecutionState, p: Mapping[str, Any]) -> ExecutionState:
    return replace(
        s,
        status=ExecStatus.FAILED,
        ended_ms=p["timestamp"],
        error=p["reason"],
        failed_node=p.get("failedNodeId"),
    )


def _cancelled(s: ExecutionState, p: Mapping[str, Any]) -> ExecutionState:
    nodes = {
        k: replace(v, status=NodeStatus.CANCELLED) if v.status in (*ACTIVE_NODE, NodeStatus.RETRY_WAIT) else v
        for k, v in s.nodes.items()
    }
    return replace(
        s, status=ExecStatus.CANCELLED, ended_ms=p["timestamp"], error=p.get("reason"), nodes=nodes
    )


def _retried(s: ExecutionState, p: Mapping[str, Any]) -> ExecutionState:
    nodes = {
        k: replace(v, status=NodeStatus.PENDING, error=None) if k in p["nodes"] else v
        for k, v in s.nodes.items()
    }
    return replace(s, status=ExecStatus.RUNNING, ended_ms=None, error=None, failed_node=None, nodes=nodes)


_HANDLERS = {
    "WorkflowStarted": _started,
    "NodeExecutionStarted": _node_started,
    "NodeWaiting": _node_waiting,
    "NodeExecutionCompleted": _node_completed,
    "NodeExecutionFailed": _node_failed,
    "NodeRetryScheduled": _retry_scheduled,
    "SignalReceived": _signal,
    "WorkflowPaused": lambda s, p: replace(s, status=ExecStatus.PAUSED),
    "WorkflowResumed": lambda s, p: replace(s, status=ExecStatus.RUNNING),
    "WorkflowRetried": _retried,
    "WorkflowCancelled": _cancelled,
    "WorkflowCompleted": _completed,
    "WorkflowFailed": _failed,
}


def apply(state: ExecutionState, event: EventRecord) -> ExecutionState:
    """The state after ``event``. Events of types this version does not know change only ``last_seq``."""
    if event.seq != state.last_seq + 1:
        raise ValueError(f"event seq {event.seq} does not follow {state.last_seq} for {state.execution_id}")
    handler = _HANDLERS.get(event.type)
    changed = handler(state, event.payload) if handler else state
    return replace(changed, last_seq=event.seq)


def fold(state: ExecutionState, events: Iterable[EventRecord]) -> ExecutionState:
    for event in events:
        state = apply(state, event)
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
        return ExecutionState(
            **{**body, "status": ExecStatus(body["status"]), "nodes": nodes, "signals": signals}
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed snapshot: {exc}") from exc
