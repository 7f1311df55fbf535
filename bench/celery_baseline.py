"""The plain-Celery contender of ``bench/throughput.py``: the work of the benchmark's workflows, as tasks.

A stock Celery app (default acknowledgement and prefetch, JSON, no durability of its own) on the
benchmark's Redis, in a database of its own (``BASELINE_REDIS_URL``). The last task of each run increments a
Redis counter, which the benchmark polls; chords need the Redis result backend, used only by the chord's
header tasks.

    celery -A celery_baseline worker -c 2      (with bench/ on PYTHONPATH)
"""

from __future__ import annotations

import os
from typing import Any

import redis
from celery import Celery, chain, chord

URL = os.environ.get("BASELINE_REDIS_URL", "redis://127.0.0.1:6379/1")

app = Celery("celery_baseline", broker=URL, backend=URL)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    task_ignore_result=True,
    worker_send_task_events=False,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)

_redis: redis.Redis | None = None


def _conn() -> redis.Redis:
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(URL)
    return _redis


@app.task
def produce() -> list[int]:
    """``sequence.numbers`` with start 1, end 1."""
    return [1]


@app.task
def double(records: list[int]) -> list[int]:
    """``map`` with expression ``value * 2``."""
    return [x * 2 for x in records]


@app.task(ignore_result=False)
def double_header(records: list[int]) -> list[int]:
    """``double`` as a chord header task (its result must be stored for the chord)."""
    return [x * 2 for x in records]


@app.task
def count(records: list[Any], counter: str) -> int:
    """``aggregate.count``; a chord passes a list of the header results, which are concatenated (fan-in)."""
    flat = [r for part in records for r in part] if records and isinstance(records[0], list) else records
    _conn().incr(counter)
    return len(flat)


def linear(length: int, counter: str) -> Any:
    """produce → (length - 2) doubles → count."""
    return chain(produce.s(), *[double.s() for _ in range(length - 2)], count.s(counter))


def fan(width: int, counter: str) -> Any:
    """produce → ``width`` doubles in parallel → count over all of them."""
    return chain(produce.s(), chord([double_header.s() for _ in range(width)], count.s(counter)))
