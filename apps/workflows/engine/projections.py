"""Read models computed from events only (origin-product.md §3.5), so they can always be rebuilt.

``startTime`` and ``endTime`` are epoch milliseconds, as in the original; the times it did not have
(``until``, ``nextAttemptAt``) are ISO 8601 strings, as every other time of the API (docs/api.md "Time
formats": one format per field name). Absent values are omitted, as spray-json did with ``None``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from apps.workflows.engine.state import EventRecord

_STATUS_BY_EVENT = {
    "WorkflowStarted": "running",
    "WorkflowPaused": "paused",
    "WorkflowResumed": "running",
    "WorkflowRetried": "running",
    "WorkflowCompleted": "completed",
    "WorkflowFailed": "failed",
    "WorkflowCancelled": "cancelled",
}
_END = ("WorkflowCompleted", "WorkflowFailed", "WorkflowCancelled")


def iso_of_ms(value: int | None) -> str | None:
    """Epoch milliseconds as the API writes a time (``workflow_engine.times.iso``, which the engine may not
    import): UTC, milliseconds, ``Z``."""
    if value is None:
        return None
    moment = datetime.fromtimestamp(value / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _compact(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _last(events: Sequence[EventRecord], types: tuple[str, ...]) -> EventRecord | None:
    return next((e for e in reversed(events) if e.type in types), None)


def execution_detail(events: Sequence[EventRecord]) -> dict[str, Any]:
    """``ExecutionDetail``: the execution with one entry per node attempt."""
    started = next((e.payload for e in events if e.type == "WorkflowStarted"), None)
    status_event = _last(events, tuple(_STATUS_BY_EVENT))
    status = _STATUS_BY_EVENT[status_event.type] if status_event else "running"
    start_ms = started["timestamp"] if started else None
    detail: dict[str, Any] = {
        "executionId": started["executionId"] if started else None,
        "workflowName": started.get("workflowName") if started else None,
        "startTime": start_ms,
        "status": status,
        "nodes": node_details(events),
    }
    end = status_event if status_event is not None and status_event.type in _END else None
    if end is not None:
        detail["endTime"] = end.payload["timestamp"]
        detail["duration"] = end.payload.get("duration", end.payload["timestamp"] - (start_ms or 0))
        if end.type != "WorkflowCompleted":
            detail["error"] = end.payload.get("reason")
            detail["failedNodeId"] = end.payload.get("failedNodeId")
    return _compact(detail)


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
        elif key in rows:
            _node_event(rows[key], e)
        elif e.type == "WorkflowCancelled":
            for row in rows.values():
                if row["status"] in ("running", "waiting"):
                    row.update(status="cancelled", endTime=e.payload["timestamp"])
    return [_compact(r) for r in rows.values()]


def _node_event(row: dict[str, Any], e: EventRecord) -> None:
    p = e.payload
    if e.type == "NodeWaiting":
        row.update(
            status="waiting",
            waitingFor=p["waitingFor"],
            signal=p.get("signal"),
            until=iso_of_ms(p.get("until")),
        )
    elif e.type == "NodeExecutionCompleted":
        row.update(
            status="completed",
            endTime=p["timestamp"],
            duration=p["duration"],
            recordsProcessed=p.get("recordsProcessed", 0),
            approvedBy=p.get("approvedBy"),
        )
    elif e.type == "NodeExecutionFailed":
        row.update(
            status="failed",
            endTime=p["timestamp"],
            error=p["error"],
            duration=p["timestamp"] - row["startTime"],
            willRetry=p.get("willRetry"),
        )
    elif e.type == "NodeRetryScheduled":
        row.update(nextAttemptAt=iso_of_ms(p["fireAt"]), retryDelayMs=p["delayMs"])


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
