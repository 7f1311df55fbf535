"""A streaming replica of a ``PostgresServer``, made with ``pg_basebackup`` from the same binaries, and its
promotion: what a PostgreSQL failover test (and the fault campaign) needs.

The replica is an ordinary ``PostgresServer`` on its own data directory and port: ``pg_basebackup -R`` writes
``standby.signal`` and ``primary_conninfo``, so ``start()`` brings it up as a hot standby streaming from the
primary. Programs run as the primary's do (``privileges.pg_runner``: as root, in a user namespace or as a
system user), so the copy is owned by the uid the server runs as.
"""

from __future__ import annotations

import logging
import re
import subprocess
import time
from pathlib import Path

from devservices.errors import DevServiceError
from devservices.postgres import PG_SUPERUSER, PostgresServer
from devservices.privileges import grant_traverse, pg_runner
from devservices.processes import START_TIMEOUT, PathLike

log = logging.getLogger(__name__)
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def make_replica(
    primary: PostgresServer, data_dir: PathLike, port: int, *, name: str = "replica"
) -> PostgresServer:
    """A hot standby of the running ``primary`` in ``<data_dir>/postgres``, started and streaming.

    ``name`` is its ``application_name`` on the primary (``pg_stat_replication``), the name
    ``synchronous_standby_names`` refers to (``make_synchronous``)."""
    if not _NAME.fullmatch(name):
        # it goes into a conninfo string and synchronous_standby_names unquoted
        raise DevServiceError(f"replica name {name!r}: expected lower-case letters, digits and _")
    replica = PostgresServer(data_dir, port, bindir=primary.bindir)
    if replica.pgdata.exists() and any(replica.pgdata.iterdir()):
        raise DevServiceError(f"{replica.pgdata} is not empty; a replica is made into an empty directory")
    runner = pg_runner()
    replica.data_dir.mkdir(parents=True, exist_ok=True)
    if runner.mode == "user":
        grant_traverse(replica.data_dir)
    replica.pgdata.mkdir(mode=0o700, exist_ok=True)
    runner.chown(replica.pgdata)
    argv: list[str | Path] = [
        primary.bindir / "pg_basebackup",
        "--pgdata",
        replica.pgdata,
        # application_name goes into the primary_conninfo -R writes, so the standby streams under this name
        f"--dbname=host=127.0.0.1 port={primary.port} user={PG_SUPERUSER} application_name={name}",
        "--write-recovery-conf",
        "--wal-method=stream",
        "--checkpoint=fast",
    ]
    log.info("postgres: pg_basebackup of :%s into %s", primary.port, replica.pgdata)
    try:
        result = runner.run(argv, timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        raise DevServiceError(f"pg_basebackup timed out after {exc.timeout:.0f}s") from exc
    if result.returncode != 0:
        raise DevServiceError(f"pg_basebackup failed (exit {result.returncode}):\n{result.stdout}")
    replica.start()
    wait_streaming(primary, name)
    return replica


def wait_streaming(primary: PostgresServer, name: str, timeout: float = START_TIMEOUT) -> None:
    """Return once the primary shows the standby ``name`` streaming."""
    deadline = time.monotonic() + timeout
    while _replication_state(primary, name) != "streaming":
        if time.monotonic() > deadline:
            raise DevServiceError(
                f"standby {name!r} is not streaming from :{primary.port} after {timeout:.0f}s"
            )
        time.sleep(0.1)


def make_synchronous(primary: PostgresServer, name: str) -> None:
    """Make every commit on ``primary`` wait until the standby ``name`` has flushed it (``synchronous_commit``
    is ``on``): an acknowledged commit is then on both servers. Set with ALTER SYSTEM on the primary only,
    after the base backup, so the standby, once promoted, does not wait for a standby of its own."""
    import psycopg  # lazily, as in postgres.py

    with psycopg.connect(primary.url(), autocommit=True) as conn:
        conn.execute(f"ALTER SYSTEM SET synchronous_standby_names = '\"{name}\"'")
        conn.execute("SELECT pg_reload_conf()")
    deadline = time.monotonic() + START_TIMEOUT
    while _sync_state(primary, name) != "sync":
        if time.monotonic() > deadline:
            raise DevServiceError(f"standby {name!r} did not become synchronous on :{primary.port}")
        time.sleep(0.1)


def promote(replica: PostgresServer, timeout: float = START_TIMEOUT) -> None:
    """``pg_ctl promote``: the standby ends recovery and accepts writes; returns once it does."""
    argv: list[str | Path] = [
        replica.bindir / "pg_ctl",
        "promote",
        "-D",
        replica.pgdata,
        "-w",
        "-t",
        str(int(timeout)),
    ]
    result = pg_runner().run(argv, timeout=timeout + 10)
    if result.returncode != 0:
        raise DevServiceError(f"pg_ctl promote failed (exit {result.returncode}): {result.stdout.strip()}")


def is_primary(server: PostgresServer) -> bool:
    import psycopg  # lazily, as in postgres.py

    with psycopg.connect(server.url(), connect_timeout=5, autocommit=True) as conn:
        row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    return row is not None and not row[0]


_REPLICATION_QUERIES = {
    "state": "SELECT state FROM pg_stat_replication WHERE application_name = %s",
    "sync_state": "SELECT sync_state FROM pg_stat_replication WHERE application_name = %s",
}


def _replication_state(primary: PostgresServer, name: str) -> str | None:
    return _replication_row(primary, name, "state")


def _sync_state(primary: PostgresServer, name: str) -> str | None:
    return _replication_row(primary, name, "sync_state")


def _replication_row(primary: PostgresServer, name: str, column: str) -> str | None:
    """The standby's ``column`` in ``pg_stat_replication``; None while it is absent or the primary is down."""
    import psycopg  # lazily, as in postgres.py

    try:
        with psycopg.connect(primary.url(), connect_timeout=5, autocommit=True) as conn:
            row = conn.execute(_REPLICATION_QUERIES[column], (name,)).fetchone()
    except psycopg.OperationalError:
        return None
    return str(row[0]) if row else None
