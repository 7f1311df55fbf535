"""One Redis client per process for coordination keys (leases, liveness, doorbells, nudges)."""

from __future__ import annotations

import os
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

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


CLAIM = "cluster"


def claim(owner: str) -> str:
    """Claim this Redis, under the key prefix, for cluster ``owner`` unless a cluster already holds it;
    returns the id the claim holds. The claim never expires: after a wipe, the first process to start
    claims the Redis again."""
    pipe = client().pipeline()
    pipe.set(key(CLAIM), owner, nx=True)
    pipe.get(key(CLAIM))
    _, held = pipe.execute()
    return held.decode() if isinstance(held, bytes) else str(held)


def safe_url() -> str:
    """``REDIS_URL`` without its password, for messages."""
    parts = urlsplit(settings.REDIS_URL)
    if parts.password is None:
        return settings.REDIS_URL
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))
