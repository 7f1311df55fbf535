"""Celery adapters: ids and primitives in, one service call, nothing returned (CONVENTIONS.md)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.db import close_old_connections

from apps.workflows.services import apply, attempts, celery_nodes
from apps.workflows.services.apply import TRANSIENT
from workflow_engine import messaging
from workflow_engine.celery import app

logger = logging.getLogger(__name__)


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
                logger.warning(
                    "transient database error; retrying",
                    exc_info=True,  # which error (a lost connection, a lock or statement timeout) says why
                    extra={"task": name, "task_args": args},
                )
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


@engine_task(messaging.APPLY_COMMANDS, **APPLY_LIMITS)
def apply_commands(execution_id: str, recover: bool = False) -> None:
    apply.apply_execution(execution_id, recover)


@engine_task(messaging.APPLY_SHARD, **APPLY_LIMITS)
def apply_shard(shard_id: int) -> None:
    apply.apply_shard(shard_id)


@engine_task(messaging.RUN_NODE_ATTEMPT)
def run_node_attempt(execution_id: str, node_id: str, attempt: int, inputs: dict[str, int]) -> None:
    attempts.run_attempt(execution_id, node_id, attempt, inputs)


@engine_task(messaging.CELERY_TASK_SUCCEEDED)
def celery_task_succeeded(result: Any, execution_id: str, node_id: str, attempt: int) -> None:
    celery_nodes.succeeded(result, execution_id, node_id, attempt)


@app.task(name=messaging.CELERY_TASK_FAILED)
def celery_task_failed(
    request: Any, exc: BaseException, traceback: Any, execution_id: str, node_id: str, attempt: int
) -> None:
    """An errback: Celery calls it with the failed task's request, exception and traceback."""
    celery_nodes.failed(f"{type(exc).__name__}: {exc}", execution_id, node_id, attempt)
