"""Liveness of running node attempts: a Redis key per attempt, refreshed while the node runs.

The sweeper re-drives a running attempt only when no key says someone is still working on it, so a long node
is not run twice just for being long, and a node whose worker died is run again (at-least-once, invariant 3).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from apps.cluster import redis_client
from apps.workflows.conf import engine_settings

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
        pipe.set(
            redis_client.key("redrive", execution_id, node_id, str(attempt)), "1", nx=True, ex=int(quiet)
        )
    return [a for a, first in zip(attempts, pipe.execute(), strict=True) if first]
