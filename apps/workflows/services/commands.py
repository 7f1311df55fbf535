"""Applying an execution's pending commands: the one place where its journal grows.

``apply_pending`` runs on the worker that owns the execution's shard. In one transaction it locks the
execution row, passes the shard fence, folds every unprocessed inbox command through ``decide`` (a ``Batch``),
appends the events, writes the timers and outputs they call for, marks the commands processed and updates the
head row. Node tasks, stop requests and cache updates are registered to run after commit.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from django.db import connection, transaction
from django.utils import timezone

from apps.cluster import identity
from apps.cluster.sharding import fence
from apps.workflows import metrics
from apps.workflows.engine import decide as d
from apps.workflows.engine.graph import Graph
from apps.workflows.errors import ShardNotOwned
from apps.workflows.models import Command, Execution, ExecutionLog, NodeOutput, Timer
from apps.workflows.services import admission, dispatch, journal, runner
from apps.workflows.services.batch import Batch, to_engine

logger = logging.getLogger(__name__)


def apply_pending(execution_id: str, *, recover: bool = False) -> None:
    """Apply every unprocessed command of the execution; with ``recover``, also re-drive running attempts.

    Raises ``ShardNotOwned`` (and changes nothing) when this worker does not own the shard.
    """
    node_id = identity.current()
    try:
        with transaction.atomic():
            _apply_locked(execution_id, node_id, recover)
    except ShardNotOwned:
        metrics.workflow_fence_failures_total.inc()
        journal.cache.drop(execution_id)
        raise


def _apply_locked(execution_id: str, node_id: str | None, recover: bool) -> None:
    with connection.cursor() as cur:
        # a row held by a paused process fails fast; the task is retried with back-off (tasks.TRANSIENT)
        cur.execute("SET LOCAL lock_timeout = '5s'")
    execution = Execution.objects.select_for_update().filter(pk=execution_id).first()
    if execution is None:
        return
    epoch = fence(execution.shard_id, node_id)
    pending = list(
        Command.objects.filter(execution_id=execution_id, processed_at__isnull=True).order_by(
            "created_at", "id"
        )
    )
    if not pending and not recover:
        return
    wf, graph = runner.compiled(execution.version_id)
    batch = Batch(execution, wf, graph, journal.hydrate(execution), timezone.now())
    was_terminal, before_seq = batch.state.terminal, batch.state.last_seq
    for command in pending:
        batch.apply(to_engine(command))
        command.processed_at, command.processed_seq = batch.now, batch.state.last_seq
    if recover:
        batch.remote.extend(_orphaned_runs(batch, graph))
    _persist(batch, pending, epoch, before_seq)
    _after_commit(batch, pending, was_terminal)


def _orphaned_runs(batch: Batch, graph: Graph) -> list[d.RunNode]:
    """Running attempts of a recovered execution: their worker may be gone, so run them again.

    Safe because node side effects are idempotent under ``{execution}:{node}:{attempt}`` and a second
    result for the same attempt is the same inbox command (invariant 3).
    """
    scheduled = {(r.node_id, r.attempt) for r in batch.remote}
    return [
        d.RunNode(n, a, False, graph.nodes[n].behavior)
        for n, a in d.running_attempts(batch.state)
        if (n, a) not in scheduled and not graph.nodes[n].inline
    ]


def _persist(batch: Batch, pending: list[Command], epoch: int, before_seq: int) -> None:
    if batch.events:
        journal.append(batch.execution, batch.events, epoch, batch.now)
        journal.maybe_snapshot(before_seq, batch.state)
        _update_head(batch)
    NodeOutput.objects.bulk_create(batch.output_rows, ignore_conflicts=True)
    ExecutionLog.objects.bulk_create(batch.logs)
    Timer.objects.bulk_create(
        Timer(
            execution_id=batch.execution.id,
            kind=t.kind,
            node_id=t.node_id,
            attempt=t.attempt,
            fire_at=datetime.fromtimestamp(t.fire_at_ms / 1000, tz=UTC),
        )
        for t in batch.timers
    )
    if batch.state.terminal:  # nothing left to wake up for
        Timer.objects.filter(execution_id=batch.execution.id, fired_at__isnull=True).delete()
    if pending:
        Command.objects.bulk_update(pending, ["processed_at", "processed_seq"])


def _ms_to_dt(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def _update_head(batch: Batch) -> None:
    s = batch.state
    Execution.objects.filter(pk=s.execution_id).update(
        status=s.status.value,
        last_seq=s.last_seq,
        started_at=_ms_to_dt(s.started_ms),
        ended_at=_ms_to_dt(s.ended_ms),
        error=s.error or "",
        running_nodes=[] if s.terminal else _claimable(batch),
        progressed_at=batch.now,
    )


def _claimable(batch: Batch) -> list[list[object]]:
    """Running attempts that hold a claim while they run (``claims``): the ones the sweeper can check.

    A ``celery.task`` attempt holds none; its timeout timer ends it instead.
    """
    return [[n, a] for n, a in d.running_attempts(batch.state) if batch.graph.nodes[n].behavior == "run"]


def _after_commit(batch: Batch, pending: list[Command], was_terminal: bool) -> None:
    state, execution = batch.state, batch.execution
    runs, stops = list(batch.remote), list(batch.stops)

    def publish() -> None:
        journal.cache.put(state)
        for run in runs:
            inputs = {u: state.node(u).attempt for u in batch.graph.nodes[run.node_id].upstream}
            dispatch.node_attempt(execution.id, run, inputs)
        if stops:
            dispatch.stop_attempts(execution.id, stops)
        if state.terminal and not was_terminal:
            admission.release(execution.workflow_id)
        _observe(batch, pending, was_terminal)

    transaction.on_commit(publish)


def _observe(batch: Batch, pending: list[Command], was_terminal: bool) -> None:
    now = time.time()
    for command in pending:
        metrics.workflow_routing_latency_seconds.labels(command.type).observe(
            max(0.0, now - command.created_at.timestamp())
        )
    state = batch.state
    if any(e.type == "WorkflowStarted" for e in batch.events):
        metrics.workflow_execution_total.labels(state.workflow_id, "started").inc()
    if state.terminal and not was_terminal:
        metrics.workflow_execution_total.labels(state.workflow_id, state.status.value).inc()
        duration = ((state.ended_ms or 0) - (state.started_ms or 0)) / 1000
        metrics.workflow_execution_duration_seconds.labels(state.workflow_id, state.status.value).observe(
            duration
        )


def submit(execution: Execution, command_type: str, payload: dict[str, object], command_id: str) -> bool:
    """Accept a command into the inbox (once per ``command_id``) and wake the owner after commit."""
    with transaction.atomic():
        _, created = Command.objects.get_or_create(
            pk=command_id, defaults={"execution_id": execution.id, "type": command_type, "payload": payload}
        )
        transaction.on_commit(lambda: dispatch.apply_hint(execution.id, execution.shard_id))
    return created
