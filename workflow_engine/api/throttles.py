"""Rate limits: DRF throttles counted in Redis, shared by all gateways (docs/configuration.md, "Rate limits").

- ``user``: requests per authenticated user (so per API token), ``WORKFLOW_RATE_LIMIT_USER``.
- ``anon``: requests per client IP of unauthenticated requests (the open schema and docs),
  ``WORKFLOW_RATE_LIMIT_ANON``.
- ``auth_failures``: failed token authentications per client IP, ``WORKFLOW_RATE_LIMIT_AUTH_FAILURES``. DRF
  checks throttles after authentication, so a wrong token would always get its 401: the token authentication
  class (``apps.accounts.authentication``) runs inside :func:`counting_failures`, which counts failures and,
  once an IP is over the limit, answers every token it sends with 429 (a right guess included, or the limit
  would not slow guessing down).
- ``login``: password logins (``POST /api/v1/auth/login``) per client IP and, separately, per username,
  ``WORKFLOW_RATE_LIMIT_LOGIN``: every attempt counts, so guessing one account's password from many
  addresses is slowed as much as guessing many accounts' from one (:func:`check_login_attempt`).

Counters are fixed windows (``INCR`` on a key per window, expiring with it): one Redis round trip per request
whatever the rate, where DRF's own ``SimpleRateThrottle`` rewrites a list of every request's time. The client
IP is ``REMOTE_ADDR`` unless ``NUM_PROXIES`` trusted proxies add ``X-Forwarded-For``. The health probes are
never throttled. When Redis is unreachable the limits fail open: the API keeps answering.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis.exceptions
from django.core.cache import caches
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

logger = logging.getLogger(__name__)
T = TypeVar("T")

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
    """Requests per authenticated user (all of a user's tokens and sessions share one budget)."""

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


AUTH_FAILURES = "auth_failures"
LOGIN = "login"


def counting_failures(request: Request, authenticate: Callable[[], T]) -> T:
    """Run ``authenticate``, counting each ``AuthenticationFailed`` it raises against the client IP; an IP
    over its limit gets 429 without ``authenticate`` being tried at all."""
    rate = rate_of(AUTH_FAILURES)
    if rate is None or _unthrottled(request):
        return authenticate()
    key = f"{AUTH_FAILURES}:{client_ip(request)}"
    wait = over_limit(key, rate, count=False)
    if wait is not None:
        raise Throttled(wait, "Too many failed authentications from this address.")
    try:
        return authenticate()
    except AuthenticationFailed:
        over_limit(key, rate)
        raise


def check_login_attempt(request: Request, username: str) -> None:
    """Count one login attempt for the client IP and for ``username``; 429 when either is over the limit.
    Counted before the password is checked, so the answer says nothing about the password."""
    rate = rate_of(LOGIN)
    if rate is None:
        return
    # hashed: a username may hold any character, and a cache key should not
    user = hashlib.sha256(username.casefold().encode("utf-8", "surrogatepass")).hexdigest()[:32]
    waits = [over_limit(f"{LOGIN}:ip:{client_ip(request)}", rate), over_limit(f"{LOGIN}:user:{user}", rate)]
    wait = max((w for w in waits if w is not None), default=None)
    if wait is not None:
        raise Throttled(wait, "Too many login attempts; try again later.")
