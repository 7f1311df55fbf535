"""PostgreSQL and Redis together in one data directory: what ``./run``, ``./test`` and the CLI start.

``<data_dir>/services.json`` records the ports and URLs of the last ``start_all`` so that ``stop_all`` and
``status`` know what to look at.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from devservices.errors import DevServiceError
from devservices.postgres import PostgresServer
from devservices.processes import STOP_TIMEOUT, PathLike
from devservices.redis import RedisServer

STATE_FILE = "services.json"


def _state_path(data_dir: PathLike) -> Path:
    return Path(data_dir).resolve() / STATE_FILE


def read_state(data_dir: PathLike) -> dict[str, Any]:
    """Contents of <data_dir>/services.json ({} if absent or unreadable)."""
    try:
        state = json.loads(_state_path(data_dir).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _write_state(data_dir: PathLike, state: dict[str, Any]) -> None:
    path = _state_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(path)  # atomic: a concurrent reader never sees half a file


def start_all(data_dir: PathLike, pg_port: int, redis_port: int, database: str) -> tuple[str, str]:
    """Start or reuse PostgreSQL (creating `database`) and Redis; returns (database_url, redis_url)."""
    if pg_port == redis_port:
        raise DevServiceError(f"PostgreSQL and Redis cannot share port {pg_port}")
    postgres, redis = PostgresServer(data_dir, pg_port), RedisServer(data_dir, redis_port)
    database_url, redis_url = postgres.url(database), redis.url()
    # Recorded before starting so that `down` can clean up even after a failed `up`.
    _write_state(
        data_dir,
        {
            "postgres": {"port": pg_port, "database": database, "url": database_url},
            "redis": {"port": redis_port, "url": redis_url},
        },
    )
    redis.start()  # instant (daemonizes); PostgreSQL is the slow one
    postgres.start()
    postgres.ensure_database(database)
    return database_url, redis_url


def _servers(data_dir: PathLike) -> tuple[PostgresServer, RedisServer]:
    # Stopping only needs the pid files; ports come from services.json for URLs/status.
    state = read_state(data_dir)
    return (
        PostgresServer(data_dir, int(state.get("postgres", {}).get("port", 0))),
        RedisServer(data_dir, int(state.get("redis", {}).get("port", 0))),
    )


def stop_all(data_dir: PathLike, timeout: float = STOP_TIMEOUT) -> None:
    """Stop both servers of `data_dir`; fine if they are not running or never existed."""
    if not Path(data_dir).exists():
        return
    postgres, redis = _servers(data_dir)
    postgres.stop(timeout)
    redis.stop(timeout)


def status(data_dir: PathLike) -> dict[str, dict[str, Any]]:
    """{"postgres": {...}, "redis": {...}} with running, pid, port and url of each server."""
    postgres, redis = _servers(data_dir)
    database = read_state(data_dir).get("postgres", {}).get("database", "postgres")
    return {
        "postgres": {
            "running": postgres.is_running(),
            "pid": postgres.pid(),
            "port": postgres.running_port() or postgres.port,
            "url": postgres.url(database),
        },
        "redis": {"running": redis.is_running(), "pid": redis.pid(), "port": redis.port, "url": redis.url()},
    }
