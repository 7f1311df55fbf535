"""The read side of live updates (``api/streams.py``): what changed since a cursor, read from PostgreSQL.

PostgreSQL stays the only truth: a stream polls it every ``stream-poll-interval`` with one cheap indexed
query, and reads more only when that query says something changed. No hint channel is needed, and a missed
wake-up cannot lose an event. Measured cost (docs/architecture.md, "Live updates"): an idle stream costs one
query per poll (2 per second at the default 500 ms).

- **An execution's events** have a contiguous ``seq``, written in the same transaction as the head row's
  ``last_seq``: reading ``(status, last_seq)`` by primary key tells whether there is anything after the
  cursor, and the events are then read through the ``(execution, seq)`` unique index, by
  ``queries.execution_events`` (the same JSON as ``GET /executions/{id}/events``).
- **A workflow's executions** change status through journal events (``STATUS_EVENTS``); their global ``id``
  is the cursor. Ids come from a sequence, so they are not committed in order: a transaction holding a lower
  id may commit after a higher one is visible. ``Horizon`` only lets the cursor pass ids once every
  transaction that was running when they became visible has ended (PostgreSQL's snapshot ``xmin``), so no
  change is skipped.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection

from apps.workflows.engine.state import TERMINAL_STATUSES
from apps.workflows.models import Event, Execution, Workflow
from apps.workflows.services import queries
from workflow_engine.errors import NotFound

# the event types that change an execution's status (engine/state.py's handlers)
STATUS_EVENTS = (
    "WorkflowStarted",
    "WorkflowPaused",
    "WorkflowResumed",
    "WorkflowRetried",
    "WorkflowCancelled",
    "WorkflowCompleted",
    "WorkflowFailed",
)
EVENTS_PER_READ = 500  # events sent per poll at most; the rest come at the next poll, without waiting
# a workflow's status events are looked for in at most this many journal ids per read (a primary-key range
# scan), so that a cursor far behind costs a bounded read per poll, never a scan of the whole journal
IDS_PER_READ = 50_000
# a transaction still running this long after its ids became visible no longer holds the horizon back: an
# apply transaction lasts milliseconds; this is for a session left idle in a transaction
SETTLE_AT_MOST = 10.0


@dataclass(frozen=True)
class Message:
    """One thing to send: ``id`` is the cursor after it (``None``: leave the client's cursor). A message
    without ``event`` is a tick: the poll found nothing more; ``id`` is then the cursor so far, which a
    heartbeat may carry."""

    id: int | None
    event: str = ""
    data: dict[str, Any] | None = None

    @property
    def tick(self) -> bool:
        return not self.event


# --- an execution's events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutionChanges:
    status: str
    events: list[dict[str, Any]]
    next: int  # the seq to resume after
    done: bool  # terminal, and every event up to ``next`` read: nothing more will ever come


def execution_head(execution_id: str) -> tuple[str, int]:
    """(status, last_seq), by primary key; ``NotFound`` for an unknown execution."""
    row = Execution.objects.filter(pk=execution_id).values_list("status", "last_seq").first()
    if row is None:
        raise NotFound(f"Execution {execution_id!r} not found.", details={"executionId": [execution_id]})
    return row


def execution_changes(execution_id: str, after: int) -> ExecutionChanges:
    """The events after seq ``after`` (at most ``EVENTS_PER_READ``): one query when there are none."""
    status, last_seq = execution_head(execution_id)
    events: list[dict[str, Any]] = []
    if last_seq > after:
        events = queries.execution_events(execution_id, after=after, limit=EVENTS_PER_READ)["events"]
    cursor = events[-1]["seq"] if events else after
    return ExecutionChanges(status, events, cursor, status in TERMINAL_STATUSES and cursor >= last_seq)


def end_message(changes: ExecutionChanges) -> Message:
    return Message(None, "end", {"status": changes.status, "lastSeq": changes.next})


def follow_execution(execution_id: str, after: int, *, poll: Callable[[], bool]) -> Iterator[Message]:
    """Each new event once, in seq order, then ``end`` once the execution is terminal and all were sent.

    Yields a tick after each poll that has nothing more, so that the caller can send heartbeats; ``poll()``
    waits for the next poll and answers whether to go on (the caller's time bound)."""
    while True:
        changes = execution_changes(execution_id, after)
        for event in changes.events:
            yield Message(event["seq"], event["type"], event)
        after = changes.next
        if changes.done:
            yield end_message(changes)
            return
        if len(changes.events) == EVENTS_PER_READ:
            continue  # more are waiting: read them now
        yield Message(after)
        if not poll():
            return


# --- a workflow's executions -------------------------------------------------------------------------------


def require_workflow(workflow_id: str) -> None:
    if not Workflow.objects.filter(pk=workflow_id).exists():
        raise NotFound(f"Workflow {workflow_id!r} not found.", details={"workflowId": [workflow_id]})


_SNAPSHOT_SQL = """
SELECT pg_snapshot_xmin(s)::text::bigint, pg_snapshot_xmax(s)::text::bigint,
    (SELECT coalesce(max(id), 0) FROM workflows_event)
FROM pg_current_snapshot() AS s"""


class Horizon:
    """The highest journal id below which no event can still appear (see the module docstring).

    Each ``advance()`` is one query: the snapshot's ``xmin`` (oldest running transaction) and ``xmax`` (next
    transaction id), and the highest visible event id. The ids visible at a snapshot are settled once
    ``xmin`` has passed that snapshot's ``xmax``: every transaction that could hold a lower id has ended.
    That holds because an append locks the execution row (``FOR UPDATE``, which takes a transaction id)
    before it takes event ids.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.settled = 0
        self.pending: deque[tuple[int, int, float]] = deque()  # (xmax, max id, when), oldest first

    def advance(self) -> int:
        with connection.cursor() as cursor:
            cursor.execute(_SNAPSHOT_SQL)
            xmin, xmax, max_id = cursor.fetchone()
        now = self.clock()
        if not self.pending or self.pending[-1][1] < max_id:
            self.pending.append((xmax, max_id, now))
        while self.pending and (self.pending[0][0] <= xmin or self.pending[0][2] <= now - SETTLE_AT_MOST):
            self.settled = max(self.settled, self.pending.popleft()[1])
        return self.settled

    def start(self) -> int:
        """The cursor of a client that names none: the highest visible id, so the changes from now on (a
        change committing at this very moment with a lower id may be missed: the list has it)."""
        settled = self.advance()
        return self.pending[-1][1] if self.pending else settled


def list_items(execution_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Executions in the shape of ``GET /workflows/{id}/executions``'s items (``queries.execution_list``),
    as they are now; two queries."""
    rows = Execution.objects.filter(pk__in=execution_ids).values(
        "id", "status", "created_at", "started_at", "ended_at"
    )
    logs = queries.logs_counts(execution_ids)
    return {r["id"]: queries.list_item(r, logs) for r in rows}


def workflow_changes(workflow_id: str, after: int, horizon: int) -> tuple[list[Message], int]:
    """The executions of the workflow whose status changed in journal ids ``(after, horizon]``, each once
    (the last change wins: the item shows the execution as it is now), and the cursor to resume after."""
    upto = min(horizon, after + IDS_PER_READ)
    if upto <= after:
        return [], after
    rows = (
        Event.objects.filter(
            id__gt=after, id__lte=upto, type__in=STATUS_EVENTS, execution__workflow_id=workflow_id
        )
        .order_by("id")
        .values_list("id", "execution_id")
    )
    last: dict[str, int] = {}
    for event_id, execution_id in rows:
        last.pop(execution_id, None)
        last[execution_id] = event_id  # re-inserted: the dict stays ordered by each one's last change
    items = list_items(list(last)) if last else {}
    messages = [Message(i, "execution", items[e]) for e, i in last.items() if e in items]
    return messages, upto


def follow_workflow(workflow_id: str, after: int | None, *, poll: Callable[[], bool]) -> Iterator[Message]:
    """Each status change of the workflow's executions after journal id ``after`` (``None``: from now on).

    Yields a tick carrying the cursor after each poll that has nothing more; never ends by itself:
    ``poll()`` (the caller's time bound) ends it."""
    horizon = Horizon()
    cursor = horizon.start() if after is None else after
    while True:
        settled = horizon.advance()
        messages, cursor = workflow_changes(workflow_id, cursor, settled)
        yield from messages
        yield Message(cursor)
        if cursor < settled:
            continue  # a cursor far behind: read the next range now
        if not poll():
            return
