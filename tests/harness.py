"""Real processes for integration and cluster tests: gateways, workers, coordinators, whole nodes.

Every process runs in a session of its own, so a test can SIGKILL a Celery worker together with its pool
children, as when a machine dies. Nothing here fakes our infrastructure.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil

from apps.cluster import processes
from devservices import free_port as free_port  # re-exported: the tests take their ports from here
from tests import openapi_check

ROOT = Path(__file__).resolve().parent.parent
# The original product's minimal valid body (origin-product.md §1.1), unchanged; ./run loads it as ``wf1``.
ORIGINAL_MINIMAL: dict[str, Any] = json.loads((ROOT / "examples" / "minimal.json").read_text())
T = TypeVar("T")

# Faster liveness than production, so failover scenarios take seconds (docs/configuration.md, test profile).
TEST_TUNABLES = {
    "WORKFLOW_HEARTBEAT_INTERVAL": "500ms",
    "WORKFLOW_LIVENESS_TTL": "2s",
    "WORKFLOW_LEADER_LEASE_TTL": "3s",
    "WORKFLOW_RECONCILE_INTERVAL": "500ms",
    "WORKFLOW_SNAPSHOT_EVERY": "10",
}


def migrate_with_token(url: str, token: str, username: str) -> None:
    """Migrate the database at ``url`` in a subprocess (this process's Django is bound to the session
    database) and give ``username`` the API ``token``."""
    import psycopg

    env = {**os.environ, "DATABASE_URL": url, "WORKFLOW_PROFILE": "test"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "migrate", "-v0"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, f"migrate failed:\n{done.stdout}\n{done.stderr}"
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, "
            "is_staff, is_active, date_joined) "
            "VALUES ('!', true, %s, '', '', '', true, true, now()) RETURNING id",
            [username],
        ).fetchone()
        assert row is not None
        conn.execute(
            "INSERT INTO authtoken_token (key, created, user_id) VALUES (%s, now(), %s)", [token, row[0]]
        )


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # the thing polled may not be up yet
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last_error!r})")


@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.argv, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, signum: int) -> None:
        """Signal the whole process group (a Celery worker's pool children included)."""
        if self.popen is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> None:
        if not self.alive():
            return
        self.signal(signal.SIGTERM)
        try:
            assert self.popen is not None
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Cluster:
    """Processes sharing one PostgreSQL and Redis. ``env`` is passed to every process."""

    workdir: Path
    env: dict[str, str]
    procs: list[Proc] = field(default_factory=list)

    def _spawn(self, name: str, argv: list[str], extra: dict[str, str] | None = None) -> Proc:
        env = {**self.env, **(extra or {})}
        proc = Proc(name, argv, env, self.workdir / f"{name}.log").start()
        self.procs.append(proc)
        return proc

    def manage(self, *args: str) -> list[str]:
        return [sys.executable, str(ROOT / "manage.py"), *args]

    def start_worker(
        self,
        name: str = "worker",
        concurrency: int = 2,
        env: dict[str, str] | None = None,
        wrap: Sequence[str] = (),
    ) -> Proc:
        """A Celery worker named ``name``, started with the production command line (``processes.worker``);
        ``wrap`` prefixes it (e.g. ``ip netns exec <ns>``). The Celery node name gets the process count, so a
        worker restarted under the same ``name`` is a distinct Celery node."""
        argv = [*wrap, *processes.worker(concurrency=concurrency, name=f"{name}-{len(self.procs)}")]
        extra = {"WORKFLOW_NODE_NAME": name, "WORKFLOW_PROCESS_ROLE": "worker", **(env or {})}
        return self._spawn(name, argv, extra)

    def start_coordinator(self, name: str = "coordinator", env: dict[str, str] | None = None) -> Proc:
        return self._spawn(name, processes.coordinator(), {"WORKFLOW_NODE_NAME": name, **(env or {})})

    def start_gateway(self, port: int, name: str = "gateway") -> Proc:
        return self._spawn(
            name,
            processes.gateway(),
            {"HTTP_PORT": str(port), "HTTP_HOST": "127.0.0.1", "GATEWAY_WORKERS": "2"},
        )

    def start_node(self, http_port: int, metrics_port: int, name: str = "node") -> Proc:
        metrics_dir = self.workdir / f"metrics-{name}"
        metrics_dir.mkdir(exist_ok=True)  # prometheus_client multiprocess mode: the starter prepares it
        extra = {
            "HTTP_PORT": str(http_port),
            "METRICS_PORT": str(metrics_port),
            "HTTP_HOST": "127.0.0.1",
            "WORKFLOW_NODE_NAME": name,
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        }
        return self._spawn(name, self.manage("run_node"), extra)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()

    def kill(self) -> None:
        """SIGKILL every process group at once (paused ones too), as a fast teardown."""
        for proc in self.procs:
            proc.signal(signal.SIGKILL)
        for proc in self.procs:
            if proc.popen is not None:
                proc.popen.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(
            f"----- {p.name} (pid {p.popen.pid if p.popen else '-'}) -----\n{p.log_tail()}"
            for p in self.procs
        )


class Api:
    """A tiny JSON client for the gateway, with the token of a real user."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base.rstrip("/"), token

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", f"Token {self.token}")
        request.add_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                status, media = response.status, response.headers.get_content_type()
        except urllib.error.HTTPError as exc:
            raw, status, media = exc.read(), exc.code, exc.headers.get_content_type()
        text = raw.decode()
        # every answer a test receives must match its route's OpenAPI description (tests/openapi_check.py)
        openapi_check.check_response(method, path, status, media, text)
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text

    def get(self, path: str) -> tuple[int, Any]:
        return self.call("GET", path)

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        return self.call("POST", path, body, headers)

    def wait_finished(self, execution_id: str, timeout: float = 60.0) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            status, body = self.get(f"/api/v1/executions/{execution_id}")
            return body if status == 200 and body["status"] in ("completed", "failed", "cancelled") else None

        return wait_for(f"execution {execution_id} to finish", finished, timeout=timeout, interval=0.1)
