"""Strict, typed readers of environment variables.

Every reader raises ``ImproperlyConfigured`` naming the variable, the value it found and what it accepts, so a
bad deployment fails at start with a message an operator can act on. Secrets may also come from ``NAME_FILE``
(Docker and Kubernetes secrets).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlparse, urlsplit

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


# libpq's values (PostgreSQL 14+); "read-write" and "primary" are the ones a writer may fail over with.
TARGET_SESSION_ATTRS = ("any", "read-write", "read-only", "primary", "standby", "prefer-standby")
_WRITABLE_SESSIONS = ("read-write", "primary")
_DATABASE_URL_FORM = (
    "postgresql://user:password@host:port/database, or host1:port1,host2:port2 "
    "with ?target_session_attrs=read-write"
)


def database_from_url(url: str, *, name: str = "DATABASE_URL") -> dict[str, object]:
    """Django's DATABASES entry for a ``postgresql://user:password@host:port/dbname`` URL.

    Several hosts (``host1:5432,host2:5433``) are libpq's multi-host form: HOST and PORT become its
    comma-separated lists, and libpq tries the hosts in order. A primary and its standbys may be listed, so
    ``target_session_attrs=read-write`` (or ``primary``) is required with them: without it a process could
    settle on a standby and fail every write; with it, after a failover, each reconnect finds the new primary.
    """
    parsed = urlsplit(url)
    if parsed.scheme not in ("postgres", "postgresql") or not parsed.path.strip("/"):
        raise ImproperlyConfigured(f"{name}={_redacted(url)!r}: expected {_DATABASE_URL_FORM}")
    userinfo, _, hostlist = parsed.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    hosts, ports = _hosts_and_ports(hostlist, url, name)
    options = _options(parsed.query, url, name)
    session = options.get("target_session_attrs", "any")
    if len(hosts) > 1 and session not in _WRITABLE_SESSIONS:
        raise ImproperlyConfigured(
            f"{name}={_redacted(url)!r}: {len(hosts)} hosts need ?target_session_attrs=read-write "
            "(or primary), or a process could connect to a standby and fail every write"
        )
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parsed.path.lstrip("/")),
        "USER": unquote(user),
        "PASSWORD": unquote(password),
        "HOST": ",".join(hosts),
        # one entry per host (libpq's rule); an empty one is the default port
        "PORT": ",".join(ports) if any(ports) else "",
        # libpq parameters in the query string (sslmode, sslrootcert, target_session_attrs ...)
        "OPTIONS": options,
    }


def _hosts_and_ports(hostlist: str, url: str, name: str) -> tuple[list[str], list[str]]:
    """``(["h1", "h2"], ["5432", ""])`` from ``h1:5432,h2``; ``[::1]:5432`` for IPv6; none: the socket."""
    if not hostlist:
        return [], []
    hosts, ports = [], []
    entries = hostlist.split(",")
    for entry in entries:
        match = _HOST_PORT.match(entry)
        # an empty host alone is libpq's Unix socket; in a list it is a typo ("h1,,h2", a trailing comma)
        if match is None or (len(entries) > 1 and not (match.group("v6") or match.group("host"))):
            raise ImproperlyConfigured(
                f"{name}={_redacted(url)!r}: host {entry!r} is empty or not host[:port]"
            )
        port = match.group("port") or ""
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise ImproperlyConfigured(
                f"{name}={_redacted(url)!r}: the port {port!r} of {entry!r} is not a number 1-65535"
            )
        hosts.append(unquote(match.group("v6") or match.group("host")))
        ports.append(port)
    return hosts, ports


_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]/@]*))(?::(?P<port>[^:]*))?$")


def _options(query: str, url: str, name: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ImproperlyConfigured(
            f"{name}={_redacted(url)!r}: the query string is not key=value&key=value"
        ) from None
    options: dict[str, str] = {}
    for key, value in pairs:
        if key in options:
            raise ImproperlyConfigured(f"{name}={_redacted(url)!r}: {key} is given twice")
        options[key] = value
    session = options.get("target_session_attrs")
    if session is not None and session not in TARGET_SESSION_ATTRS:
        raise ImproperlyConfigured(
            f"{name}={_redacted(url)!r}: target_session_attrs={session!r} is not one of "
            + ", ".join(TARGET_SESSION_ATTRS)
        )
    return options


def _redacted(url: str) -> str:
    """The URL with its password replaced by ``***``: error messages end up in logs."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, hosts = rest.partition("@")
    if not (sep and at and ":" in userinfo.split("/")[0]):
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{hosts}"


def database_hosts(db: dict[str, object]) -> str:
    """``h1:5432, h2:5433`` for a DATABASES entry (``localhost:5432`` when it names none): for messages."""
    hosts = str(db.get("HOST") or "localhost").split(",")
    ports = str(db.get("PORT") or "").split(",")
    ports = ports if len(ports) == len(hosts) else ports[:1] * len(hosts)
    return ", ".join(f"{host}:{port or 5432}" for host, port in zip(hosts, ports, strict=True))


REDIS_URL_FORMS = (
    "redis://[[user]:password@]host:port/db, rediss://..., unix:///path/to/socket?db=N, or "
    "sentinel://[[user]:password@]host1:26379,host2:26379/db?service_name=mymaster"
)


