"""Telling running node attempts to stop (a cancel, a timeout): a Redis flag per attempt.

A hint, like every Celery message: a node that ignores it runs to the end, and its late result is refused by
``decide`` as stale. Long-running nodes poll ``NodeContext.cancelled()`` to stop early; Celery tasks sent by a
``celery.task`` node are also revoked by id.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from workflow_engine import redis_client

logger = logging.getLogger(__name__)
TTL_SECONDS = 24 * 3600


def _key(execution_id: str, node_id: str, attempt: int) -> str:
    return redis_client.key("stop", execution_id, node_id, str(attempt))


def request(execution_id: str, attempts: Sequence[tuple[str, int]]) -> None:
    try:
        pipe = redis_client.client().pipeline()
        for node_id, attempt in attempts:
            pipe.set(_key(execution_id, node_id, attempt), "1", ex=TTL_SECONDS)
        pipe.execute()
    except Exception:
        logger.warning("could not flag attempts to stop", exc_info=True, extra={"execution_id": execution_id})


def requested(execution_id: str, node_id: str, attempt: int) -> bool:
    try:
        return bool(redis_client.client().exists(_key(execution_id, node_id, attempt)))
    except Exception:
        return False
