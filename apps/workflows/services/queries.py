"""The read side of the API: each function answers one route with plain dicts, in a fixed number of queries.

History, status-by-events and timeline are computed from the journal by ``engine.projections`` (invariant 7);
the execution list and the v1 status route read the execution head rows, which the engine keeps in step with
the events. Each time field name has one format on every route (docs/api.md "Time formats"): the original's
``startTime``/``endTime`` are epoch milliseconds, every other time an ISO 8601 string (``times.iso``), except
where the original itself used ISO for them: its per-workflow executions list.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import Count, F, Func, JSONField, OuterRef, Q, QuerySet
from django.db.models.functions import JSONObject

from apps.workflows.engine import dsl_output, projections
from apps.workflows.engine.state import ACTIVE_STATUSES, TERMINAL_STATUSES, EventRecord, ExecutionStatus
from apps.workflows.models import Event, Execution, ExecutionLog, NodeOutput, Workflow, WorkflowVersion
from apps.workflows.services import definitions
from workflow_engine.errors import NotFound
from workflow_engine.times import iso

PREVIEW_RECORDS = 20
_NEWEST = ("-created_at", "-id")
_OLDEST = ("created_at", "id")


def ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def _page(rows: Any, limit: int | None, offset: int) -> Any:
    return rows[offset:] if limit is None else rows[offset : offset + limit]


def _require_workflow(workflow_id: str) -> None:
    if not Workflow.objects.filter(pk=workflow_id).exists():
        raise NotFound(f"Workflow {workflow_id!r} not found.", details={"workflowId": [workflow_id]})


def _execution_not_found(execution_id: str) -> NotFound:
    return NotFound(f"Execution {execution_id!r} not found.", details={"executionId": [execution_id]})


def _events_by_execution(execution_ids: Sequence[str]) -> dict[str, list[EventRecord]]:
    """The journals of several executions in one query, grouped in Python."""
    grouped: dict[str, list[EventRecord]] = defaultdict(list)
    rows = (
        Event.objects.filter(execution_id__in=list(execution_ids))
        .order_by("execution_id", "seq")
        .values_list("execution_id", "seq", "type", "payload")
    )
    for execution_id, seq, type_, payload in rows:
        grouped[execution_id].append(EventRecord(seq, type_, payload))
    return grouped


# --- workflows ---------------------------------------------------------------------------------------------


def _shown(definition: Any, created_at: datetime, updated_at: datetime) -> Any:
    """A definition as posted, with the original's DSL defaults where it omitted a field (``dsl_output``)."""
    return dsl_output.with_defaults(definition, created_at=iso(created_at), updated_at=iso(updated_at))


def _matching(text: str, tag: str) -> QuerySet[Workflow]:
    """Workflows whose latest save matches: ``text`` in the id, name or description (case-insensitive,
    ``%`` and ``_`` plain), ``tag`` among its ``tags``. A draft is matched on its own body, a valid
    workflow on its current version's. No index serves these (a catalogue of definitions, not of
    executions): a scan of the workflow rows, bounded by their number."""
    selected = Workflow.objects.all()
    is_draft, is_valid = Q(draft_problems__isnull=False), Q(draft_problems__isnull=True)
    if text:
        selected = selected.filter(
            Q(id__icontains=text)
            | Q(name__icontains=text)
            | (is_valid & Q(current_version__definition__description__icontains=text))
            | (is_draft & Q(draft__description__icontains=text))
        )
    if tag:
        selected = selected.filter(
            (is_valid & Q(current_version__definition__tags__contains=[tag]))
            | (is_draft & Q(draft__tags__contains=[tag]))
        )
    return selected


def _recent(count: int) -> ArraySubquery:
    """The workflow's last ``count`` executions, newest first, as one array column of the list's query:
    each row's subquery walks ``execution_workflow_recent`` for ``count`` entries, whatever the number of
    executions (no query per workflow, no read of the older ones)."""
    rows = Execution.objects.filter(workflow_id=OuterRef("pk")).order_by(*_NEWEST)
    item = JSONObject(id="id", status="status", created="created_at", started="started_at")
    return ArraySubquery(rows.values_list(item)[:count])


def _recent_item(row: Mapping[str, Any]) -> dict[str, Any]:
    """PostgreSQL writes the times in JSON as ISO strings with an offset; the API's own formats here."""
    started = datetime.fromisoformat(row["started"]) if row["started"] else None
    return {
        "executionId": row["id"],
        "status": row["status"],
        "startTime": ms(started),
        "createdAt": iso(datetime.fromisoformat(row["created"])),
    }


