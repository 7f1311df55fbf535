"""A real Redis server in a data directory, with its AOF: started or reused, stopped, killed or wiped.

Readiness is checked with a raw RESP PING, so this module needs no redis-py.
"""

from __future__ import annotations

import logging
import shutil
import signal
import socket
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

from devservices.binaries import find_redis_server
from devservices.errors import DevServiceError
from devservices.processes import (
    START_TIMEOUT,
    STOP_TIMEOUT,
    PathLike,
    PidfileServer,
    checked_addresses,
    file_lock,
    kill_all,
    listen_ports,
    pidfile_process,
    processes_in,
    run,
    tail,
    terminate,
)

log = logging.getLogger(__name__)


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


class RedisServer(PidfileServer):
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
        self.listen_addresses = checked_addresses(listen_addresses)
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
        return pidfile_process(self.pidfile, "redis-server", self.dir)

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start or reuse the server; returns once it answers PING."""
        deadline = time.monotonic() + timeout
        with file_lock(self.data_dir / ".redis.lock"):
            proc = self._process()
            if proc is not None and self.port in listen_ports(proc):
                log.info("redis: reusing pid %s on port %s", proc.pid, self.port)
            else:
                if proc is not None:
                    log.info("redis: running on another port, restarting on %s", self.port)
                    self._stop_locked(STOP_TIMEOUT)
                self._launch()
            self._wait_ready(deadline)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM (flushes the AOF, no RDB since `save ""`); SIGKILL after `timeout`.  No-op if stopped."""
        with file_lock(self.data_dir / ".redis.lock"):
            self._stop_locked(timeout)

    def kill(self) -> None:
        """SIGKILL, like a crash: up to ~1s of writes may be lost (appendfsync everysec)."""
        with file_lock(self.data_dir / ".redis.lock"):
            kill_all(self._process(), "redis-server", self.dir)

    def wipe_data(self) -> None:
        """Delete the AOF/RDB files (server must be stopped), e.g. to test recovery from data loss."""
        if self.is_running():
            raise DevServiceError("stop or kill redis before wiping its data")
        shutil.rmtree(self.dir, ignore_errors=True)

    def _stop_locked(self, timeout: float) -> None:
        proc = self._process()
        if proc is not None:
            log.info("redis: stopping pid %s", proc.pid)
            terminate(proc, signal.SIGTERM, "redis-server", self.dir, timeout)

    def _write_conf(self) -> None:
        lines = [
            "# Managed by devservices; rewritten on every start.",
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
        result = run([self.server_bin, self.conf_path], timeout=30)
        if result.returncode != 0:
            raise DevServiceError(
                f"redis-server failed (exit {result.returncode}): {result.stdout.strip()}"
                f"\n{tail(self.log_path)}"
            )

    def _wait_ready(self, deadline: float) -> None:
        while True:
            proc = self._process()
            if proc is not None and _redis_ping(self.port) and self.port in listen_ports(proc):
                return
            # The daemon is forked before redis-server returns, so "none in our dir" means it died
            # (typically: port taken).
            if proc is None and not processes_in("redis-server", self.dir):
                raise DevServiceError(f"redis-server exited during startup\n{tail(self.log_path)}")
            if time.monotonic() >= deadline:
                raise DevServiceError(f"redis not answering PING on port {self.port}\n{tail(self.log_path)}")
            time.sleep(0.05)
