"""Issuing, finding, using and revoking API tokens: the only code that writes ``ApiToken`` rows.

A key is 40 hex characters (160 random bits, the length of DRF's tokens, so clients treat it the same); the
database keeps its SHA-256. A fast hash is right here, unlike for passwords: the key is random and long, so
there is nothing to guess from the hash, and every request must check it cheaply.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.accounts.models import ApiToken
from workflow_engine.errors import Conflict, EngineError

KEY_BYTES = 20
PREFIX_LENGTH = 6
TOUCH_EVERY = timedelta(minutes=1)
MAX_NAME = 100
DRF_NAME = "drf-token"  # + the key's prefix: the name of a key DRF's authtoken made
_DURATION = re.compile(r"^(\d{1,6})([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# the longest lifetime: "999999w" parses, but now + 19,000 years is past what a datetime holds
MAX_LIFETIME = timedelta(days=3650)
MAX_USERNAME = 150  # Django's User.username


class InvalidTokenRequest(EngineError):
    """The token request is invalid."""

    code = "invalid_request"
    status = 400


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def new_key() -> str:
    return secrets.token_hex(KEY_BYTES)


def issue(
    user: Any, name: str, expires_at: datetime | None = None, key: str | None = None
) -> tuple[ApiToken, str]:
    """A new live token of ``user`` named ``name``, and its key (never stored; shown once). ``key`` imports
    an existing key (``bootstrap`` keeps its admin's key across database resets)."""
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        problem = f"A name of 1 to {MAX_NAME} characters is required."
        raise InvalidTokenRequest(problem, details={"name": [problem]})
    key = key or new_key()
    try:
        with transaction.atomic():
            token = ApiToken.objects.create(
                user=user,
                name=name,
                key_hash=hash_key(key),
                prefix=key[:PREFIX_LENGTH],
                expires_at=expires_at,
            )
    except IntegrityError:
        raise Conflict(
            f"{user.get_username()} already has a live token named {name!r}; revoke it or pick another name.",
            details={"name": ["A live token of this user has this name."]},
        ) from None
    return token, key


def find(key: str) -> ApiToken | None:
    """The token of ``key`` (revoked and expired ones too: the caller says why they are refused)."""
    return ApiToken.objects.select_related("user").filter(key_hash=hash_key(key)).first()


def touch(token: ApiToken, now: datetime) -> None:
    """Record a use, at most once per ``TOUCH_EVERY`` per token: most requests write nothing, and of
    concurrent requests at most one writes (the condition is in the UPDATE)."""
    if token.last_used_at is not None and now - token.last_used_at < TOUCH_EVERY:
        return
    ApiToken.objects.filter(
        Q(last_used_at=None) | Q(last_used_at__lte=now - TOUCH_EVERY), pk=token.pk
    ).update(last_used_at=now)
    token.last_used_at = now


def revoke(token_id: int) -> bool:
    """Revoke a live token; False when it was revoked already (or does not exist)."""
    return bool(ApiToken.objects.filter(pk=token_id, revoked_at=None).update(revoked_at=timezone.now()))


def parse_lifetime(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``, ``3600s`` as a duration."""
    found = _DURATION.match(text.strip())
    if not found or int(found.group(1)) == 0:
        raise InvalidTokenRequest(
            f"{text!r} is not a lifetime: use a positive number and a unit, e.g. 30d, 12h, 90m, 2w or 3600s.",
            details={"expires": ["Use a positive number and a unit (s, m, h, d, w), e.g. 30d."]},
        )
    lifetime = timedelta(seconds=int(found.group(1)) * _UNITS[found.group(2)])
    if lifetime > MAX_LIFETIME:
        raise InvalidTokenRequest(
            f"{text!r} is too long a lifetime: at most {MAX_LIFETIME.days}d.",
            details={"expires": [f"At most {MAX_LIFETIME.days}d (10 years)."]},
        )
    return lifetime


def user_named(username: str, field: str = "username") -> Any:
    """The user called ``username``; ``InvalidTokenRequest`` naming ``field`` when there is none."""
    found = (
        get_user_model().objects.filter(username=username).first() if len(username) <= MAX_USERNAME else None
    )
    if found is None:
        raise InvalidTokenRequest(f"There is no user {username!r}.", details={field: ["No such user."]})
    return found


def issue_for(username: str, name: str, lifetime: str | None, now: datetime) -> tuple[ApiToken, str]:
    """``issue`` for the user called ``username``, expiring ``lifetime`` (``30d``; None: never) after
    ``now``: what ``POST /api/v1/auth/tokens`` and ``manage.py api_token create`` ask for."""
    user = user_named(username)
    expires_at = now + parse_lifetime(lifetime) if lifetime is not None else None
    return issue(user, name, expires_at)


def live(username: str | None = None) -> QuerySet[ApiToken]:
    """Tokens not revoked (expired ones too: their name stays taken until they are revoked), by user, oldest
    first; of ``username`` only when given."""
    found = ApiToken.objects.select_related("user").filter(revoked_at=None)
    if username is not None:
        found = found.filter(user__username=username)
    return found.order_by("user__username", "created_at", "pk")


def revoke_named(user: Any, name: str) -> int:
    """Revoke ``user``'s live token called ``name`` (there is at most one); how many were revoked."""
    return ApiToken.objects.filter(user=user, name=name, revoked_at=None).update(revoked_at=timezone.now())


def usable(token: ApiToken, now: datetime) -> bool:
    return not token.revoked and not token.expired(now) and token.user.is_active


def mirror_drf_token(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    """``post_save`` of DRF's ``authtoken.Token`` (``manage.py user_role`` and older scripts still make
    them): the key becomes a named token too, so that it is found by the one hashed lookup, and gets a last
    use, an expiry and a revocation like any other."""
    if not created:
        return
    with contextlib.suppress(Conflict):  # this key or name is known already: nothing to add
        issue(instance.user, f"{DRF_NAME}-{instance.key[:PREFIX_LENGTH]}", key=instance.key)


def revoke_drf_token(sender: Any, instance: Any, **kwargs: Any) -> None:
    """``post_delete`` of a DRF token: its key stops working, as it did before named tokens."""
    ApiToken.objects.filter(key_hash=hash_key(instance.key), revoked_at=None).update(
        revoked_at=timezone.now()
    )
