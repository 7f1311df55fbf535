"""Who is calling: an API token (``Authorization: Bearer <key>`` or ``Token <key>``) or a browser session.

``ApiTokenAuthentication`` comes first in ``REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]``, then DRF's
``SessionAuthentication``, which enforces CSRF on unsafe methods of session-authenticated requests. A request
with an ``Authorization`` header is judged on it alone: a malformed header, an unknown, revoked or expired
token is a 401 that says which, never a silent fall-through to "credentials were not provided". Failures count
against the client IP (``throttles.counting_failures``).

Keys of DRF's ``rest_framework.authtoken`` (the tokens before named ones, still issued by ``user_role``) are
named tokens too: migration ``0002_import_drf_tokens`` moved the existing ones over, and each new one is
mirrored when it is saved (``tokens.mirror_drf_token``). A row written to ``authtoken_token`` by SQL, past
the signal, is still looked up there when no named token has the key (one query more, only on a miss).
"""

from __future__ import annotations

import re
from typing import Any

from django.apps import apps as django_apps
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, SessionAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from apps.accounts import tokens
from apps.accounts.models import ApiToken
from workflow_engine.api import throttles

SCHEMES = ("bearer", "token")
HINT = "use 'Authorization: Bearer <token>' or 'Authorization: Token <token>'"
# visible ASCII only: anything else is no key of ours, and NUL could not even be looked up in PostgreSQL
_KEY = re.compile(r"^[\x21-\x7e]{1,256}$")


def key_from(header: bytes) -> str:
    """The key of an ``Authorization`` header of scheme Bearer or Token; 401 with the hint otherwise."""
    parts = header.split()
    scheme = parts[0].decode("latin-1").lower() if parts else ""
    if scheme not in SCHEMES:
        raise AuthenticationFailed(f"Unsupported Authorization scheme {scheme[:20]!r}: {HINT}.")
    if len(parts) != 2:
        problem = "no token after the scheme" if len(parts) == 1 else "spaces in the token"
        raise AuthenticationFailed(f"Malformed Authorization header ({problem}): {HINT}.")
    key = parts[1].decode("latin-1")
    if not _KEY.match(key):
        raise AuthenticationFailed(f"Malformed token (only visible ASCII characters): {HINT}.")
    return key


def check_usable(token: ApiToken, now: Any) -> None:
    if token.revoked_at is not None:
        raise AuthenticationFailed(f"Token revoked at {token.revoked_at.isoformat()}.")
    if token.expires_at is not None and token.expired(now):
        raise AuthenticationFailed(f"Token expired at {token.expires_at.isoformat()}.")
    if not token.user.is_active:
        raise AuthenticationFailed("User inactive or deleted.")


def legacy_user(key: str) -> Any:
    """The active user of a DRF ``authtoken`` key, or None (also when that app is not installed)."""
    if not django_apps.is_installed("rest_framework.authtoken"):
        return None
    found = django_apps.get_model("authtoken", "Token").objects.select_related("user").filter(key=key).first()
    return found.user if found is not None and found.user.is_active else None


class ApiTokenAuthentication(BaseAuthentication):
    """Named API tokens under the Bearer and Token schemes; ``request.auth`` is the ``ApiToken``."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = get_authorization_header(request)
        if not header:
            return None  # maybe a session; else DRF answers 401 "not provided"
        return throttles.counting_failures(request, lambda: self.authenticate_header_value(header))

    def authenticate_header_value(self, header: bytes) -> tuple[Any, Any]:
        key = key_from(header)
        token = tokens.find(key)
        if token is None:
            user = legacy_user(key)
            if user is None:
                raise AuthenticationFailed("Invalid token: no API token has this key.")
            return user, None
        now = timezone.now()
        check_usable(token, now)
        tokens.touch(token, now)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class CsrfCheck(SessionAuthentication):
    """DRF's CSRF check of session requests, for routes that must check it with no session yet (login)."""

    def check(self, request: Request) -> None:
        self.enforce_csrf(request)
