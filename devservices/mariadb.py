"""A real MariaDB server in a data directory, for the tests of the ``mysql.*`` nodes.

It runs from the system's binaries (``apt-get install mariadb-server``, or ``WORKFLOW_MARIADB_BINDIR``);
``python -m devservices up`` leaves it alone. PyMySQL is imported lazily, only to check that the server
accepts connections and to create a database.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import sys
import time
from pathlib import Path
from urllib.parse import quote

import psutil

from devservices.binaries import find_mariadb
from devservices.errors import DevServiceError
from devservices.processes import (
    MAX_SOCKET_PATH,
    START_TIMEOUT,
    STOP_TIMEOUT,
    PathLike,
    PidfileServer,
    file_lock,
    kill_all,
    listen_ports,
    pid_alive,
    pidfile_process,
    processes_in,
    run,
    tail,
    terminate,
)

log = logging.getLogger(__name__)

MARIADB_SUPERUSER = "root"

# Run as `python -I -S -c _DAEMONIZE <log> <program> <args...>`: forks, prints the child's pid and exits; the
# child leaves our session, sends its output to <log> and execs the program. mariadbd does not daemonize
# itself, and a child we never wait for would warn as a still-running subprocess (or linger as a zombie).
_DAEMONIZE = """
import os, sys
pid = os.fork()
if pid:
    print(pid)
    sys.exit(0)
