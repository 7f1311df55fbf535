"""Liveness of running node attempts: a Redis key per attempt, refreshed while the node runs.

The sweeper re-drives a running attempt only when no key says someone is still working on it, so a long node
is not run twice just for being long, and a node whose worker died is run again (at-least-once, invariant 3).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from workflow_engine import redis_client
from workflow_engine.tunables import engine_settings

logger = logging.getLogger(__name__)


def _key(execution_id: str, node_id: str, attempt: int) -> str:
    return redis_client.key("run", execution_id, node_id, str(attempt))


def _set(key: str) -> None:
    try:
        redis_client.client().set(key, "1", px=int(engine_settings.liveness_ttl * 1000))
    except Exception:  # a missing claim only risks a duplicate run, never a lost one
        logger.warning("could not refresh a node claim", exc_info=True)


@contextmanager
def claimed(execution_id: str, node_id: str, attempt: int) -> Iterator[None]:
    """Hold the attempt's claim for the duration of the block."""
    key = _key(execution_id, node_id, attempt)
    stop = threading.Event()

    def refresh() -> None:
        while not stop.wait(engine_settings.heartbeat_interval):
            _set(key)

    _set(key)
    thread = threading.Thread(target=refresh, daemon=True, name=f"claim-{node_id}")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=1)
        try:
            redis_client.client().delete(key)
        except Exception:
            logger.warning("could not drop a node claim", exc_info=True)


def live(attempts: Sequence[tuple[str, str, int]]) -> set[tuple[str, str, int]]:
    """Which ``(execution, node, attempt)`` are being run right now by a live process."""
    if not attempts:
        return set()
    values = redis_client.client().mget([_key(*a) for a in attempts])
    return {a for a, v in zip(attempts, values, strict=True) if v is not None}


def first_redrive(attempts: Sequence[tuple[str, str, int]], quiet: float) -> list[tuple[str, str, int]]:
    """The attempts not re-driven within the last ``quiet`` seconds; marks them as re-driven now."""
    if not attempts:
        return []
    pipe = redis_client.client().pipeline()
    for execution_id, node_id, attempt in attempts:
        key = redis_client.key("redrive", execution_id, node_id, str(attempt))
        pipe.set(key, "1", nx=True, px=int(quiet * 1000))
    return [a for a, first in zip(attempts, pipe.execute(), strict=True) if first]


REDRIVES_TTL = 3600  # seconds: an execution not re-driven for an hour starts its count again
REPORTED_TTL = 86400  # seconds: an execution the sweeper gave up on is reported once a day at most


def count_redrives(execution_ids: Sequence[str]) -> dict[str, int]:
    """Add one re-drive to each execution; how many each has had (within ``REDRIVES_TTL`` of the last)."""
    if not execution_ids:
        return {}
    pipe = redis_client.client().pipeline()
    for execution_id in execution_ids:
        key = redis_client.key("redrives", execution_id)
        pipe.incr(key)
        pipe.expire(key, REDRIVES_TTL)
    counts = pipe.execute()[::2]
    return {e: int(n) for e, n in zip(execution_ids, counts, strict=True)}


def first_report(execution_ids: Sequence[str]) -> list[str]:
    """The executions not reported as stuck within ``REPORTED_TTL``; marks them as reported now."""
    if not execution_ids:
        return []
    pipe = redis_client.client().pipeline()
    for execution_id in execution_ids:
        pipe.set(redis_client.key("stuck", execution_id), "1", nx=True, ex=REPORTED_TTL)
    return [e for e, first in zip(execution_ids, pipe.execute(), strict=True) if first]