def check_redis_url(url: str, *, name: str = "REDIS_URL") -> str:
    parsed = urlparse(url)
    if parsed.scheme == "sentinel":
        parse_sentinel_url(url, name=name)
        return url
    if parsed.scheme not in ("redis", "rediss", "unix") or (parsed.scheme != "unix" and not parsed.hostname):
        raise ImproperlyConfigured(f"{name}={safe_redis_url(url)!r}: expected {REDIS_URL_FORMS}")
    if parsed.scheme != "unix":
        _check_port(name, url, parsed.netloc.rpartition("@")[2])
    return url


@dataclass(frozen=True)
class RedisSentinel:
    """A Redis behind Sentinel: the sentinels to ask, the name of the master they watch, and how to talk to
    the master (``db``, ``username``, ``password``) and to the sentinels (``sentinel_password``)."""

    sentinels: tuple[tuple[str, int], ...]
    service_name: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None

    def kombu_url(self) -> str:
        """The broker URL in kombu's spelling: one ``sentinel://`` URL per sentinel, joined by ``;``
        (the master's credentials and db on each; the master's name goes in the transport options)."""
        auth = ""
        if self.password is not None or self.username is not None:
            auth = f"{quote(self.username or '', safe='')}:{quote(self.password or '', safe='')}@"
        return ";".join(f"sentinel://{auth}{_host(host)}:{port}/{self.db}" for host, port in self.sentinels)

    def kombu_options(self) -> dict[str, object]:
        """Transport options kombu's Sentinel channel needs besides its URL."""
        options: dict[str, object] = {"master_name": self.service_name}
        if self.sentinel_password is not None:
            options["sentinel_kwargs"] = {"password": self.sentinel_password}
        return options


_SENTINEL_QUERY = ("service_name", "sentinel_password")


def parse_sentinel_url(url: str, *, name: str = "REDIS_URL") -> RedisSentinel:
    """``sentinel://[[user]:password@]host1:26379[,host2:26379...][/db]?service_name=NAME[&sentinel_password=P]``.

    One URL names every sentinel (comma-separated; the port defaults to 26379), the master's name
    (``service_name``, as redis-py's ``Sentinel.master_for`` calls it), the database, and the master's
    credentials; ``sentinel_password`` is for sentinels that require a password of their own."""
    shown = safe_redis_url(url)
    parsed = urlparse(url)
    if parsed.scheme != "sentinel":
        raise ImproperlyConfigured(f"{name}={shown!r}: expected {REDIS_URL_FORMS}")
    userinfo, _, hosts = parsed.netloc.rpartition("@")
    sentinels = tuple(_sentinel_address(name, shown, item) for item in hosts.split(","))
    try:
        query = parse_qsl(parsed.query, keep_blank_values=True, strict_parsing=bool(parsed.query))
    except ValueError:
        raise ImproperlyConfigured(f"{name}={shown!r}: the query string is malformed") from None
    params = dict(query)
    unknown = sorted(set(params) - set(_SENTINEL_QUERY))
    if unknown:
        raise ImproperlyConfigured(
            f"{name}={shown!r}: unknown parameter(s) {', '.join(unknown)}; "
            f"accepted: {', '.join(_SENTINEL_QUERY)}"
        )
    if not params.get("service_name"):
        raise ImproperlyConfigured(
            f"{name}={shown!r}: a sentinel URL needs the master's name, e.g. ?service_name=mymaster"
        )
    db_text = parsed.path.strip("/") or "0"
    if not db_text.isdigit():
        raise ImproperlyConfigured(f"{name}={shown!r}: the database {db_text!r} is not a whole number")
    username, has_password, password = userinfo.partition(":")
    return RedisSentinel(
        sentinels=sentinels,
        service_name=params["service_name"],
        db=int(db_text),
        username=unquote(username) or None,
        password=unquote(password) if has_password else None,
        sentinel_password=params.get("sentinel_password"),
    )


def _sentinel_address(name: str, shown: str, item: str) -> tuple[str, int]:
    host = _split_host_port(item.strip())[0]
    if not host:
        raise ImproperlyConfigured(
            f"{name}={shown!r}: a sentinel address is empty (expected host:port,host:port)"
        )
    return host, _check_port(name, shown, item.strip(), default=26379)


def _split_host_port(text: str) -> tuple[str, str]:
    if text.startswith("["):  # [::1]:26379
        host, _, rest = text[1:].partition("]")
        return host, rest.removeprefix(":")
    host, _, port = text.partition(":")
    return host, port


def _check_port(name: str, shown: str, hostport: str, default: int = 6379) -> int:
    port = _split_host_port(hostport)[1]
    if not port:
        return default
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ImproperlyConfigured(
            f"{name}={safe_redis_url(shown)!r}: the port {port!r} is not a number from 1 to 65535"
        )
    return int(port)


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def safe_redis_url(url: str) -> str:
    """``url`` with its password (and a sentinel password) masked, for error messages."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, hosts = rest.rpartition("@")
    if at and ":" in userinfo:
        rest = userinfo.split(":", 1)[0] + ":***@" + hosts
    return re.sub(r"(sentinel_password=)[^&]*", r"\1***", scheme + sep + rest)


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