def workflow_list(
    *, limit: int | None, offset: int, text: str = "", tag: str = "", recent: int = 0
) -> list[dict[str, Any]]:
    """The latest save's body of every workflow (a draft's or the current version's) that matches ``text``
    and ``tag`` (``_matching``), by id, with the DSL's defaults, ``valid`` and ``problems``; with
    ``recent``, its last executions as ``recentExecutions``. One query."""
    columns: tuple[str, ...] = (
        "draft",
        "draft_problems",
        "current_version__definition",
        "created_at",
        "current_version__created_at",
        "updated_at",
    )
    selected = _matching(text, tag).order_by("id")
    if recent:
        selected = selected.annotate(recent_executions=_recent(recent))
        columns = (*columns, "recent_executions")
    rows = _page(selected.values_list(*columns), limit, offset)
    if not recent:
        return [_listed(*row) for row in rows]
    return [{**_listed(*row[:-1]), "recentExecutions": [_recent_item(r) for r in row[-1]]} for row in rows]


def workflow_count(*, text: str = "", tag: str = "") -> int:
    """How many workflows ``workflow_list`` pages through with these filters."""
    return _matching(text, tag).count()


def _listed(
    draft: Any, problems: Any, definition: Any, created: datetime, versioned: datetime, updated: datetime
) -> dict[str, Any]:
    if problems is None:
        return {**_shown(definition, created, versioned), "valid": True, "problems": {}}
    return {**_shown(draft, created, updated), "valid": False, "problems": problems}


def workflow_definition(workflow_id: str) -> tuple[Any, str]:
    """The latest save's body (a draft's or the current version's) with the DSL's defaults, ``valid`` and
    ``problems`` (drafts), and its ETag; one query."""
    workflow = Workflow.objects.select_related("current_version").filter(pk=workflow_id).first()
    if workflow is None:
        raise NotFound(f"Workflow {workflow_id!r} not found.", details={"workflowId": [workflow_id]})
    head = definitions.head_of(workflow)
    version = workflow.current_version
    updated = version.created_at if workflow.draft is None and version else workflow.updated_at
    body = _shown(head.definition, workflow.created_at, updated)
    return {**body, "valid": head.valid, "problems": head.problems}, head.etag


def _node_count(execution_id: str) -> int:
    """Nodes in the definition an execution pinned (before it starts, its events cannot say)."""
    nodes = (
        WorkflowVersion.objects.filter(executions__pk=execution_id)
        .values_list("definition__nodes", flat=True)
        .first()
    )
    return len(nodes) if isinstance(nodes, list) else 0


def _progress(execution_id: str) -> tuple[int, int]:
    """(completed nodes, total nodes) of one execution, from its events."""
    rows = Event.objects.filter(
        execution_id=execution_id, type__in=("WorkflowStarted", "NodeExecutionCompleted")
    )
    total: int | None = None
    done: set[str] = set()
    for type_, payload in rows.values_list("type", "payload"):
        if type_ == "WorkflowStarted":
            total = payload.get("totalNodes")
        else:
            done.add(payload.get("nodeId"))
    return len(done), total if total is not None else _node_count(execution_id)


def workflow_status(workflow_id: str) -> dict[str, Any]:
    """``GET /api/v1/workflows/{id}/status`` from the execution head rows, with who made the definition."""
    head = (
        Workflow.objects.filter(pk=workflow_id)
        .values("current_version__number", "created_by", "updated_by", "created_at", "updated_at")
        .first()
    )
    if head is None:
        raise NotFound(f"Workflow {workflow_id!r} not found.", details={"workflowId": [workflow_id]})
    executions = Execution.objects.filter(workflow_id=workflow_id).only(
        "id", "status", "started_at", "ended_at", "created_at"
    )
    current = executions.filter(status__in=ACTIVE_STATUSES).order_by(*_NEWEST).first()
    last = executions.filter(status__in=TERMINAL_STATUSES).order_by(*_NEWEST).first()
    out: dict[str, Any] = {
        "workflowId": workflow_id,
        "version": head["current_version__number"],
        "createdBy": head["created_by"] or None,
        "createdAt": iso(head["created_at"]),
        "updatedBy": head["updated_by"] or None,
        "updatedAt": iso(head["updated_at"]),
        "state": "running" if current else (last.status if last else "idle"),
        "executionCount": executions.count(),
        "currentExecution": None,
        "lastExecution": None,
    }
    if current is not None:
        completed, total = _progress(current.id)
        out["currentExecution"] = {
            "executionId": current.id,
            "status": current.status,
            "startTime": ms(current.started_at),
            "endTime": None,
            "completedNodes": completed,
            "totalNodes": total,
        }
    if last is not None:
        out["lastExecution"] = {
            "executionId": last.id,
            "status": last.status,
            "startTime": ms(last.started_at),
            "endTime": ms(last.ended_at),
        }
    return out


