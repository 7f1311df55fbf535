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
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.cluster import identity
from apps.cluster.sharding import FENCE_SQL, ShardNotOwned, check_owner
from apps.workflows import metrics
from apps.workflows.engine import decide as d
from apps.workflows.engine import poison
from apps.workflows.engine.graph import Graph
from apps.workflows.models import Command, Execution
from apps.workflows.services import admission, celery_nodes, dispatch, journal, runner, stops
from apps.workflows.services.batch import Batch, describe, to_engine
from apps.workflows.services.persist import persist
from workflow_engine import redis_client, storable
from workflow_engine.tunables import engine_settings

logger = logging.getLogger(__name__)


def apply_pending(execution_id: str, *, recover: bool = False, budget: float | None = None) -> None:
    """Apply every unprocessed command of the execution; with ``recover``, also re-drive running attempts.

    Every statement gets at most ``budget`` seconds (``apply-timeout`` by default), so that one execution's
    apply cannot hold a shard batch or a worker for long: past it, PostgreSQL cancels the statement and the
    transaction (or the caller's savepoint) rolls back with ``QueryCanceled``.

    Raises ``ShardNotOwned`` (and changes nothing) when this worker does not own the shard.
    """
    member_id = identity.current()
    try:
        with transaction.atomic():
            _apply_locked(execution_id, member_id, recover, budget)
    except ShardNotOwned:
        metrics.workflow_fence_failures_total.inc()
        journal.cache.drop(execution_id)
        raise


def _apply_locked(execution_id: str, member_id: str | None, recover: bool, budget: float | None) -> None:
    execution = _lock(execution_id, budget)
    if execution is None:
        return
    epoch, pending = _fence_and_pending(execution.shard_id, execution_id, member_id)
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


# A row held by a paused process fails fast; the task is retried with back-off (tasks.TRANSIENT). The
# statement timeout bounds the apply (``apply_pending``); both are local to the transaction, or to the
# savepoint of a shard batch, and are set in the locking round trip itself.
_LOCK_SQL = """SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true);
SELECT id, workflow_id, version_id, shard_id, status, last_seq, input
FROM workflows_execution WHERE id = %s FOR UPDATE"""

# After the row lock, in a statement of its own so that its snapshot sees every command applied before it.
_FENCE_AND_PENDING_SQL = f"""SELECT lease.owner, lease.epoch, c.id, c.type, c.payload, c.created_at
FROM ({FENCE_SQL}) lease
LEFT JOIN LATERAL (
    SELECT id, type, payload, created_at FROM workflows_command
    WHERE execution_id = %s AND processed_at IS NULL ORDER BY created_at, id
) c ON true"""


LOCK_TIMEOUT = 5.0  # seconds


def _lock(execution_id: str, budget: float | None = None) -> Execution | None:
    """The head row, locked ``FOR UPDATE`` (one round trip with the lock and statement timeouts)."""
    budget = engine_settings.apply_timeout if budget is None else budget
    timeouts = [f"{int(min(LOCK_TIMEOUT, budget) * 1000)}ms", f"{int(budget * 1000)}ms"]
    with connection.cursor() as cur:
        cur.execute(_LOCK_SQL, [*timeouts, execution_id])
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


def _fence_and_pending(shard_id: int, execution_id: str, member_id: str | None) -> tuple[int, list[Command]]:
    """The shard fence (``sharding.FENCE_SQL``, checked by ``sharding.check_owner``) and the unprocessed
    commands, in one statement."""
    with connection.cursor() as cur:
        cur.execute(_FENCE_AND_PENDING_SQL, [shard_id, execution_id])
        rows = cur.fetchall()
    owner, epoch = (rows[0][0], rows[0][1]) if rows else (None, 0)
    check_owner(shard_id, owner, member_id)
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
    runs, to_stop = list(batch.remote), list(batch.stops)

    def publish() -> None:
        journal.cache.put(state)
        for run in runs:
            inputs = {u: state.node(u).attempt for u in batch.graph.nodes[run.node_id].upstream}
            dispatch.node_attempt(execution.id, run, inputs)
        if to_stop:
            # a flag nodes poll, and a revoke for the tasks ``celery.task`` nodes sent
            stops.request(execution.id, to_stop)
            celery_nodes.revoke(execution.id, to_stop)
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
        # an execution failed before it started (its first apply kept failing) has no duration
        duration = ((state.ended_ms or 0) - (state.started_ms or state.ended_ms or 0)) / 1000
        metrics.workflow_execution_duration_seconds.labels(state.workflow_id, state.status.value).observe(
            duration
        )


# --- applies that keep failing (issue 10: no execution can be wedged by its data) ---------------------------


