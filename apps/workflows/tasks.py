"""Celery adapters: ids and primitives in, one service call, nothing returned (CONVENTIONS.md)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.db import InterfaceError, OperationalError, close_old_connections, transaction
from psycopg.errors import LockNotAvailable

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


def apply_one(execution_id: str, recover: bool = False) -> None:
    try:
        commands.apply_pending(execution_id, recover=recover)
    except ShardNotOwned as exc:
        # not ours (any more): hand the hint back to the shard queue, which the owner consumes
        logger.info(
            "hint for a shard we do not own", extra={"execution_id": execution_id, "reason": str(exc)}
        )
        requeue(execution_id, recover)


@engine_task("workflows.apply_shard", **APPLY_LIMITS)
def apply_shard(shard_id: int) -> None:
    """Apply every execution queued at the shard's doorbell.

    Several are applied in one transaction, each in a savepoint of its own: one commit, so one ``fsync``,
    for the lot, and an execution that fails (a bug, a unique violation) rolls back only its savepoint. A
    locked row (lock timeout) is retried alone; a lost connection or another transient error rolls back all
    of them: they go back to the doorbell and the message is retried.
    """
    queued = doorbell.answer(shard_id)
    if len(queued) == 1:
        apply_one(queued[0])
        return
    try:
        with transaction.atomic():
            for execution_id in queued:
                _apply_isolated(execution_id)
    except (*TRANSIENT, SoftTimeLimitExceeded):
        doorbell.put_back(shard_id, queued)  # all rolled back: the retry (or the next ring) takes them again
        raise


def _apply_isolated(execution_id: str) -> None:
    try:
        apply_one(execution_id)  # apply_pending's transaction is a savepoint here
    except OperationalError as exc:
        if not isinstance(exc.__cause__, LockNotAvailable):
            raise
        # its row is held elsewhere (a paused process): only this one waits, with a hint of its own
        logger.warning("execution row locked; retrying it alone", extra={"execution_id": execution_id})
        requeue(execution_id, False)
    except (*TRANSIENT, SoftTimeLimitExceeded):
        raise
    except Exception:  # its savepoint is rolled back; its commands stay for the sweeper, the others go on
        logger.exception("apply failed", extra={"execution_id": execution_id})


def requeue(execution_id: str, recover: bool) -> None:
    from apps.workflows.models import Execution

    shard = Execution.objects.filter(pk=execution_id).values_list("shard_id", flat=True).first()
    if shard is not None:
        dispatch.apply_hint(execution_id, shard, recover=recover, countdown=1.0)


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
