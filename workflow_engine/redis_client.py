"""One Redis client per process for coordination keys (leases, liveness, doorbells, nudges)."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import redis
from django.conf import settings
from redis.sentinel import Sentinel

from workflow_engine.env import parse_sentinel_url, safe_redis_url


@lru_cache(maxsize=1)
def _client(pid: int) -> redis.Redis:
    return connect(socket_timeout=2, socket_connect_timeout=2, health_check_interval=10)


def connect(url: str | None = None, **options: Any) -> redis.Redis:
    """A new client for ``url`` (default ``REDIS_URL``) with redis-py connection ``options``.

    A ``sentinel://`` URL gives a client of the master the sentinels name: on a connection error, or a
    ``READONLY`` reply from a demoted master, its next command asks the sentinels again, so a failover costs
    the callers one failed round (they all retry on their next tick), never a restart."""
    url = url or settings.REDIS_URL
    if urlsplit(url).scheme != "sentinel":
        return redis.Redis.from_url(url, **options)
    return _sentinel(url, options).master_for(parse_sentinel_url(url).service_name, redis_class=redis.Redis)


def _sentinel(url: str, options: dict[str, Any]) -> Sentinel:
    config = parse_sentinel_url(url)
    # the sentinels get the same timeouts as the master, and a password only if they have one of their own
    sentinel_kwargs: dict[str, Any] = {k: v for k, v in options.items() if k.startswith("socket_")}
    if config.sentinel_password is not None:
        sentinel_kwargs["password"] = config.sentinel_password
    return Sentinel(
        list(config.sentinels),
        sentinel_kwargs=sentinel_kwargs,
        db=config.db,
        username=config.username,
        password=config.password,
        **options,
    )


class SentinelPool:
    """``pool_class`` for Django's ``RedisCache`` (the gateways' rate limits) when ``REDIS_URL`` is a
    ``sentinel://`` URL: Django builds its pools with ``pool_class.from_url``, which redis-py's own pools
    cannot do for Sentinel."""

    @staticmethod
    def from_url(url: str, **options: Any) -> redis.ConnectionPool:
        return _sentinel(url, options).master_for(parse_sentinel_url(url).service_name).connection_pool


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
    """``REDIS_URL`` without its passwords, for messages."""
    return safe_redis_url(settings.REDIS_URL)