# --- executions --------------------------------------------------------------------------------------------


def logs_counts(execution_ids: list[str]) -> dict[str, int]:
    """Log lines per execution, counted through the ``execution_id`` index."""
    rows = (
        ExecutionLog.objects.filter(execution_id__in=execution_ids)
        .order_by()
        .values_list("execution_id")
        .annotate(n=Count("id"))
    )
    return dict(rows)


def execution_list(workflow_id: str, *, limit: int, offset: int, status: str | None) -> list[dict[str, Any]]:
    """Newest first, with the number of log lines of each, in three queries whatever the page size.

    The page comes first (``execution_workflow_recent``), then the log lines of its executions only: counting
    them in a join before the LIMIT read the log lines of every execution of the workflow (bench/storage.py).
    """
    _require_workflow(workflow_id)
    selected = Execution.objects.filter(workflow_id=workflow_id)
    if status:
        selected = selected.filter(status=status)
    rows = list(
        _page(
            selected.order_by(*_NEWEST).values("id", "status", "created_at", "started_at", "ended_at"),
            limit,
            offset,
        )
    )
    logs = logs_counts([r["id"] for r in rows])
    return [list_item(r, logs) for r in rows]


def list_item(row: Mapping[str, Any], logs: dict[str, int]) -> dict[str, Any]:
    """An executions list's item, as the original's ``GET /workflows/{id}/executions`` had it. ``row``:
    the execution's ``id``, ``status``, ``created_at``, ``started_at``, ``ended_at``; ``logs``:
    ``logs_counts``."""
    return {
        "executionId": row["id"],
        "status": row["status"],
        "startTime": iso(row["started_at"] or row["created_at"]),
        "endTime": iso(row["ended_at"]),
        "logsCount": logs.get(row["id"], 0),
    }


def _log_line(created_at: datetime, node_id: str, message: str) -> str:
    return f"[{iso(created_at)}] [{node_id}] {message}" if node_id else f"[{iso(created_at)}] {message}"


def execution_logs(workflow_id: str, execution_id: str, *, limit: int, offset: int) -> dict[str, Any]:
    if not Execution.objects.filter(pk=execution_id, workflow_id=workflow_id).exists():
        raise _execution_not_found(execution_id)
    rows = list(
        _page(
            ExecutionLog.objects.filter(execution_id=execution_id)
            .order_by("id")
            .values_list("created_at", "node_id", "level", "message"),
            limit,
            offset,
        )
    )
    return {
        "executionId": execution_id,
        "logs": [_log_line(at, node, message) for at, node, _, message in rows],
        "entries": [
            {"timestamp": iso(at), "nodeId": node, "level": level, "message": message}
            for at, node, level, message in rows
        ],
    }


def _outputs(execution_id: str) -> dict[str, dict[str, Any]]:
    """The latest attempt's output of each node; the preview is sliced in PostgreSQL, not loaded whole."""
    preview = Func(
        F("records"),
        function="jsonb_path_query_array",
        template=f"%(function)s(%(expressions)s, '$[0 to {PREVIEW_RECORDS - 1}]')",
        output_field=JSONField(),
    )
    rows = (
        NodeOutput.objects.filter(execution_id=execution_id)
        .order_by("node_id", "-attempt")
        .distinct("node_id")
        .annotate(preview=preview)
        .values("node_id", "attempt", "record_count", "size_bytes", "preview")
    )
    return {
        r["node_id"]: {
            "attempt": r["attempt"],
            "recordCount": r["record_count"],
            "sizeBytes": r["size_bytes"],
            "preview": r["preview"],
        }
        for r in rows
    }


def execution_detail(execution_id: str) -> dict[str, Any]:
    """``GET /api/v1/executions/{id}``: the head row, the projection of its events and its outputs."""
    row = (
        Execution.objects.filter(pk=execution_id)
        .values(
            "id",
            "workflow_id",
            "version__number",
            "shard_id",
            "status",
            "trigger",
            "started_by",
            "created_at",
            "last_seq",
            "error",
            "input",
        )
        .first()
    )
    if row is None:
        raise _execution_not_found(execution_id)
    detail = projections.execution_detail(_events_by_execution([execution_id]).get(execution_id, []))
    out: dict[str, Any] = {
        "executionId": row["id"],
        "workflowId": row["workflow_id"],
        "version": row["version__number"],
        "shardId": row["shard_id"],
        "status": row["status"],
        "trigger": row["trigger"],
        "startedBy": row["started_by"] or None,
        "input": row["input"],
        "createdAt": iso(row["created_at"]),
        "startTime": detail.get("startTime"),
        "endTime": detail.get("endTime"),
        "duration": detail.get("duration"),
    }
    error = detail.get("error") or row["error"]
    if error:
        out["error"] = error
    if detail.get("failedNodeId"):
        out["failedNodeId"] = detail["failedNodeId"]
    out.update(lastSeq=row["last_seq"], nodes=detail["nodes"], outputs=_outputs(execution_id))
    return out


