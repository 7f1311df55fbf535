"""Read models computed from events only (origin-product.md §3.5), so they can always be rebuilt.

Times are epoch milliseconds, as in the original. Absent values are omitted, as spray-json did with ``None``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from apps.workflows.engine.state import EventRecord

_END_EVENTS = ("WorkflowCompleted", "WorkflowFailed")


def _compact(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def execution_detail(events: Sequence[EventRecord]) -> dict[str, Any]:
    """``ExecutionDetail``: the execution with one entry per node attempt."""
    started = next((e.payload for e in events if e.type == "WorkflowStarted"), None)
    end = next((e for e in events if e.type in _END_EVENTS), None)
    start_ms = started["timestamp"] if started else None
    detail: dict[str, Any] = {
        "executionId": started["executionId"] if started else None,
        "workflowName": started.get("workflowName") if started else None,
        "startTime": start_ms,
        "status": _status(end),
        "nodes": node_details(events),
    }
    if end is not None:
        detail["endTime"] = end.payload["timestamp"]
        detail["duration"] = end.payload.get("duration", end.payload["timestamp"] - (start_ms or 0))
        if end.type == "WorkflowFailed":
            detail["error"] = end.payload["reason"]
            detail["failedNodeId"] = end.payload.get("failedNodeId")
    return _compact(detail)


def _status(end: EventRecord | None) -> str:
    if end is None:
        return "running"
    return "completed" if end.type == "WorkflowCompleted" else "failed"


def node_details(events: Sequence[EventRecord]) -> list[dict[str, Any]]:
    """``NodeExecutionDetail`` per started attempt, in start order; a completed event wins."""
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for e in events:
        key = (e.payload.get("nodeId", ""), e.payload.get("attempt", 1))
        if e.type == "NodeExecutionStarted":
            rows[key] = {
                "nodeId": key[0],
                "nodeType": e.payload["nodeType"],
                "attempt": key[1],
                "startTime": e.payload["timestamp"],
                "status": "running",
                "recordsProcessed": 0,
            }
        elif e.type == "NodeExecutionCompleted" and key in rows:
            rows[key].update(
                status="completed",
                endTime=e.payload["timestamp"],
                duration=e.payload["duration"],
                recordsProcessed=e.payload.get("recordsProcessed", 0),
            )
        elif e.type == "NodeExecutionFailed" and key in rows:
            rows[key].update(
                status="failed",
                endTime=e.payload["timestamp"],
                error=e.payload["error"],
                duration=e.payload["timestamp"] - rows[key]["startTime"],
            )
    return [_compact(r) for r in rows.values()]


def timeline(events: Sequence[EventRecord]) -> dict[str, Any]:
    """The timeline route's shape: the execution's span and every node attempt, nulls kept."""
    detail = execution_detail(events)
    return {
        "executionId": detail.get("executionId"),
        "startTime": detail.get("startTime"),
        "endTime": detail.get("endTime"),
        "duration": detail.get("duration"),
        "status": detail["status"],
        "nodes": [
            {
                key: n.get(key)
                for key in (
                    "nodeId",
                    "nodeType",
                    "attempt",
                    "startTime",
                    "endTime",
                    "duration",
                    "status",
                    "recordsProcessed",
                    "error",
                )
            }
            for n in detail["nodes"]
        ],
    }


def summary(events: Sequence[EventRecord]) -> dict[str, Any]:
    """``ExecutionSummary``: id, start, end, status, duration."""
    detail = execution_detail(events)
    keys = ("executionId", "startTime", "endTime", "status", "duration")
    return _compact({k: detail.get(k) for k in keys})
