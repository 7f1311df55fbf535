"""An execution's state: a pure fold of its events (invariant 7).

``apply(state, event)`` is the only way state changes; snapshots are this state as JSON with a schema version,
and a snapshot that does not decode is ignored in favour of a full replay.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

SCHEMA_VERSION = 1


class ExecStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class NodeStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


TERMINAL = (ExecStatus.COMPLETED, ExecStatus.FAILED)


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
    )


def _node_completed(s: ExecutionState, p: Mapping[str, Any]) -> ExecutionState:
    return _with_node(
        s,
        p["nodeId"],
        status=NodeStatus.COMPLETED,
        ended_ms=p["timestamp"],
        duration_ms=p["duration"],
        records_processed=p.get("recordsProcessed", 0),
    )


def _node_failed(s: ExecutionState, p: Mapping[str, Any]) -> ExecutionState:
    started = s.node(p["nodeId"]).started_ms or p["timestamp"]
    return _with_node(
        s,
        p["nodeId"],
        status=NodeStatus.FAILED,
        ended_ms=p["timestamp"],
        duration_ms=p["timestamp"] - started,
        error=p["error"],
    )


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


_HANDLERS = {
    "WorkflowStarted": _started,
    "NodeExecutionStarted": _node_started,
    "NodeExecutionCompleted": _node_completed,
    "NodeExecutionFailed": _node_failed,
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


def to_json(state: ExecutionState) -> dict[str, Any]:
    return {"schema": SCHEMA_VERSION, **asdict(state)}


def from_json(data: Mapping[str, Any]) -> ExecutionState:
    """Decode a snapshot; raises ``ValueError`` on an unknown schema or a malformed body."""
    if data.get("schema") != SCHEMA_VERSION:
        raise ValueError(f"snapshot schema {data.get('schema')!r} is not {SCHEMA_VERSION}")
    try:
        body = {k: v for k, v in data.items() if k != "schema"}
        nodes = {
            k: NodeState(**{**v, "status": NodeStatus(v["status"])}) for k, v in body.pop("nodes").items()
        }
        return ExecutionState(**{**body, "status": ExecStatus(body["status"]), "nodes": nodes})
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed snapshot: {exc}") from exc
