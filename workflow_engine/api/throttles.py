"""Rate limits: DRF throttles counted in Redis, shared by all gateways (docs/configuration.md, "Rate limits").

- ``user``: requests per authenticated user (so per API token), ``WORKFLOW_RATE_LIMIT_USER``.
- ``anon``: requests per client IP of unauthenticated requests (the open schema and docs),
  ``WORKFLOW_RATE_LIMIT_ANON``.
- ``auth_failures``: failed token authentications per client IP, ``WORKFLOW_RATE_LIMIT_AUTH_FAILURES``. DRF
  checks throttles after authentication, so a wrong token would always get its 401: the token authentication
  class counts failures itself and, once an IP is over the limit, answers every token it sends with 429
  (a right guess included, or the limit would not slow guessing down).

Counters are fixed windows (``INCR`` on a key per window, expiring with it): one Redis round trip per request
whatever the rate, where DRF's own ``SimpleRateThrottle`` rewrites a list of every request's time. The client
IP is ``REMOTE_ADDR`` unless ``NUM_PROXIES`` trusted proxies add ``X-Forwarded-For``. The health probes are
never throttled. When Redis is unreachable the limits fail open: the API keeps answering.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis.exceptions
from django.core.cache import caches
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

logger = logging.getLogger(__name__)

CACHE_ALIAS = "throttle"  # settings.CACHES: Redis at REDIS_URL
UNTHROTTLED_PREFIXES = ("/health",)  # load balancers and kubelets poll these from a few addresses


def rate_of(scope: str) -> tuple[int, int] | None:
    """``(requests, seconds)`` of a scope in ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``; None: no limit.

    Read on every request (not once at import, as DRF does) so that ``override_settings`` applies."""
    rate = api_settings.DEFAULT_THROTTLE_RATES.get(scope)
    if not rate:
        return None
    number, period = str(rate).split("/")
    return int(number), {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]]


def over_limit(key: str, rate: tuple[int, int], count: bool = True) -> float | None:
    """Count one hit on ``key`` in the current window of ``rate``, or with ``count`` false only look whether
    one more would be allowed; the seconds until the window ends when it is not, else None."""
    limit, seconds = rate
    now = time.time()
    window = int(now // seconds)
    full_key = f"{key}:{window}"
    cache = caches[CACHE_ALIAS]
    try:
        if not count:
            hits = cache.get(full_key, 0)
        elif cache.add(full_key, 1, timeout=seconds + 1):
            hits = 1
        else:
            try:
                hits = cache.incr(full_key)
            except ValueError:  # expired between add and incr: a fresh window
                hits = 1 if cache.add(full_key, 1, timeout=seconds + 1) else cache.incr(full_key)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        logger.warning("rate limits skipped: redis unavailable (%s)", exc)
        return None
    refused = hits > limit if count else hits >= limit
    return (window + 1) * seconds - now if refused else None


def client_ip(request: Request) -> str:
    """The client's address: ``REMOTE_ADDR``, or the ``X-Forwarded-For`` entry added by the outermost of
    ``NUM_PROXIES`` trusted proxies (never a client-written entry)."""
    return str(BaseThrottle().get_ident(request))


def _unthrottled(request: Request) -> bool:
    return request.path.startswith(UNTHROTTLED_PREFIXES)


class _WindowThrottle(SimpleRateThrottle):
    """A DRF throttle over :func:`over_limit`; subclasses name the scope and the identity."""

    def __init__(self) -> None:  # the rate is read per request in allow_request
        self._wait: float | None = None

    def identity(self, request: Request) -> str | None:
        raise NotImplementedError

    def allow_request(self, request: Request, view: Any) -> bool:
        rate = rate_of(str(self.scope))
        ident = None if rate is None or _unthrottled(request) else self.identity(request)
        if rate is None or ident is None:
            return True
        self._wait = over_limit(f"{self.scope}:{ident}", rate)
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait


class UserRateThrottle(_WindowThrottle):
    """Requests per authenticated user: each user holds one API token (``rest_framework.authtoken``)."""

    scope = "user"

    def identity(self, request: Request) -> str | None:
        user = request.user
        return str(user.pk) if user is not None and user.is_authenticated else None


class AnonRateThrottle(_WindowThrottle):
    """Unauthenticated requests per client IP."""

    scope = "anon"

    def identity(self, request: Request) -> str | None:
        user = request.user
        return None if user is not None and user.is_authenticated else client_ip(request)


class ThrottledTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, refusing (429) token guesses from an IP over its failure limit."""

    scope = "auth_failures"

    def authenticate(self, request: Request) -> Any:
        rate = rate_of(self.scope)
        if rate is None or _unthrottled(request):
            return super().authenticate(request)
        key = f"{self.scope}:{client_ip(request)}"
        wait = over_limit(key, rate, count=False)
        if wait is not None:
            raise Throttled(wait, "Too many failed authentications from this address.")
        try:
            return super().authenticate(request)
        except AuthenticationFailed:
            over_limit(key, rate)
            raise
