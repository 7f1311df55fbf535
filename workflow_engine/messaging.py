"""Every message the engine publishes, in one place: its Celery tasks by name, on its queues, and the Redis
nudge that makes members reconcile at once.

A message is a hint: PostgreSQL holds the work (ARCHITECTURE.md §2), so a lost or duplicated message delays
work and never loses or repeats it. Callers publish after their transaction commits (``on_commit``); the
sweeper and recovery re-send what a crash in between lost. Publishing by name keeps the layers pointing down:
the services that publish never import the task adapters that consume (``apps/workflows/tasks.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery import signature

from workflow_engine import redis_client
from workflow_engine.celery import app

# Task names are the wire format: a message queued by one release must be runnable by the next.
APPLY_COMMANDS = "workflows.apply_commands"
APPLY_SHARD = "workflows.apply_shard"
RUN_NODE_ATTEMPT = "workflows.run_node"
CELERY_TASK_SUCCEEDED = "workflows.celery_task_succeeded"
CELERY_TASK_FAILED = "workflows.celery_task_failed"

NODE_QUEUE = "wf.nodes"
NUDGE_CHANNEL = "reconcile"


def shard_queue(shard_id: int) -> str:
    """The queue of one shard; only the member owning the shard consumes it."""
    return f"wf.shard.{shard_id}"


def apply_commands(
    execution_id: str, shard_id: int, *, recover: bool = False, countdown: float | None = None
) -> None:
    """Ask the owner of ``shard_id`` to apply one execution's pending commands."""
    app.send_task(
        APPLY_COMMANDS,
        (execution_id,),
        {"recover": recover} if recover else None,
        queue=shard_queue(shard_id),
        countdown=countdown,
    )


def apply_shard(shard_id: int) -> None:
    """Ask the owner of ``shard_id`` to apply every execution waiting at the shard's doorbell."""
    app.send_task(APPLY_SHARD, (shard_id,), queue=shard_queue(shard_id))


def run_node_attempt(execution_id: str, node_id: str, attempt: int, inputs: dict[str, int]) -> None:
    """Ask any worker to run one node attempt; ``inputs`` names the upstream attempts to read."""
    app.send_task(RUN_NODE_ATTEMPT, (execution_id, node_id, attempt, inputs), queue=NODE_QUEUE)


def user_task(
    name: str,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    *,
    task_id: str,
    queue: str | None,
    callback_args: Sequence[Any],
) -> None:
    """Send a task of the user's (a ``celery.task`` node); its success or failure comes back to the engine
    through ``CELERY_TASK_SUCCEEDED`` / ``CELERY_TASK_FAILED`` with ``callback_args``."""
    app.send_task(
        name,
        args=list(args),
        kwargs=kwargs,
        task_id=task_id,
        queue=queue or NODE_QUEUE,
        link=signature(CELERY_TASK_SUCCEEDED, args=tuple(callback_args), queue=NODE_QUEUE),
        link_error=signature(CELERY_TASK_FAILED, args=tuple(callback_args), queue=NODE_QUEUE),
    )


def revoke(task_ids: Sequence[str]) -> None:
    """Stop tasks sent by ``user_task`` (terminating them where they run)."""
    app.control.revoke(list(task_ids), terminate=True)


def nudge_members() -> None:
    """Wake every worker to read its shard assignment now instead of at its next ``reconcile-interval``."""
    redis_client.client().publish(nudge_channel(), "1")


def nudge_channel() -> str:
    return redis_client.key(NUDGE_CHANNEL)
