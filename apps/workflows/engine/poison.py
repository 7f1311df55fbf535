"""Ending an execution whose commands cannot be applied: the last word when ``decide`` keeps failing. Pure.

When every apply of an execution fails the same way (a bug, a value the journal refuses), nothing that
``decide`` produces can be stored. ``fail`` produces the least that ends it: its running attempts are
stopped and one ``WorkflowFailed`` event says why. It reads nothing but the state, so it cannot fail on the
data that made the applies fail.
"""

from __future__ import annotations

from typing import Any

from apps.workflows.engine.decide import Decision
from apps.workflows.engine.state import ACTIVE_NODE, ExecutionState


def fail(state: ExecutionState, workflow_id: str, reason: str, now_ms: int) -> Decision:
    """Fail the execution with ``reason`` (an empty decision for one that has already ended)."""
    return _end(
        state,
        "WorkflowFailed",
        _base(state, workflow_id, now_ms) | {"reason": reason, "failedNodeId": None, "applyFailed": True},
    )


def cancel(state: ExecutionState, workflow_id: str, reason: str, by: str, now_ms: int) -> Decision:
    """Cancel the execution as ``decide`` would, without its graph (which may be what fails)."""
    return _end(state, "WorkflowCancelled", _base(state, workflow_id, now_ms) | {"reason": reason, "by": by})


def _base(state: ExecutionState, workflow_id: str, now_ms: int) -> dict[str, Any]:
    return {"workflowId": workflow_id, "executionId": state.execution_id, "timestamp": now_ms}


def _end(state: ExecutionState, event_type: str, payload: dict[str, Any]) -> Decision:
    """Stop the running attempts and append the one terminal event; nothing for an ended execution."""
    d = Decision(state)
    if state.terminal:
        return d
    d.stops.extend((n, s.attempt) for n, s in state.nodes.items() if s.status in ACTIVE_NODE)
    d.emit(event_type, payload)
    return d
