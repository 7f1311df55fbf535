"""A real PostgreSQL server in a data directory: initdb'ed once, started or reused, stopped or killed.

psycopg is imported lazily, only to check that the server accepts connections and to create a database.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import signal
import stat
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import psutil

from devservices.binaries import find_pg_bindir
from devservices.errors import DevServiceError
from devservices.privileges import PgRunner, grant_traverse, pg_runner
from devservices.processes import (
    MAX_SOCKET_PATH,
    START_TIMEOUT,
    STOP_TIMEOUT,
    PathLike,
    checked_addresses,
    file_lock,
    kill_all,
    owned_process,
    processes_in,
    remaining,
    run,
    tail,
    terminate,
)

log = logging.getLogger(__name__)

PG_SUPERUSER = "postgres"


class PostgresServer:
    """A PostgreSQL cluster in <data_dir>/postgres, listening on 127.0.0.1:<port>.

    ``listen_addresses`` adds interfaces (e.g. a veth address a network-namespace test connects through);
    it must include 127.0.0.1, which the readiness checks use.
    """

    def __init__(
        self,
        data_dir: PathLike,
        port: int,
        *,
        bindir: PathLike | None = None,
        listen_addresses: Sequence[str] = ("127.0.0.1",),
    ) -> None:
        # resolve(): compared with /proc/<pid>/cwd, which is always the real path.
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.listen_addresses = checked_addresses(listen_addresses)
        self.pgdata = self.data_dir / "postgres"
        self.log_path = self.data_dir / "postgres.log"
        self._bindir = Path(bindir) if bindir else None

    @property
    def bindir(self) -> Path:
        if self._bindir is None:
            self._bindir = find_pg_bindir()
        return self._bindir

    def url(self, database: str = "postgres", host: str = "127.0.0.1") -> str:
        return f"postgresql://{PG_SUPERUSER}@{host}:{self.port}/{quote(database, safe='')}"

    # ----------------------------------------------------------------------- state

    def _pidfile_lines(self) -> list[str]:
        try:
            return (self.pgdata / "postmaster.pid").read_text().splitlines()
        except OSError:
            return []

    def _process(self) -> psutil.Process | None:
        lines = self._pidfile_lines()
        if not lines or not lines[0].strip().isdigit():
            return None
        return owned_process(int(lines[0]), "postgres", self.pgdata)

    def pid(self) -> int | None:
        """PID of the running postmaster, or None."""
        proc = self._process()
        return proc.pid if proc else None

    def running_port(self) -> int | None:
        # postmaster.pid line 4 is the port (documented layout, stable since 9.x).
        lines = self._pidfile_lines()
        if self._process() is None or len(lines) < 4 or not lines[3].strip().isdigit():
            return None
        return int(lines[3])

    def is_running(self) -> bool:
        return self._process() is not None

    # ----------------------------------------------------------------------- lifecycle

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start (initdb'ing on first use) or reuse the server; returns once it accepts connections."""
        deadline = time.monotonic() + timeout
        with file_lock(self.data_dir / ".postgres.lock"):
            running_port = self.running_port()
            if running_port == self.port:
                log.info("postgres: reusing pid %s on port %s", self.pid(), self.port)
            else:
                if running_port is not None:
                    log.info("postgres: running on port %s, restarting on %s", running_port, self.port)
                self._stop_locked(STOP_TIMEOUT)  # also clears stragglers of a crashed server
                self._launch(deadline)
            self._wait_accepting(deadline)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Fast shutdown (disconnect clients, checkpoint); SIGKILL after `timeout`.  No-op if stopped."""
        with file_lock(self.data_dir / ".postgres.lock"):
            self._stop_locked(timeout)

    def kill(self) -> None:
        """SIGKILL the postmaster and all its processes, like a crash; the next start() recovers."""
        with file_lock(self.data_dir / ".postgres.lock"):
            kill_all(self._process(), "postgres", self.pgdata)

    def _stop_locked(self, timeout: float) -> None:
        proc = self._process()
        if proc is not None:
            log.info("postgres: stopping pid %s", proc.pid)
            # SIGINT is exactly what `pg_ctl stop -m fast` sends; signalling directly spares us running
            # pg_ctl as the unprivileged user just to deliver it.
            terminate(proc, signal.SIGINT, "postgres", self.pgdata, timeout)
        # Stragglers of an earlier crash would block the next start ("shared memory still in use").
        if processes_in("postgres", self.pgdata):
            kill_all(None, "postgres", self.pgdata)
        with contextlib.suppress(OSError):  # don't litter /tmp; fails harmlessly unless it is empty
            self._short_socket_dir().rmdir()

    def _launch(self, deadline: float) -> None:
        runner = pg_runner()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if runner.mode == "user":
            grant_traverse(self.data_dir)
            grant_traverse(self.bindir.parent)  # share/ and lib/ sit next to bin/
        self._initdb_if_needed(runner, deadline)
        self._chown_pgdata(runner)
        socket_dir = self._socket_dir(runner)
        self._write_conf(runner, socket_dir)
        self._remove_stale_locks(socket_dir)
        self.log_path.touch()
        runner.chown(self.log_path)  # pg_ctl's shell opens it as the server's user
        log.info("postgres: starting on 127.0.0.1:%s as %s", self.port, runner.describe())
        self._pg_ctl_start(runner, deadline)

    def _remove_stale_locks(self, socket_dir: Path) -> None:
        """Delete lock files left by a crashed/killed server (we hold the lock and it is not running).

        postgres itself only checks kill(pid, 0), which succeeds for a not-yet-reaped zombie or an
        unrelated process that reused the pid (common in containers), and then refuses to start.
        """
        stale = [self.pgdata / "postmaster.pid", socket_dir / f".s.PGSQL.{self.port}.lock"]
        for lock in stale:
            if lock.exists():
                log.info("postgres: removing stale %s", lock)
                lock.unlink(missing_ok=True)
        (socket_dir / f".s.PGSQL.{self.port}").unlink(missing_ok=True)

    # ----------------------------------------------------------------------- the cluster directory

    def _initdb_if_needed(self, runner: PgRunner, deadline: float) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            self._check_version()
            return
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise DevServiceError(f"{self.pgdata} is not empty but has no PG_VERSION; move it away")
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        runner.chown(self.pgdata)
        log.info("postgres: initdb %s (%s)", self.pgdata, self.bindir)
        argv: list[str | Path] = [
            self.bindir / "initdb",
            "-D",
            self.pgdata,
            f"--username={PG_SUPERUSER}",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
        ]
        try:
            result = runner.run(argv, timeout=remaining(deadline))
        except subprocess.TimeoutExpired as exc:
            raise DevServiceError(f"initdb timed out after {exc.timeout:.0f}s") from exc
        if result.returncode != 0:
            raise DevServiceError(
                f"initdb failed (exit {result.returncode}) running as {runner.describe()}:\n{result.stdout}"
            )

    def _check_version(self) -> None:
        # A cluster from another major version fails with a cryptic log line; say it plainly.
        cluster = (self.pgdata / "PG_VERSION").read_text().strip()
        out = run([self.bindir / "postgres", "--version"], timeout=30).stdout
        match = re.search(r"(\d+)(?:\.(\d+))?", out)
        if not match:
            return
        major = match.group(1) if int(match.group(1)) >= 10 else f"{match.group(1)}.{match.group(2)}"
        if major != cluster:
            raise DevServiceError(
                f"{self.pgdata} was created by PostgreSQL {cluster} but {self.bindir} is PostgreSQL {major}; "
                "delete the data directory or point WORKFLOW_PG_BINDIR at matching binaries"
            )

    def _chown_pgdata(self, runner: PgRunner) -> None:
        # Only differs when the root mode changed since initdb (userns <-> system user).
        if os.geteuid() != 0 or runner.mode == "direct" or self.pgdata.stat().st_uid == runner.uid:
            return
        log.info("postgres: chown -R %s to uid %s", self.pgdata, runner.uid)
        for root, dirs, files in os.walk(self.pgdata):
            for name in [*dirs, *files]:
                runner.chown(Path(root) / name)
        runner.chown(self.pgdata)

    def _short_socket_dir(self) -> Path:
        # Deep checkouts: fall back to a short, per-cluster directory.
        digest = hashlib.sha256(str(self.pgdata).encode()).hexdigest()[:12]
        return Path("/tmp") / f"wfe-pg-{digest}"

    def _socket_dir(self, runner: PgRunner) -> Path:
        if len(f"{self.pgdata}/.s.PGSQL.{self.port}") < MAX_SOCKET_PATH:
            return self.pgdata
        short = self._short_socket_dir()
        short.mkdir(mode=0o700, exist_ok=True)
        info = short.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid not in (os.geteuid(), runner.uid):
            raise DevServiceError(f"{short} exists but is not a directory owned by us")
        runner.chown(short)
        return short

    def _write_conf(self, runner: PgRunner, socket_dir: Path) -> None:
        # Settings live in an included file rewritten on every start, so port/socket changes apply and
        # no shell quoting of `pg_ctl -o` options is involved.
        settings = {
            "listen_addresses": "'" + ",".join(self.listen_addresses) + "'",
            "port": str(self.port),
            "unix_socket_directories": "'" + str(socket_dir).replace("'", "''") + "'",
            "max_connections": "200",
            "shared_buffers": "128MB",
            "fsync": "on",  # real durability: later tests kill the server and expect committed data
            "synchronous_commit": "on",
            "full_page_writes": "on",
            "logging_collector": "off",  # stderr goes to postgres.log via pg_ctl -l
            "log_line_prefix": "'%m [%p] %q%u@%d '",
        }
        # The file keeps its name so that clusters made before the package moved still include it.
        conf = self.pgdata / "workflow_engine.conf"
        conf.write_text(
            "# Managed by devservices; rewritten on every start.\n"
            + "".join(f"{key} = {value}\n" for key, value in settings.items())
        )
        runner.chown(conf)
        main_conf = self.pgdata / "postgresql.conf"
        include = "include_if_exists = 'workflow_engine.conf'"
        if include not in main_conf.read_text():
            with main_conf.open("a") as fh:
                fh.write(f"\n{include}\n")

    # ----------------------------------------------------------------------- starting and waiting

    def _pg_ctl_start(self, runner: PgRunner, deadline: float) -> None:
        seconds = int(remaining(deadline)) + 1
        argv: list[str | Path] = [
            self.bindir / "pg_ctl",
            "start",
            "-D",
            self.pgdata,
            "-l",
            self.log_path,
            "-w",
            "-t",
            str(seconds),
        ]
        try:
            result = runner.run(argv, timeout=seconds + 10)
        except subprocess.TimeoutExpired as exc:
            raise DevServiceError(f"pg_ctl start hung\n{tail(self.log_path)}") from exc
        if result.returncode != 0:
            raise DevServiceError(
                f"pg_ctl start failed (exit {result.returncode}): {result.stdout.strip()}\n"
                + tail(self.log_path)
            )

    def _wait_accepting(self, deadline: float) -> None:
        import psycopg  # lazily: keeps this package importable without the project's dependencies

        while True:
            try:
                with psycopg.connect(self.url(), connect_timeout=2, autocommit=True) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                problem = str(exc).strip()
            if not self.is_running():
                raise DevServiceError(f"postgres exited during startup: {problem}\n{tail(self.log_path)}")
            if time.monotonic() >= deadline:
                raise DevServiceError(f"postgres not accepting connections: {problem}\n{tail(self.log_path)}")
            time.sleep(0.1)

    def ensure_database(self, name: str) -> None:
        """CREATE DATABASE `name` unless it exists."""
        import psycopg  # lazily, as in _wait_accepting
        from psycopg import errors, sql

        with psycopg.connect(self.url(), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                return
            log.info("postgres: CREATE DATABASE %s", name)
            # A concurrent `up` may win the race; both errors mean "it exists now".
            with contextlib.suppress(errors.DuplicateDatabase, errors.UniqueViolation):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
