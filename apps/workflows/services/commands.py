"""Applying an execution's pending commands: the one place where its journal grows.

``apply_pending`` runs on the worker that owns the execution's shard. In one transaction it locks the
execution row, passes the shard fence, folds every unprocessed inbox command through ``decide`` (a ``Batch``),
appends the events, writes the timers and outputs they call for, marks the commands processed and updates the
head row. Node tasks, stop requests and cache updates are registered to run after commit.
"""

from __future__ import annotations

import json
import logging
import time

from django.db import connection, transaction
from django.utils import timezone

from apps.cluster import identity
from apps.cluster.sharding import FENCE_SQL, check_owner
from apps.workflows import metrics
from apps.workflows.engine import decide as d
from apps.workflows.engine.graph import Graph
from apps.workflows.errors import ShardNotOwned
from apps.workflows.models import Command, Execution
from apps.workflows.services import admission, dispatch, journal, runner
from apps.workflows.services.batch import Batch, to_engine
from apps.workflows.services.persist import persist

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
    execution = _lock(execution_id)
    if execution is None:
        return
    epoch, pending = _fence_and_pending(execution.shard_id, execution_id, node_id)
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
    queued_waiting = persist(batch, pending, epoch, was_terminal)
    if batch.events:
        journal.maybe_snapshot(before_seq, batch.state)
    _after_commit(batch, pending, was_terminal, queued_waiting)


# A row held by a paused process fails fast; the task is retried with back-off (tasks.TRANSIENT).
_LOCK_SQL = """SET LOCAL lock_timeout = '5s';
SELECT id, workflow_id, version_id, shard_id, status, last_seq, input
FROM workflows_execution WHERE id = %s FOR UPDATE"""

# After the row lock, in a statement of its own so that its snapshot sees every command applied before it.
_FENCE_AND_PENDING_SQL = f"""SELECT lease.owner, lease.epoch, c.id, c.type, c.payload, c.created_at
FROM ({FENCE_SQL}) lease
LEFT JOIN LATERAL (
    SELECT id, type, payload, created_at FROM workflows_command
    WHERE execution_id = %s AND processed_at IS NULL ORDER BY created_at, id
) c ON true"""


def _lock(execution_id: str) -> Execution | None:
    """The head row, locked ``FOR UPDATE`` (one round trip with the lock timeout)."""
    with connection.cursor() as cur:
        cur.execute(_LOCK_SQL, [execution_id])
        cur.nextset()
        row = cur.fetchone()
    if row is None:
        return None
    id_, workflow_id, version_id, shard_id, status, last_seq, input_ = row
    return Execution(
        id=id_,
        workflow_id=workflow_id,
        version_id=version_id,
        shard_id=shard_id,
        status=status,
        last_seq=last_seq,
        input=_json(input_),
    )


def _fence_and_pending(shard_id: int, execution_id: str, node_id: str | None) -> tuple[int, list[Command]]:
    """The shard fence (``sharding.fence``) and the unprocessed commands, in one statement."""
    with connection.cursor() as cur:
        cur.execute(_FENCE_AND_PENDING_SQL, [shard_id, execution_id])
        rows = cur.fetchall()
    owner, epoch = (rows[0][0], rows[0][1]) if rows else (None, 0)
    check_owner(shard_id, owner, node_id)
    pending = [
        Command(id=r[2], execution_id=execution_id, type=r[3], payload=_json(r[4]), created_at=r[5])
        for r in rows
        if r[2] is not None
    ]
    return int(epoch), pending


def _json(value: object) -> object:
    """Django has psycopg return ``jsonb`` as text (its JSONField decodes it); raw queries decode it here."""
    return json.loads(value) if isinstance(value, str | bytes) else value


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


def _after_commit(batch: Batch, pending: list[Command], was_terminal: bool, queued_waiting: bool) -> None:
    state, execution = batch.state, batch.execution
    runs, stops = list(batch.remote), list(batch.stops)

    def publish() -> None:
        journal.cache.put(state)
        for run in runs:
            inputs = {u: state.node(u).attempt for u in batch.graph.nodes[run.node_id].upstream}
            dispatch.node_attempt(execution.id, run, inputs)
        if stops:
            dispatch.stop_attempts(execution.id, stops)
        if queued_waiting:
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
