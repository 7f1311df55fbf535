"""A node that cannot start says why in one line (the variable, the address, who holds a port) and exits 1.

Real processes: ``run_node`` as ``./run``, systemd and Kubernetes start it; a port held by a real socket; a
``DATABASE_URL`` or ``REDIS_URL`` pointing at a closed port. Every check happens before a child starts, so
these nodes never touch the session's database.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import process_env
from tests.harness import ROOT, free_port

TIMEOUT = 60


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port this test process listens on (the 'other process' holding it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def run_node(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {
        **process_env(tmp_path),
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(free_port()),
        "METRICS_PORT": str(free_port()),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        **env,
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "run_node", *args],
        env=full,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def one_error(done: subprocess.CompletedProcess[str]) -> str:
    """The single line the node wrote (JSON, as every log line), its message; asserts exit 1."""
    lines = (done.stdout + done.stderr).splitlines()
    assert done.returncode == 1, f"exit {done.returncode}: {lines}"
    assert len(lines) == 1, f"expected one line, got {len(lines)}: {lines}"
    fields = json.loads(lines[0])
    assert fields["level"] == "ERROR" and "exc" not in fields, fields
    return str(fields["msg"])


def test_a_busy_http_port_stops_the_node_naming_the_variable_the_address_and_the_process(
    tmp_path: Path, held_port: int
) -> None:
    message = one_error(run_node(tmp_path, HTTP_PORT=str(held_port)))
    assert f"HTTP_PORT: 127.0.0.1:{held_port} is already in use by pid {os.getpid()}" in message, message
    assert "set HTTP_PORT to a free port" in message


def test_a_busy_metrics_port_stops_the_node_naming_metrics_port(tmp_path: Path, held_port: int) -> None:
    message = one_error(run_node(tmp_path, "--roles", "worker", METRICS_PORT=str(held_port)))
    assert f"METRICS_PORT: 127.0.0.1:{held_port} is already in use by pid {os.getpid()}" in message, message
    assert "Errno" not in message


def test_an_unreachable_database_is_one_line_naming_database_url_host_and_port(tmp_path: Path) -> None:
    closed = free_port()
    message = one_error(
        run_node(tmp_path, "--no-metrics", DATABASE_URL=f"postgresql://postgres@127.0.0.1:{closed}/nowhere")
    )
    assert message == (
        f"cannot start: DATABASE_URL: cannot connect to PostgreSQL at 127.0.0.1:{closed}: Connection refused"
    )


def test_an_unreachable_redis_is_one_line_naming_redis_url_host_and_port(tmp_path: Path) -> None:
    closed = free_port()
    message = one_error(run_node(tmp_path, "--no-metrics", REDIS_URL=f"redis://127.0.0.1:{closed}/0"))
    assert (
        message
        == f"cannot start: REDIS_URL: cannot connect to Redis at 127.0.0.1:{closed}: Connection refused"
    )


def test_the_check_alone_passes_and_starts_nothing_when_all_is_ready(tmp_path: Path) -> None:
    done = run_node(tmp_path, "--check")
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_second_run_on_a_busy_http_port_says_why_and_never_claims_to_be_running(
    tmp_path: Path, held_port: int
) -> None:
    """The issue's case: another node answered ./run's health check, which then printed the banner."""
    env = {
        **process_env(tmp_path),
        "HTTP_PORT": str(held_port),
        "METRICS_PORT": str(free_port()),
        "LOG_FORMAT": "json",
        "PYTHONWARNINGS": "ignore",
    }
    done = subprocess.run(
        [str(ROOT / "run")], env=env, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT * 3
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "workflow-engine is running" not in output
    assert f"HTTP_PORT: 127.0.0.1:{held_port} is already in use by pid {os.getpid()}" in output, output
