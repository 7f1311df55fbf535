"""Firing durable timers on PostgreSQL's clock (invariant 5). Run by the coordinator leader every tick.

A due timer becomes the inbox command ``timer:<id>`` in the same transaction that marks it fired, so it fires
exactly once however many leaders come and go; ``SKIP LOCKED`` lets a second firing process pass it by.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models.functions import Now

from apps.workflows.models import Command, Execution, Timer
from apps.workflows.services import dispatch

BATCH = 500


def _wake(shards: dict[str, int]) -> None:
    for execution_id, shard_id in shards.items():
        dispatch.apply_hint(execution_id, shard_id)


def fire_due(limit: int = BATCH) -> int:
    """Fire up to ``limit`` due timers; returns how many."""
    with transaction.atomic():
        due = list(
            Timer.objects.select_for_update(skip_locked=True)
            .filter(fired_at__isnull=True, fire_at__lte=Now())
            .order_by("fire_at")[:limit]
        )
        if not due:
            return 0
        Command.objects.bulk_create(
            [
                Command(
                    id=f"timer:{t.id}",
                    execution_id=t.execution_id,
                    type="timer_fired",
                    payload={"kind": t.kind, "nodeId": t.node_id, "attempt": t.attempt, "timerId": t.id},
                )
                for t in due
            ],
            ignore_conflicts=True,
        )
        Timer.objects.filter(id__in=[t.id for t in due]).update(fired_at=Now())
        shards = dict(
            Execution.objects.filter(id__in={t.execution_id for t in due}).values_list("id", "shard_id")
        )
        transaction.on_commit(lambda: _wake(shards))
    return len(due)
