"""Start-up checks of ``run_node``: each failure is one line naming the variable, the address and the way out.

Run before any child starts, so that a busy port or an unreachable server stops the node with a clear
message and a non-zero exit, instead of a gateway that restarts forever or a traceback per retry.
"""

from __future__ import annotations

import contextlib
import errno
import re
import socket
from urllib.parse import urlsplit

import psutil
import redis
from django.conf import settings
from django.db import DatabaseError, connections

from workflow_engine import redis_client
from workflow_engine.env import database_hosts

CONNECT_TIMEOUT = 5  # seconds: a server that takes longer to accept a connection is not ready for a node


class PreflightError(Exception):
    """A start-up condition that is not met; the message is the whole explanation, on one line."""


def check_port(variable: str, host: str, port: int) -> None:
    """Raise if ``host:port`` cannot be listened on, naming the process that holds it when visible."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        # as gunicorn and prometheus_client do: a port in TIME_WAIT is free
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise port_error(variable, host, port, exc) from None


def port_error(variable: str, host: str, port: int, exc: OSError) -> PreflightError:
    if exc.errno != errno.EADDRINUSE:
        return PreflightError(f"{variable}: cannot listen on {host}:{port}: {exc.strerror or exc}")
    return PreflightError(
        f"{variable}: {host}:{port} is already in use{holder(port)}; "
        f"stop it, or set {variable} to a free port"
    )


def holder(port: int) -> str:
    """`` by pid 123 (gunicorn)`` for the process listening on ``port``, or ``""`` when it is not visible
    (another user's process without the privileges to see it)."""
    with contextlib.suppress(psutil.Error, OSError):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return f" by pid {conn.pid} ({describe(conn.pid)})"
    return ""


def describe(pid: int) -> str:
    try:
        process = psutil.Process(pid)
        command = " ".join(" ".join(process.cmdline()[:4]).split()) or process.name()
    except psutil.Error:
        return "?"
    return command if len(command) <= 120 else command[:117] + "..."


def check_database() -> None:
    """Raise unless PostgreSQL at ``DATABASE_URL`` accepts a connection (``DATABASE_CONNECT_TIMEOUT``)."""
    db = settings.DATABASES["default"]
    where = database_hosts(db)  # every host of a multi-host DATABASE_URL
    connection = connections["default"]
    try:
        connection.ensure_connection()
    except DatabaseError as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, Exception) else exc
        raise PreflightError(
            f"DATABASE_URL: cannot connect to PostgreSQL at {where}: {reason(cause)}"
        ) from None
    finally:
        connection.close()


def check_redis() -> None:
    """Raise unless Redis at ``REDIS_URL`` answers a PING."""
    parts = urlsplit(settings.REDIS_URL)
    where = parts.path if parts.scheme == "unix" else f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
    if parts.scheme == "sentinel":  # several sentinels, then the master they name
        where = redis_client.safe_url()
    client = redis_client.connect(socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=CONNECT_TIMEOUT)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise PreflightError(f"REDIS_URL: cannot connect to Redis at {where}: {reason(exc)}") from None
    finally:
        client.close()


def reason(exc: Exception) -> str:
    """The gist of a driver's error, on one line (psycopg's spans several, with hints)."""
    text = " ".join(str(exc).split("\n")[0].split()) or type(exc).__name__
    # psycopg: 'connection failed: connection to server at "127.0.0.1", port 1 failed: Connection refused'
    # redis-py: 'Error 111 connecting to 127.0.0.1:1. Connection refused.'
    redis_style = re.match(r"Error \d+ connecting to \S+?\. (.+?)\.?$", text)
    if redis_style:
        return redis_style.group(1)
    return text.rsplit(" failed: ", 1)[-1] if " failed: " in text else text
