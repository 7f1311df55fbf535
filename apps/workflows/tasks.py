"""Celery adapters: ids and primitives in, one service call, nothing returned (CONVENTIONS.md)."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.db import InterfaceError, OperationalError, close_old_connections, transaction
from psycopg.errors import LockNotAvailable, QueryCanceled

from apps.workflows import metrics
from apps.workflows.conf import engine_settings
from apps.workflows.errors import ShardNotOwned
from apps.workflows.services import celery_nodes, commands, dispatch, doorbell, nodes
from workflow_engine.celery import app

logger = logging.getLogger(__name__)

# PostgreSQL restarting or unreachable: try again with back-off rather than lose the hint.
TRANSIENT = (OperationalError, InterfaceError)


# The prefork pool arms a timer per task for its time limits and drops a finished task's timer only when it
# falls due, so a worker holds one per task of the last soft-limit seconds: with the default 840 s, about
# 20,000 timers (15 MiB) at 24 tasks per second (bench/memory.py). Applies are short (an apply holds a row
# lock, with a 5 s lock timeout), so they carry limits of their own; node tasks keep the configured ones.
APPLY_LIMITS = {"soft_time_limit": 120, "time_limit": 150}


def engine_task(name: str, **limits: int) -> Callable[[Callable[..., None]], Any]:
    """Register a task with the engine's delivery settings, transient-error retries and logging context;
    ``limits`` (``soft_time_limit``, ``time_limit``) override the configured time limits."""

    def wrap(fn: Callable[..., None]) -> Any:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> None:
            try:
                fn(*args, **kwargs)
            except TRANSIENT:
                logger.warning("transient database error; retrying", extra={"task": name, "task_args": args})
                # Workers keep their connections between tasks (CELERY_DB_REUSE_MAX), so one broken by a
                # PostgreSQL restart must be dropped here, or every retry would fail on it again.
                close_old_connections()
                raise

        options: dict[str, Any] = dict(limits)
        return app.task(
            name=name,
            acks_late=True,
            autoretry_for=TRANSIENT,
            retry_backoff=1,
            retry_backoff_max=10,
            retry_jitter=True,
            max_retries=None,
            **options,
        )(run)

    return wrap


@engine_task("workflows.apply_commands", **APPLY_LIMITS)
def apply_commands(execution_id: str, recover: bool = False) -> None:
    apply_one(execution_id, recover)


def apply_one(execution_id: str, recover: bool = False, *, budget: float | None = None) -> None:
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


@engine_task("workflows.apply_shard", **APPLY_LIMITS)
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
    if len(queued) <= 1:
        if queued:
            apply_one(queued[0])
        return
    try:
        with transaction.atomic():
            rest = _apply_batch(shard_id, queued)
    except (*TRANSIENT, SoftTimeLimitExceeded):
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
        apply_one(execution_id, budget=budget)  # apply_pending's transaction is a savepoint here
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
    from apps.workflows.models import Execution

    shard = Execution.objects.filter(pk=execution_id).values_list("shard_id", flat=True).first()
    if shard is not None:
        dispatch.apply_hint(execution_id, shard, recover=recover, countdown=countdown)


@engine_task("workflows.run_node")
def run_node(execution_id: str, node_id: str, attempt: int, inputs: dict[str, int]) -> None:
    nodes.run_node(execution_id, node_id, attempt, inputs)


@engine_task("workflows.celery_task_succeeded")
def celery_task_succeeded(result: Any, execution_id: str, node_id: str, attempt: int) -> None:
    celery_nodes.succeeded(result, execution_id, node_id, attempt)


@app.task(name="workflows.celery_task_failed")
def celery_task_failed(
    request: Any, exc: BaseException, traceback: Any, execution_id: str, node_id: str, attempt: int
) -> None:
    """An errback: Celery calls it with the failed task's request, exception and traceback."""
    celery_nodes.failed(f"{type(exc).__name__}: {exc}", execution_id, node_id, attempt)
