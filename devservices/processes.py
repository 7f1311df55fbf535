"""What every server shares: running programs, finding and stopping server processes, locks, ports.

A server here is found by its name and its working directory (each server chdirs into its data directory),
never by a pid alone: pids are reused, most of all in containers.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psutil

from devservices.errors import DevServiceError

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
# Unix socket paths are limited to 108 bytes (sun_path); keep a margin for ".lock" files.
MAX_SOCKET_PATH = 100


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (racy by nature, fine for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(argv: Sequence[str | Path], timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
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


# --------------------------------------------------------------------------- finding server processes


def _reap(pid: int) -> None:
    # Only succeeds when the server ended up as our child (e.g. we are PID 1 in a container).
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def alive(proc: psutil.Process) -> bool:
    """Whether ``proc`` runs; a zombie counts as gone (and is reaped if it is our child)."""
    try:
        if not proc.is_running():
            return False
        if proc.status() == psutil.STATUS_ZOMBIE:
            _reap(proc.pid)
            return False
    except psutil.NoSuchProcess:
        return False
    return True


def pid_alive(pid: int) -> bool:
    try:
        return alive(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return False


def owned_process(pid: int, name: str, cwd: Path) -> psutil.Process | None:
    """The live process `pid` if it is `name` running in `cwd` (guards against stale, reused pids)."""
    try:
        proc = psutil.Process(pid)
        if alive(proc) and proc.name() == name and Path(proc.cwd()) == cwd:
            return proc
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        pass
    return None


def pidfile_process(pidfile: Path, name: str, cwd: Path) -> psutil.Process | None:
    """The live server process named in ``pidfile``, if it really is ours (name and working directory)."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return owned_process(pid, name, cwd)


def processes_in(name: str, cwd: Path) -> list[psutil.Process]:
    """All live processes called `name` whose working directory is `cwd`.

    The servers chdir into their data directory, so this finds every backend/child of a server
    even after its parent died (when they are no longer findable via children()).
    """
    found = []
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] != name:
            continue
        with contextlib.suppress(psutil.Error, OSError):
            if Path(proc.cwd()) == cwd and alive(proc):
                found.append(proc)
    return found


def listen_ports(proc: psutil.Process) -> set[int]:
    """TCP ports ``proc`` listens on (empty if it is gone or we may not look)."""
    with contextlib.suppress(psutil.Error):
        return {c.laddr.port for c in proc.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
    return set()


class PidfileServer:
    """``pid`` and ``is_running`` for a server whose ``_process`` is found through its pidfile."""

    def _process(self) -> psutil.Process | None:
        raise NotImplementedError

    def pid(self) -> int | None:
        proc = self._process()
        return proc.pid if proc else None

    def is_running(self) -> bool:
        return self._process() is not None


# --------------------------------------------------------------------------- stopping server processes


def _wait_gone(procs: Sequence[psutil.Process], timeout: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in procs if alive(p)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def _send(proc: psutil.Process, sig: int) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        proc.send_signal(sig)


def terminate(main: psutil.Process, sig: int, name: str, cwd: Path, timeout: float) -> None:
    """Send `sig` to a server, wait for it and its children; SIGKILL whatever is left at the deadline."""
    tree = [main, *processes_in(name, cwd)]
    _send(main, sig)
    left = _wait_gone(tree, timeout)
    if left:
        log.warning("%s did not stop within %.0fs; sending SIGKILL", name, timeout)
        kill_all(main, name, cwd)


def kill_all(main: psutil.Process | None, name: str, cwd: Path) -> None:
    """SIGKILL a server and every process called ``name`` in ``cwd``, like a crash."""
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


# --------------------------------------------------------------------------- small shared helpers


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Serialise start/stop of one server between concurrent processes (e.g. two `up`s)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a server log, for error messages."""
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    return f"--- last {len(text)} lines of {path} ---\n" + "\n".join(text)


def remaining(deadline: float) -> float:
    """Seconds left until ``deadline`` (a time.monotonic() value), at least one."""
    return max(deadline - time.monotonic(), 1.0)


def checked_addresses(addresses: Sequence[str]) -> tuple[str, ...]:
    """Listen addresses of a server: 127.0.0.1 first (readiness checks and default URLs use it)."""
    if "127.0.0.1" not in addresses:
        raise DevServiceError(f"listen addresses {list(addresses)} must include 127.0.0.1")
    for address in addresses:
        if not re.fullmatch(r"[0-9A-Za-z.:-]+", address):
            raise DevServiceError(f"not a listen address: {address!r}")
    return ("127.0.0.1", *(a for a in addresses if a != "127.0.0.1"))