os.setsid()
log = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
null = os.open(os.devnull, os.O_RDONLY)
os.dup2(null, 0)
os.dup2(log, 1)
os.dup2(log, 2)
os.execv(sys.argv[2], sys.argv[2:])
"""


class MariaDBServer(PidfileServer):
    """A MariaDB server in <data_dir>/mariadb, listening on 127.0.0.1:<port>; ``root`` has no password.

    mariadbd refuses to run as root unless told ``--user=root``; that is what it is told when we are root,
    rather than switching to the ``mysql`` user, because the data directory may sit below a 0700 directory
    (pytest's tmp, /root) that another user cannot reach, and the server only listens on loopback.
    ``--no-defaults``: the machine's /etc/mysql configuration never applies.
    """

    def __init__(self, data_dir: PathLike, port: int, *, bindir: PathLike | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()  # compared with /proc/<pid>/cwd, always a real path
        self.port = port
        self.datadir = self.data_dir / "mariadb"
        self.pidfile = self.data_dir / "mariadb.pid"
        self.log_path = self.data_dir / "mariadb.log"
        self._bindir = Path(bindir) if bindir else None

    def binaries(self) -> tuple[Path, Path]:
        """(mariadbd, mariadb-install-db)."""
        if self._bindir is not None:
            return self._bindir / "mariadbd", self._bindir / "mariadb-install-db"
        return find_mariadb()

    def url(self, database: str = "mysql", host: str = "127.0.0.1") -> str:
        return f"mysql://{MARIADB_SUPERUSER}@{host}:{self.port}/{quote(database, safe='')}"

    def _process(self) -> psutil.Process | None:
        return pidfile_process(self.pidfile, "mariadbd", self.datadir)

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start (installing the system tables on first use) or reuse the server; returns once it accepts
        connections."""
        deadline = time.monotonic() + timeout
        with file_lock(self.data_dir / ".mariadb.lock"):
            proc = self._process()
            if proc is not None and self.port in listen_ports(proc):
                log.info("mariadb: reusing pid %s on port %s", proc.pid, self.port)
                return
            self._stop_locked(STOP_TIMEOUT)
            pid = self._launch()
            self._wait_ready(pid, deadline)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Normal shutdown (SIGTERM); SIGKILL after ``timeout``. No-op if stopped."""
        with file_lock(self.data_dir / ".mariadb.lock"):
            self._stop_locked(timeout)

    def kill(self) -> None:
        """SIGKILL, like a crash; InnoDB recovers on the next start."""
        with file_lock(self.data_dir / ".mariadb.lock"):
            kill_all(self._process(), "mariadbd", self.datadir)

    def ensure_database(self, name: str) -> None:
        """CREATE DATABASE ``name`` unless it exists."""
        import pymysql  # lazily: keeps this package importable without the project's dependencies

        conn = pymysql.connect(host="127.0.0.1", port=self.port, user=MARIADB_SUPERUSER, connect_timeout=5)
        try:
            with conn.cursor() as cur:
                cur.execute("CREATE DATABASE IF NOT EXISTS `" + name.replace("`", "``") + "`")
        finally:
            conn.close()

    def _stop_locked(self, timeout: float) -> None:
        proc = self._process()
        if proc is not None:
            log.info("mariadb: stopping pid %s", proc.pid)
            terminate(proc, signal.SIGTERM, "mariadbd", self.datadir, timeout)
        if processes_in("mariadbd", self.datadir):  # a crashed server's leftovers hold the InnoDB files
            kill_all(None, "mariadbd", self.datadir)

    def _user_options(self) -> list[str]:
        return ["--user=root"] if os.geteuid() == 0 else []

    def _socket_path(self) -> Path:
        # Unix socket paths are limited to 108 bytes; deep data directories get one in /tmp.
        inside = self.data_dir / "mariadb.sock"
        if len(str(inside)) < MAX_SOCKET_PATH:
            return inside
        digest = hashlib.sha256(str(self.datadir).encode()).hexdigest()[:12]
        return Path("/tmp") / f"wfe-mariadb-{digest}.sock"

    def _install_if_needed(self, install: Path) -> None:
        if (self.datadir / "mysql").is_dir():
            return
        if self.datadir.exists() and any(self.datadir.iterdir()):
            raise DevServiceError(
                f"{self.datadir} is not empty but has no mysql/ system tables; move it away"
            )
        log.info("mariadb: installing system tables in %s", self.datadir)
        argv: list[str | Path] = [
            install,
            "--no-defaults",
            f"--datadir={self.datadir}",
            "--auth-root-authentication-method=normal",  # root without a password, over TCP too
            "--skip-test-db",
            *self._user_options(),
        ]
        result = run(argv, timeout=180)
        if result.returncode != 0:
            raise DevServiceError(
                f"mariadb-install-db failed (exit {result.returncode}):\n{result.stdout[-3000:]}"
            )

    def _server_argv(self, server: Path) -> list[str | Path]:
        return [
            server,
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--socket={self._socket_path()}",
            f"--pid-file={self.pidfile}",
            f"--log-error={self.log_path}",
            "--skip-name-resolve",  # no DNS look-ups per connection
            "--character-set-server=utf8mb4",  # the compiled-in default is latin1
            "--collation-server=utf8mb4_unicode_ci",
            *self._user_options(),
        ]

    def _launch(self) -> int:
        """Start mariadbd in a session of its own; returns its pid."""
        server, install = self.binaries()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._install_if_needed(install)
        self.pidfile.unlink(missing_ok=True)  # so a stale one is never mistaken for the new server
        log.info("mariadb: starting on 127.0.0.1:%s", self.port)
        argv = [sys.executable, "-I", "-S", "-c", _DAEMONIZE, self.log_path, *self._server_argv(server)]
        result = run(argv, timeout=30)
        if result.returncode != 0 or not result.stdout.strip().isdigit():
            raise DevServiceError(f"could not start mariadbd: {result.stdout.strip()}")
        return int(result.stdout.strip())

    def _wait_ready(self, pid: int, deadline: float) -> None:
        import pymysql  # lazily, as in ensure_database

        while True:
            try:
                pymysql.connect(
                    host="127.0.0.1", port=self.port, user=MARIADB_SUPERUSER, connect_timeout=2
                ).close()
                return
            except pymysql.MySQLError as exc:
                problem = str(exc)
            if not pid_alive(pid):
                raise DevServiceError(f"mariadbd exited during startup: {problem}\n{tail(self.log_path)}")
            if time.monotonic() >= deadline:
                raise DevServiceError(f"mariadb not accepting connections: {problem}\n{tail(self.log_path)}")
            time.sleep(0.1)
