"""Coalescing wake-up hints per shard under load: one Celery message for many executions.

A plain hint is one ``apply_commands`` message per execution. ``ring`` instead appends the execution to
its shard's list in Redis and publishes an ``apply_shard`` message only if none is pending for the shard
(the bell key). The worker answering it clears the bell, then takes the whole list, atomically, and applies
each execution in turn. So at low load every execution still gets a message at once, and under a backlog a
shard's executions share one, which is most of a worker's cost per execution (docs/benchmarks.md).

Why nothing is lost: ``ring`` (append, then set the bell if absent) and ``answer`` (clear the bell, take the
list) are each one Redis transaction. A ring before an answer is in the list that answer takes; a ring after
it finds no bell and publishes. A lost message, a lost list (Redis restarted) or a worker dying after
``answer`` leave commands unprocessed in PostgreSQL, which the sweeper hints again, as for any lost hint;
the bell expires after ``BELL_TTL_MS`` so a lost message does not silence the shard.
"""

from __future__ import annotations

from collections.abc import Sequence

from workflow_engine import redis_client

BELL_TTL_MS = 5000


def _keys(shard_id: int) -> tuple[str, str]:
    return redis_client.key("bell", str(shard_id)), redis_client.key("waiting", str(shard_id))


def ring(shard_id: int, execution_id: str) -> bool:
    """Queue the execution for its shard; ``True`` if the caller must publish the shard's message."""
    bell, waiting = _keys(shard_id)
    pipe = redis_client.client().pipeline(transaction=True)
    pipe.rpush(waiting, execution_id)
    pipe.set(bell, "1", nx=True, px=BELL_TTL_MS)
    _, rang = pipe.execute()
    return bool(rang)


def answer(shard_id: int) -> list[str]:
    """Clear the bell and take the executions queued for the shard, oldest first, each once."""
    bell, waiting = _keys(shard_id)
    pipe = redis_client.client().pipeline(transaction=True)
    pipe.delete(bell)
    pipe.lrange(waiting, 0, -1)
    pipe.delete(waiting)
    _, queued, _ = pipe.execute()
    return list(dict.fromkeys(item.decode() for item in queued))


def put_back(shard_id: int, execution_ids: Sequence[str]) -> None:
    """Return executions an interrupted answer did not apply; the retried message takes them again."""
    if execution_ids:
        redis_client.client().lpush(_keys(shard_id)[1], *reversed(execution_ids))


def ring_again(shard_id: int, execution_ids: Sequence[str]) -> bool:
    """Return executions a batch left for later, first in line; ``True`` if the caller must publish the
    shard's message (no bell was pending), as for ``ring``."""
    if not execution_ids:
        return False
    bell, waiting = _keys(shard_id)
    pipe = redis_client.client().pipeline(transaction=True)
    pipe.lpush(waiting, *reversed(execution_ids))
    pipe.set(bell, "1", nx=True, px=BELL_TTL_MS)
    _, rang = pipe.execute()
    return bool(rang)


# An execution whose apply ran past ``apply-batch-budget`` in a batch is applied alone, with a message of its
# own, for this long: so one heavy execution never holds the commit of its shard's other executions.
SLOW_TTL = 600  # seconds


def _slow_key(execution_id: str) -> str:
    return redis_client.key("slow", execution_id)


def mark_slow(execution_id: str) -> None:
    redis_client.client().set(_slow_key(execution_id), "1", ex=SLOW_TTL)


def split_slow(execution_ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(slow, others)``: the executions marked slow, to apply alone, and the rest, in their order."""
    if len(execution_ids) < 2:
        return [], list(execution_ids)
    marks = redis_client.client().mget([_slow_key(e) for e in execution_ids])
    slow = [e for e, mark in zip(execution_ids, marks, strict=True) if mark is not None]
    return slow, [e for e, mark in zip(execution_ids, marks, strict=True) if mark is None]
