"""Applying executions' pending commands on the worker that owns their shard: one execution at a time
(``apply_execution``) or a shard's doorbell batch in one transaction (``apply_shard``). The Celery tasks
``workflows.apply_commands`` and ``workflows.apply_shard`` call these and nothing else.
"""

from __future__ import annotations

import logging
import time

from celery.exceptions import SoftTimeLimitExceeded
from django.db import InterfaceError, OperationalError, transaction
from psycopg.errors import LockNotAvailable, QueryCanceled

from apps.cluster.sharding import ShardNotOwned
from apps.workflows import metrics
from apps.workflows.models import Execution
from apps.workflows.services import commands, dispatch, doorbell
from workflow_engine.tunables import engine_settings

logger = logging.getLogger(__name__)

# PostgreSQL restarting or unreachable: try again with back-off rather than lose the hint.
TRANSIENT = (OperationalError, InterfaceError)


def apply_execution(execution_id: str, recover: bool = False, *, budget: float | None = None) -> None:
    """Apply the execution's pending commands; an apply that fails on anything but a transient error or a
    lock timeout is handed to ``commands.apply_failed``, which lets a pending cancel win and, after
    ``max-apply-failures`` failures in a row, fails the execution; until then it is tried again, later.

    ``budget`` (in a shard batch) bounds each statement; an apply cancelled by it is the caller's to move."""
    try:
        commands.apply_pending(execution_id, recover=recover, budget=budget)
    except ShardNotOwned as exc:
        # not ours (any more): hand the hint back to the shard queue, which the owner consumes
        logger.info(
            "hint for a shard we do not own", extra={"execution_id": execution_id, "reason": str(exc)}
        )
        requeue(execution_id, recover)
    except Exception as exc:
        if not _counts_as_failure(exc, in_batch=budget is not None):
            raise
        outcome, failures = commands.apply_failed(execution_id, exc)
        if outcome in ("retry", "stuck"):
            # later, not at once: the same data fails the same way; the sweeper is the backstop for the hint
            requeue(execution_id, recover, countdown=float(min(failures, 10)))


def _counts_as_failure(exc: BaseException, *, in_batch: bool) -> bool:
    """Whether the failure is the execution's own: not a lost connection, a locked row, a time limit, or
    (in a shard batch) the batch's statement budget."""
    if isinstance(exc, SoftTimeLimitExceeded):
        return False
    if isinstance(exc, TRANSIENT):
        # an apply cancelled by its own statement timeout (alone, with the full apply-timeout) is its own
        return isinstance(exc.__cause__, QueryCanceled) and not in_batch
    return True


def apply_shard(shard_id: int) -> None:
    """Apply every execution queued at the shard's doorbell.

    Several are applied in one transaction, each in a savepoint of its own: one commit, so one ``fsync``,
    for the lot, and an execution that fails (a bug, a unique violation) rolls back only its savepoint. A
    locked row (lock timeout) is retried alone; a lost connection or another transient error rolls back all
    of them: they go back to the doorbell and the message is retried.

    No execution holds the others (issue 10): each statement of a batched apply gets ``apply-batch-budget``;
    an apply cancelled by it, or slower than it, is marked slow and applied alone from then on (a message of
    its own), and once the batch has run for the budget it commits what it has and hands the rest back to
    the doorbell, so another worker process can take them meanwhile.
    """
    slow, queued = doorbell.split_slow(doorbell.answer(shard_id))
    for execution_id in slow:
        dispatch.apply_alone(execution_id, shard_id)
    if not queued:
        return
    try:
        if len(queued) == 1:
            # a lone execution, too: a lost connection (a PostgreSQL failover) must not consume its wake-up,
            # or the retried message finds the doorbell empty and the execution waits for the sweeper
            apply_execution(queued[0])
            return
        with transaction.atomic():
            rest = _apply_batch(shard_id, queued)
    except BaseException:
        doorbell.put_back(shard_id, queued)  # all rolled back: the retry (or the next ring) takes them again
        raise
    if rest:
        dispatch.ring_again(shard_id, rest)


def _apply_batch(shard_id: int, queued: list[str]) -> list[str]:
    """Apply the executions in order within the budget; the ones it did not reach."""
    budget = engine_settings.apply_batch_budget
    started = time.monotonic()
    for index, execution_id in enumerate(queued):
        if index and time.monotonic() - started > budget:
            return queued[index:]
        began = time.monotonic()
        if _apply_isolated(shard_id, execution_id, budget):
            continue
        if time.monotonic() - began > budget:  # slow outside PostgreSQL (inline nodes): commit what we have
            _set_aside(shard_id, execution_id, requeue_it=False)
            return queued[index + 1 :]
    return []


def _apply_isolated(shard_id: int, execution_id: str, budget: float) -> bool:
    """Apply one execution of a batch in a savepoint; ``True`` if it was rolled back and set aside."""
    try:
        apply_execution(execution_id, budget=budget)  # apply_pending's transaction is a savepoint here
    except OperationalError as exc:
        if isinstance(exc.__cause__, QueryCanceled):
            _set_aside(shard_id, execution_id, requeue_it=True)
            return True
        if not isinstance(exc.__cause__, LockNotAvailable):
            raise
        # its row is held elsewhere (a paused process): only this one waits, with a hint of its own
        logger.warning("execution row locked; retrying it alone", extra={"execution_id": execution_id})
        requeue(execution_id, False)
        return True
    return False


def _set_aside(shard_id: int, execution_id: str, *, requeue_it: bool) -> None:
    """An apply past the batch budget: applied alone from now on (and now, if it was rolled back)."""
    logger.warning("apply past apply-batch-budget; applying it alone", extra={"execution_id": execution_id})
    metrics.workflow_apply_budget_exceeded_total.inc()
    try:
        doorbell.mark_slow(execution_id)
    except Exception:  # without the mark it is only batched again, and set aside again
        logger.warning("could not mark an execution slow", exc_info=True)
    if requeue_it:
        dispatch.apply_alone(execution_id, shard_id)


def requeue(execution_id: str, recover: bool, countdown: float = 1.0) -> None:
    """A hint again, later: the execution's shard is read afresh (its owner may have changed)."""
    shard = Execution.objects.filter(pk=execution_id).values_list("shard_id", flat=True).first()
    if shard is not None:
        dispatch.apply_hint(execution_id, shard, recover=recover, countdown=countdown)