def execution_events(execution_id: str, *, after: int, limit: int) -> dict[str, Any]:
    if not Execution.objects.filter(pk=execution_id).exists():
        raise _execution_not_found(execution_id)
    rows = (
        Event.objects.filter(execution_id=execution_id, seq__gt=after)
        .order_by("seq")
        .values_list("seq", "type", "payload", "epoch", "created_at")[:limit]
    )
    return {
        "executionId": execution_id,
        "events": [
            {"seq": seq, "type": type_, "payload": payload, "epoch": epoch, "timestamp": iso(at)}
            for seq, type_, payload, epoch, at in rows
        ],
    }


# --- history: projections of the journal (origin-product.md §3.5, §6.3) -------------------------------------


def _detail(execution_id: str, status: str, events: Sequence[EventRecord]) -> dict[str, Any]:
    """The projection; an execution no worker has started yet has no events, so only its id and status."""
    if not events:
        return {"executionId": execution_id, "status": status, "nodes": []}
    return projections.execution_detail(events)


def _recent_executions(workflow_id: str, limit: int) -> list[tuple[str, str]]:
    """(id, status) of the ``limit`` most recent executions, oldest first."""
    rows = list(
        Execution.objects.filter(workflow_id=workflow_id)
        .order_by(*_NEWEST)
        .values_list("id", "status")[:limit]
    )
    rows.reverse()
    return rows


def history(workflow_id: str, *, limit: int) -> dict[str, Any]:
    """An unknown workflow has no executions (200, as the original: asking its entity created it)."""
    executions = _recent_executions(workflow_id, limit)
    events = _events_by_execution([e for e, _ in executions])
    return {
        "workflowId": workflow_id,
        "executions": [_detail(e, status, events.get(e, [])) for e, status in executions],
    }


def _summary(execution_id: str, status: str, events: Sequence[EventRecord]) -> dict[str, Any]:
    return projections.summary(events) if events else {"executionId": execution_id, "status": status}


def _current(execution_id: str, events: Sequence[EventRecord]) -> dict[str, Any]:
    detail = _detail(execution_id, ExecutionStatus.PENDING, events)
    started = next((e.payload for e in events if e.type == "WorkflowStarted"), None)
    completed = {n["nodeId"] for n in detail["nodes"] if n["status"] == "completed"}
    total = started.get("totalNodes") if started else None
    return {
        "executionId": execution_id,
        "startTime": detail.get("startTime"),
        "endTime": None,
        "status": detail["status"],
        "completedNodes": len(completed),
        "totalNodes": total if total is not None else _node_count(execution_id),
    }


def history_status(workflow_id: str, *, limit: int) -> dict[str, Any]:
    """The original's ``StatusResponse``, computed from the events of the most recent executions; an unknown
    workflow is ``idle`` with no executions (200, as the original)."""
    executions = _recent_executions(workflow_id, limit)
    events = _events_by_execution([e for e, _ in executions])
    summaries = [_summary(e, status, events.get(e, [])) for e, status in executions]
    active = [s for s in summaries if s["status"] in ACTIVE_STATUSES]
    out: dict[str, Any] = {
        "workflowId": workflow_id,
        "state": "running" if active else (summaries[-1]["status"] if summaries else "idle"),
    }
    if active:
        current_id = active[-1]["executionId"]
        out["currentExecution"] = _current(current_id, events.get(current_id, []))
    out["allExecutions"] = summaries
    return out


def history_execution(workflow_id: str, execution_id: str) -> dict[str, Any]:
    status = (
        Execution.objects.filter(pk=execution_id, workflow_id=workflow_id)
        .values_list("status", flat=True)
        .first()
    )
    if status is None:
        raise _execution_not_found(execution_id)
    return _detail(execution_id, status, _events_by_execution([execution_id]).get(execution_id, []))


def history_timeline(workflow_id: str, execution_id: str | None) -> dict[str, Any]:
    """The timeline of one execution; without ``execution_id`` the oldest, as the original."""
    rows = Execution.objects.filter(workflow_id=workflow_id)
    if execution_id is not None:
        rows = rows.filter(pk=execution_id)
    row = rows.order_by(*_OLDEST).values_list("id", "status").first()
    if row is None:
        raise NotFound("Execution not found.", details={"executionId": [execution_id or "(oldest)"]})
    events = _events_by_execution([row[0]]).get(row[0], [])
    timeline = projections.timeline(events)
    if not events:
        timeline.update(executionId=row[0], status=row[1])
    return timeline
