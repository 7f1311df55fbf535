"""The global execution list (``GET /api/v1/executions``): every workflow's executions, filtered, newest
first, in keyset pages.

The order is ``created_at`` then ``id``, both descending: ``created_at`` is when the start request was
accepted, and it never changes, so a cursor (the last row's key) stays valid while new executions start
above it and the rows below it keep their places: paging from the first page to the last sees every row that
existed when paging began, once. (``startTime`` is the worker's start and moves once a queued execution gets
its slot: a key that moves cannot page.) Each filter has an index in that order or a narrow one of its own
(``models.Execution.Meta``, migration 0009); the plans are in docs/benchmarks.md.

A page is two queries whatever its size (the rows, then their log line counts), three with the count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core import signing
from django.db.models import Q, QuerySet

from apps.workflows.models import Execution
from apps.workflows.services import queries
from workflow_engine.times import iso

# every value of ``Execution.trigger``: the start routes (``api``), a schedule's fire and its backfill
# (apps/schedules/services/firing.py) and a rerun (services/control.py)
TRIGGERS = ("api", "schedule", "backfill", "rerun")

_CURSOR_SALT = "workflows.listing.cursor"
_COLUMNS = (
    "id",
    "workflow_id",
    "version__number",
    "status",
    "trigger",
    "started_by",
    "created_at",
    "started_at",
    "ended_at",
)


@dataclass(frozen=True)
class Position:
    """Where a page ends: the key of its last row."""

    created_at: datetime
    execution_id: str


@dataclass(frozen=True)
class Filters:
    """What the caller asked for; empty tuples and ``None`` filter nothing. Time ranges are half-open:
    ``after <= t < before``."""

    workflow_ids: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    triggers: tuple[str, ...] = ()
    started_after: datetime | None = None
    started_before: datetime | None = None
    ended_after: datetime | None = None
    ended_before: datetime | None = None
    id_prefix: str = ""


class BadCursor(ValueError):
    """A cursor this server did not issue, or altered."""


def encode_cursor(position: Position) -> str:
    """Opaque to clients, and signed: a cursor cannot point anywhere its page did not end."""
    key = [position.created_at.isoformat(), position.execution_id]
    return signing.dumps(key, salt=_CURSOR_SALT, compress=False)


def decode_cursor(cursor: str) -> Position:
    try:
        created_at, execution_id = signing.loads(cursor, salt=_CURSOR_SALT)
        return Position(datetime.fromisoformat(created_at), str(execution_id))
    except (signing.BadSignature, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise BadCursor("not a cursor this server issued") from exc


def _in(field: str, values: Sequence[str]) -> Q:
    """One value is an equality, for the planner: ``= x`` walks an index in order, ``IN (x)`` may not."""
    return Q(**{field: values[0]}) if len(values) == 1 else Q(**{f"{field}__in": list(values)})


def _time_range(field: str, after: datetime | None, before: datetime | None) -> Q:
    selected = Q()
    if after is not None:
        selected &= Q(**{f"{field}__gte": after})
    if before is not None:
        selected &= Q(**{f"{field}__lt": before})
    return selected


def _filtered(filters: Filters) -> QuerySet[Execution]:
    selected = Q()
    if filters.workflow_ids:
        selected &= _in("workflow_id", filters.workflow_ids)
    if filters.statuses:
        selected &= _in("status", filters.statuses)
    if filters.triggers:
        selected &= _in("trigger", filters.triggers)
    selected &= _time_range("created_at", filters.started_after, filters.started_before)
    selected &= _time_range("ended_at", filters.ended_after, filters.ended_before)
    if filters.id_prefix:
        selected &= Q(id__startswith=filters.id_prefix)  # escapes % and _; the primary key's _like index
    return Execution.objects.filter(selected)


def _after(position: Position) -> Q:
    """Rows past the cursor. The ``lte`` bounds the index scan; the OR, a filter, breaks the tie on ``id``
    (PostgreSQL does not turn an OR into an index bound)."""
    at, execution_id = position.created_at, position.execution_id
    return Q(created_at__lte=at) & (Q(created_at__lt=at) | Q(id__lt=execution_id))


def _item(row: dict[str, Any], logs: dict[str, int]) -> dict[str, Any]:
    """The workflow execution list's item (``queries.execution_list``) and where the execution came from."""
    return {
        **queries.list_item(row, logs),
        "workflowId": row["workflow_id"],
        "version": row["version__number"],
        "trigger": row["trigger"],
        "startedBy": row["started_by"] or None,
        "createdAt": iso(row["created_at"]),
    }


def list_executions(
    filters: Filters, *, limit: int, cursor: Position | None = None, count: bool = False
) -> dict[str, Any]:
    """One page, newest first; ``nextCursor`` is null on the last page; ``total`` (with ``count``) counts
    every row the filters match, exactly, whatever the cursor."""
    selected = _filtered(filters)
    page = selected.filter(_after(cursor)) if cursor else selected
    rows = list(page.order_by("-created_at", "-id").values(*_COLUMNS)[: limit + 1])
    more, rows = len(rows) > limit, rows[:limit]
    logs = queries.logs_counts([r["id"] for r in rows])
    body: dict[str, Any] = {
        "executions": [_item(r, logs) for r in rows],
        "nextCursor": encode_cursor(Position(rows[-1]["created_at"], rows[-1]["id"])) if more else None,
    }
    if count:
        body["total"] = selected.count()
    return body