def apply_failed(execution_id: str, error: BaseException) -> tuple[str, int]:
    """After an apply of the execution failed on something neither transient nor a lock timeout, and rolled
    back: a pending cancel is applied alone (cancel always wins), and the ``max-apply-failures``-th failure in
    a row fails the execution with the reason in its journal.

    Returns what happened (``cancelled``, ``failed``, ``retry``, or ``stuck`` when even that failed) and how
    many applies have failed in a row. "In a row" means at the same ``last_seq``: progress starts the count
    again, with nothing to reset on the hot path.
    """
    reason = storable.text(f"{type(error).__name__}: {error}".strip(), limit=1000)
    failures = _count_failure(execution_id)
    try:
        with transaction.atomic():
            outcome = _end_wedged(execution_id, failures, reason)
    except Exception:
        logger.exception("could not end an execution whose apply keeps failing", extra=_extra(execution_id))
        outcome = "stuck"
    metrics.workflow_apply_failures_total.labels(outcome).inc()
    level = logging.WARNING if outcome == "retry" else logging.ERROR
    logger.log(
        level,
        "apply failed (%s of %s): %s",
        failures,
        engine_settings.max_apply_failures,
        reason,
        extra={**_extra(execution_id), "outcome": outcome},
    )
    return outcome, failures


def _extra(execution_id: str) -> dict[str, object]:
    return {"execution_id": execution_id}


FAILURES_TTL = 3600  # seconds: a count not added to for an hour starts again


def _count_failure(execution_id: str) -> int:
    """Failed applies of the execution at its current ``last_seq`` (Redis, so a migration is not needed)."""
    last_seq = Execution.objects.filter(pk=execution_id).values_list("last_seq", flat=True).first()
    key = redis_client.key("applyfail", execution_id, str(last_seq))
    try:
        pipe = redis_client.client().pipeline()
        pipe.incr(key)
        pipe.expire(key, FAILURES_TTL)
        count, _ = pipe.execute()
        return int(count)
    except Exception:  # without Redis, count nothing: the sweeper's bound still reports it
        logger.warning("could not count an apply failure", exc_info=True, extra=_extra(execution_id))
        return 1


def _end_wedged(execution_id: str, failures: int, reason: str) -> str:
    """Under the row lock and the fence, as any apply: the cancel alone, or the failure, or nothing yet."""
    execution = _lock(execution_id)
    if execution is None:
        return "retry"
    epoch, pending = _fence_and_pending(execution.shard_id, execution_id, identity.current())
    cancel = next((c for c in pending if c.type == "cancel"), None)
    if cancel is None and failures < engine_settings.max_apply_failures:
        return "retry"
    batch = Batch(execution, *_compiled_or_none(execution), journal.hydrate(execution), timezone.now())
    was_terminal = batch.state.terminal
    if cancel is not None:
        payload = cancel.payload if isinstance(cancel.payload, dict) else {}
        reason = str(payload.get("reason") or "cancelled")
        _end(
            batch,
            poison.cancel(
                batch.state, execution.workflow_id, reason, str(payload.get("by", "")), batch.now_ms
            ),
        )
    else:
        reason = f"apply failed {failures} times: {reason}"
        _end(batch, poison.fail(batch.state, execution.workflow_id, reason, batch.now_ms))
    # the other pending commands are what failed; on an ended execution they would change nothing
    for command in pending:
        command.processed_at, command.processed_seq = batch.now, batch.state.last_seq
    queued_waiting = persist(batch, pending, epoch, was_terminal)
    _after_commit(batch, pending, was_terminal, queued_waiting)
    return "cancelled" if cancel is not None else "failed"


def _compiled_or_none(execution: Execution) -> tuple[Any, Any]:
    """The version's definition and graph; ``None``s when they are what fails (a definition that no longer
    validates): ending the execution needs neither, since it runs no node."""
    try:
        return runner.compiled(execution.version_id)
    except Exception:
        logger.warning(
            "definition unusable while ending an execution", exc_info=True, extra=_extra(execution.id)
        )
        return None, None


def _end(batch: Batch, decision: d.Decision) -> None:
    batch.state = decision.state
    batch.events.extend(decision.events)
    batch.stops.extend(decision.stops)
    batch.logs.extend(
        {"node_id": "", "level": "INFO", "message": line} for line, _ in describe(decision.events)
    )


def submit(execution: Execution, command_type: str, payload: dict[str, object], command_id: str) -> bool:
    """Accept a command into the inbox (once per ``command_id``) and wake the owner after commit."""
    with transaction.atomic():
        _, created = Command.objects.get_or_create(
            pk=command_id, defaults={"execution_id": execution.id, "type": command_type, "payload": payload}
        )
        transaction.on_commit(lambda: dispatch.apply_hint(execution.id, execution.shard_id))
    return created
