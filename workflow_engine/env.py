"""Strict, typed readers of environment variables.

Every reader raises ``ImproperlyConfigured`` naming the variable, the value it found and what it accepts, so a
bad deployment fails at start with a message an operator can act on. Secrets may also come from ``NAME_FILE``
(Docker and Kubernetes secrets).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else None


def env_str(name: str, default: str) -> str:
    return _raw(name) or default


def env_secret(name: str, default: str | None = None) -> str | None:
    """``NAME`` or the content of the file named by ``NAME_FILE`` (trailing newline removed)."""
    path = _raw(f"{name}_FILE")
    if path is None:
        return _raw(name) or default
    try:
        return Path(path).read_text().rstrip("\n")
    except OSError as exc:
        raise ImproperlyConfigured(f"{name}_FILE={path}: cannot read the file ({exc.strerror})") from exc


def env_int(name: str, default: int, *, low: int | None = None, high: int | None = None) -> int:
    raw = _raw(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a whole number") from None
    _check_range(name, value, low, high)
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = _raw(name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r}: expected one of true/false, yes/no, on/off, 1/0")


def env_list(name: str, default: list[str]) -> list[str]:
    raw = _raw(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(name, default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r}: expected one of {', '.join(choices)}")
    return value


def parse_duration(text: str | float | int, *, name: str = "duration") -> float:
    """Seconds from ``30s``, ``5m``, ``1h``, ``1d``, ``250ms`` or a bare number of seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    match = _DURATION.match(str(text))
    if match is None:
        raise ImproperlyConfigured(f"{name}={text!r}: expected a duration such as 250ms, 30s, 5m, 1h or 1d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def database_from_url(url: str, *, name: str = "DATABASE_URL") -> dict[str, object]:
    """Django's DATABASES entry for a ``postgresql://user:password@host:port/dbname`` URL."""
    parsed = urlparse(url)
    if parsed.scheme not in ("postgres", "postgresql") or not parsed.path.strip("/"):
        raise ImproperlyConfigured(f"{name}={url!r}: expected postgresql://user:password@host:port/database")
    try:
        port = parsed.port
    except ValueError:
        raise ImproperlyConfigured(f"{name}={url!r}: the port is not a number") from None
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parsed.path.lstrip("/")),
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": parsed.hostname or "",
        "PORT": str(port or ""),
        # libpq parameters in the query string (sslmode, sslrootcert, target_session_attrs ...)
        "OPTIONS": dict(parse_qsl(parsed.query)),
    }


def check_redis_url(url: str, *, name: str = "REDIS_URL") -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("redis", "rediss", "unix") or (parsed.scheme != "unix" and not parsed.hostname):
        raise ImproperlyConfigured(f"{name}={url!r}: expected redis://host:port/db")
    return url


def _check_range(name: str, value: int | float, low: int | float | None, high: int | float | None) -> None:
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"between {low} and {high}" if low is not None and high is not None else f">= {low}"
        raise ImproperlyConfigured(f"{name}={value}: must be {bounds}")


_CONNECTION_SCHEMES = ("postgres", "postgresql", "mysql", "mariadb")


def connections_from_env(prefix: str) -> dict[str, str]:
    """``{name: url}`` from ``<PREFIX><NAME>=url`` (or ``<PREFIX><NAME>_FILE``); names are lower-cased."""
    found: dict[str, str] = {}
    for key in sorted(os.environ):
        if not key.startswith(prefix):
            continue
        name = key[len(prefix) :].removesuffix("_FILE")
        url = env_secret(prefix + name)
        if not name or url is None:
            continue
        scheme = urlparse(url).scheme
        if scheme not in _CONNECTION_SCHEMES:
            raise ImproperlyConfigured(
                f"{prefix}{name}: scheme {scheme!r} is not one of {', '.join(_CONNECTION_SCHEMES)}"
            )
        found[name.lower()] = url
    return found


RATE_PERIODS = ("s", "sec", "second", "m", "min", "minute", "h", "hour", "d", "day")


def env_rate(name: str, default: str) -> str | None:
    """A rate limit in DRF's form, ``600/min`` (per s, min, hour or day); ``0`` or ``off``: no limit."""
    value = env_str(name, default).strip().lower()
    if value in ("0", "off"):
        return None
    number, _, period = value.partition("/")
    if not number.isdigit() or int(number) < 1 or period not in RATE_PERIODS:
        raise ImproperlyConfigured(
            f"{name}={value!r}: expected a rate such as 600/min (per s, min, hour or day), or off"
        )
    return value


# Keys shipped in this repository's examples (deploy/systemd/env.example, deploy/k8s/secret.example.yaml,
# deploy/docker/docker-compose.yml) and the usual stand-ins: public, so anyone could sign sessions with them.
PLACEHOLDER_SECRETS = (
    "change-me-to-a-long-random-string",
    "dev-only-insecure-key-do-not-use-in-production",  # the dev and test profiles' key (settings.py)
)
SECRET_KEY_MIN_LENGTH = 50  # Django's own bar in `check --deploy` (security.W009)
MAKE_A_SECRET_KEY = "python3 -c 'import secrets; print(secrets.token_urlsafe(64))'"


def check_secret_key(value: str, *, name: str = "SECRET_KEY") -> str:
    """Refuse a key production must not run with: a placeholder of the examples, one with "change-me" in
    it, or one too short to be random. The message never echoes the key."""
    lowered = value.strip().lower()
    stand_in = any(word in lowered for word in ("change-me", "changeme", "replace-me"))
    if lowered in PLACEHOLDER_SECRETS or stand_in or lowered.startswith("django-insecure-"):
        problem = "is a placeholder from the examples"
    elif len(value) < SECRET_KEY_MIN_LENGTH:
        problem = f"has {len(value)} characters; production needs at least {SECRET_KEY_MIN_LENGTH}"
    else:
        return value
    raise ImproperlyConfigured(
        f"{name} {problem} (WORKFLOW_PROFILE=production refuses it). Make a random one with "
        f"`{MAKE_A_SECRET_KEY}` and set it in {name} or in a file named by {name}_FILE, "
        "the same on every gateway."
    )
