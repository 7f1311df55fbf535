"""A Redis master, a replica and Sentinels on loopback, all from the ``redis-server`` the devservices use.

For tests and chaos runs of failover (Sentinel is ``redis-server --sentinel``): ``kill_master()`` SIGKILLs
the master, the sentinels agree it is down after ``down_after_ms`` and promote the replica. No persistence
(a replica resyncs from the master), so a killed master comes back empty, as a new replica.

Readiness is checked with raw RESP, so this module needs no redis-py, like ``devservices.redis``.
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from devservices.binaries import find_redis_server
from devservices.errors import DevServiceError
from devservices.processes import START_TIMEOUT, PathLike, free_port, tail

log = logging.getLogger(__name__)


def _command(port: int, *words: str) -> bytes:
    """One command's raw reply (the first 4 KiB); b"" when nothing answers."""
    request = f"*{len(words)}\r\n".encode() + b"".join(f"${len(w)}\r\n{w}\r\n".encode() for w in words)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(request)
            return sock.recv(4096)
    except OSError:
        return b""


class _Process:
    """One ``redis-server`` in the foreground of a child process (so SIGKILL needs no pidfile)."""

    def __init__(self, name: str, port: int, workdir: Path, server_bin: Path, args: list[str]) -> None:
        self.name, self.port, self.workdir = name, port, workdir
        self.log_path = workdir / f"{name}.log"
        self._server_bin, self._args = server_bin, args
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [str(self._server_bin), *self._args], cwd=self.workdir, stdout=out, stderr=subprocess.STDOUT
            )

    def wait_ready(self, deadline: float) -> None:
        while not _command(self.port, "PING").startswith(b"+PONG"):
            if self.proc is not None and self.proc.poll() is not None:
                raise DevServiceError(f"{self.name} exited during startup\n{tail(self.log_path)}")
            if time.monotonic() >= deadline:
                raise DevServiceError(f"{self.name} not answering PING on {self.port}\n{tail(self.log_path)}")
            time.sleep(0.05)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class SentinelCluster:
    """A master, ``replicas`` replicas and ``sentinels`` sentinels watching ``service_name``.

    The quorum is a majority of the sentinels; ``down_after_ms`` and ``failover_timeout_ms`` are small so a
    failover takes a few seconds. Ports are free loopback ports unless given.
    """

    def __init__(
        self,
        workdir: PathLike,
        *,
        service_name: str = "mymaster",
        replicas: int = 1,
        sentinels: int = 3,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
        server_bin: PathLike | None = None,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.service_name = service_name
        self.down_after_ms, self.failover_timeout_ms = down_after_ms, failover_timeout_ms
        self.quorum = sentinels // 2 + 1
        self._server_bin = Path(server_bin) if server_bin else find_redis_server()
        self.master_port = free_port()  # the first master's; Sentinel moves the role on
        self.data = [self._data_node(f"redis-{i}", i > 0) for i in range(1 + replicas)]
        self.sentinels = [self._sentinel(f"sentinel-{i}") for i in range(sentinels)]

    def _data_node(self, name: str, replica: bool) -> _Process:
        port = free_port() if replica else self.master_port
        args = ["--port", str(port), "--bind", "127.0.0.1", "--protected-mode", "no", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.workdir / name)]
        if replica:
            args += ["--replicaof", "127.0.0.1", str(self.master_port)]
        (self.workdir / name).mkdir(parents=True, exist_ok=True)
        return _Process(name, port, self.workdir / name, self._server_bin, args)

    def _sentinel(self, name: str) -> _Process:
        port = free_port()
        conf = self.workdir / name / "sentinel.conf"  # sentinels rewrite their config: one file each
        conf.parent.mkdir(parents=True, exist_ok=True)
        service = self.service_name
        conf.write_text(
            "\n".join(
                [
                    f"port {port}",
                    "bind 127.0.0.1",
                    "protected-mode no",
                    f'dir "{conf.parent}"',
                    f"sentinel monitor {service} 127.0.0.1 {self.master_port} {self.quorum}",
                    f"sentinel down-after-milliseconds {service} {self.down_after_ms}",
                    f"sentinel failover-timeout {service} {self.failover_timeout_ms}",
                    f"sentinel parallel-syncs {service} 1",
                ]
            )
            + "\n"
        )
        return _Process(name, port, conf.parent, self._server_bin, [str(conf), "--sentinel"])

    def url(self, db: int = 0) -> str:
        """``REDIS_URL`` in the engine's sentinel form."""
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"sentinel://{hosts}/{db}?service_name={self.service_name}"

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start every process; returns once the replicas are in sync and the sentinels see them."""
        deadline = time.monotonic() + timeout
        for node in self.data:
            node.start()
        for node in self.data:
            node.wait_ready(deadline)
        for sentinel in self.sentinels:
            sentinel.start()
        for sentinel in self.sentinels:
            sentinel.wait_ready(deadline)
        self._wait(deadline, "the replicas to sync", self._replicas_synced)
        # sentinels find each other through the master's hello channel (every 2 s): one that knows no other
        # cannot reach the quorum, so a master killed before then would never be replaced
        self._wait(deadline, "the sentinels to know each other and the replicas", self._sentinels_acquainted)
        log.info("sentinel: master on %s, sentinels on %s", self.master_port, self.url())

    def _replicas_synced(self) -> bool:
        info = _command(self.master_port, "INFO", "replication")
        return info.count(b"state=online") >= len(self.data) - 1

    def _sentinels_acquainted(self) -> bool:
        others, replicas = f"*{len(self.sentinels) - 1}\r\n".encode(), f"*{len(self.data) - 1}\r\n".encode()
        return all(
            _command(s.port, "SENTINEL", "sentinels", self.service_name).startswith(others)
            and _command(s.port, "SENTINEL", "replicas", self.service_name).startswith(replicas)
            for s in self.sentinels
        )

    def current_master_port(self) -> int | None:
        """The master's port as the first answering sentinel names it."""
        for sentinel in self.sentinels:
            reply = _command(sentinel.port, "SENTINEL", "get-master-addr-by-name", self.service_name)
            lines = reply.split(b"\r\n")
            if reply.startswith(b"*2") and len(lines) >= 5:
                return int(lines[4])
        return None

    def kill_master(self) -> int:
        """SIGKILL the current master; returns its port."""
        port = self.current_master_port()
        node = next(n for n in self.data if n.port == port)
        log.info("sentinel: killing the master %s on %s", node.name, port)
        node.kill()
        return node.port

    def wait_failover(self, old_port: int, timeout: float = 30) -> int:
        """Wait until the sentinels name a new master that answers as one; returns its port."""
        deadline = time.monotonic() + timeout

        def promoted() -> bool:
            port = self.current_master_port()
            return port not in (None, old_port) and b"role:master" in _command(port, "INFO", "replication")

        self._wait(deadline, "a replica to be promoted", promoted)
        port = self.current_master_port()
        assert port is not None
        return port

    def wait_synced(self, port: int, timeout: float = 60) -> None:
        """Wait until the server on ``port`` replicates from the master (a killed master that came back is
        made a replica by the sentinels; until it has synced it cannot be promoted)."""
        deadline = time.monotonic() + timeout
        self._wait(
            deadline,
            f"redis on {port} to sync with the master",
            lambda: b"master_link_status:up" in _command(port, "INFO", "replication"),
        )

    def _wait(self, deadline: float, what: str, check: Callable[[], bool]) -> None:
        while not check():
            if time.monotonic() >= deadline:
                logs = "\n".join(tail(p.log_path, 10) for p in [*self.data, *self.sentinels])
                raise DevServiceError(f"timed out waiting for {what}\n{logs}")
            time.sleep(0.1)

    def stop(self) -> None:
        for node in [*self.sentinels, *self.data]:
            node.kill(signal.SIGTERM)
