"""One Redis client per process for coordination keys (leases, liveness, doorbells, nudges)."""

from __future__ import annotations

import os
from functools import lru_cache

import redis
from django.conf import settings


@lru_cache(maxsize=1)
def _client(pid: int) -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2, health_check_interval=10
    )


def client() -> redis.Redis:
    """The process's client; a forked child gets its own (sockets must not be shared across fork)."""
    return _client(os.getpid())


def key(*parts: str) -> str:
    """A coordination key under the same prefix as Celery's queues (``REDIS_KEY_PREFIX``)."""
    prefix = str(settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "wfe:"))
    return prefix + ":".join(parts)
