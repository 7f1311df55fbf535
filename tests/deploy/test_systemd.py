"""The systemd units of deploy/systemd: systemd's own checks, and each unit's command line run for real.

``systemd-analyze verify`` and ``systemd-analyze security --offline=yes`` judge the files;
``tests/deploy/units.py`` runs each ``ExecStart=`` with the unit's environment (``Environment=`` lines, then
``env.example`` as its ``EnvironmentFile=``, with this test's PostgreSQL, Redis, ports and a real secret
key) in a temporary root where only the directories the unit declares exist, under the kernel part of its
sandbox. It catches the node unit's crash loop of issue 15:
``PROMETHEUS_MULTIPROC_DIR=/run/workflow-engine/metrics``, which nothing created.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from tests.deploy.units import ROOT, UNIT_DIR, UnitRun, read_env_file
from tests.harness import free_port

UNITS = sorted(UNIT_DIR.glob("*.service"))
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None,
    reason="systemd-analyze is not installed (Debian package systemd; ./test installs it when run as root)",
)
ENV_EXAMPLE = UNIT_DIR / "env.example"
# the environment file's values that name this test's services, ports and secret rather than the example's
UP_WITHIN = 90.0


def unit(name: str) -> Path:
    return UNIT_DIR / f"workflow-engine-{name}.service"


def test_every_unit_of_the_guide_is_here() -> None:
    assert [p.name for p in UNITS] == [
        "workflow-engine-coordinator.service",
        "workflow-engine-gateway.service",
        "workflow-engine-node.service",
        "workflow-engine-worker.service",
    ]


@needs_analyze
def test_every_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """verify checks that ExecStart's program exists, so the units are copied with the repository's
    interpreter and a real environment file in place of /opt/workflow-engine and /etc/workflow-engine."""
    env_file = tmp_path / "env"
    env_file.write_text(ENV_EXAMPLE.read_text())
    copies = []
    for path in UNITS:
        text = path.read_text().replace("/opt/workflow-engine/.venv/bin/python", sys.executable)
        text = text.replace("/opt/workflow-engine", str(ROOT)).replace(
            "/etc/workflow-engine/env", str(env_file)
        )
        copy = tmp_path / path.name
        copy.write_text(text)
        copies.append(str(copy))
    assert ANALYZE is not None
    done = subprocess.run([ANALYZE, "verify", *copies], capture_output=True, text=True, timeout=60)
    # verify exits 0 on unknown keys and bad values too; it reports them on stderr, so any line is a failure
    complaints = [line for line in (done.stdout + done.stderr).splitlines() if "workflow-engine" in line]
    assert done.returncode == 0 and not complaints, done.stdout + done.stderr


@needs_analyze
@pytest.mark.parametrize("path", UNITS, ids=[p.stem for p in UNITS])
def test_every_unit_is_sandboxed_to_an_exposure_under_5(path: Path) -> None:
    assert ANALYZE is not None
    done = subprocess.run(
        [ANALYZE, "security", "--offline=yes", "--no-pager", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout + done.stderr)
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) < 5.0, done.stdout


def test_the_environment_example_has_what_production_requires() -> None:
    env = read_env_file(ENV_EXAMPLE.read_text())
    assert env["WORKFLOW_PROFILE"] == "production"
    for key in ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL", "WORKFLOW_DATA_DIR"):
        assert env.get(key), key
    # the data directory is the units' StateDirectory=, the one place ProtectSystem=strict lets them write
    assert env["WORKFLOW_DATA_DIR"] == "/var/lib/workflow-engine"


# ------------------------------------------------------------------------------------- running the units


@pytest.fixture(scope="module")
def storage() -> Iterator[dict[str, str]]:
    """A database of its own on the session's server (a cluster of its own, production profile) and a Redis
    key prefix of its own."""
    from django.conf import settings

    name = f"wfe_units_{uuid.uuid4().hex[:8]}"
    admin = urlunsplit(urlsplit(settings.DATABASE_URL)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield {
            "DATABASE_URL": urlunsplit(urlsplit(settings.DATABASE_URL)._replace(path="/" + name)),
            "REDIS_URL": settings.REDIS_URL,
            "REDIS_KEY_PREFIX": f"wfe-units-{uuid.uuid4().hex[:8]}:",
        }
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def env_values(storage: dict[str, str], **overrides: str) -> dict[str, str]:
    """env.example, every key kept, with this test's services, free ports, small pools and a real key."""
    values = read_env_file(ENV_EXAMPLE.read_text())
    values.update(storage)
    values.update(
        {
            "SECRET_KEY": secrets.token_urlsafe(64),
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(free_port()),
            "METRICS_PORT": str(free_port()),
            "GATEWAY_WORKERS": "1",
            "WORKER_CONCURRENCY": "1",
            "WORKFLOW_NODE_NAME": f"unit-{uuid.uuid4().hex[:6]}",
        }
    )
    values.update(overrides)
    return values


@pytest.fixture(scope="module")
def migrated(storage: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The operator's step before the first start: ``manage.py migrate`` with the units' environment."""
    run = UnitRun(unit("gateway"), tmp_path_factory.mktemp("migrate"), env_values(storage))
    run.prepare()
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        cwd=ROOT,
        env=run.env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return storage


def get(url: str) -> int:
    request = urllib.request.Request(url, headers={"Host": "localhost"})  # a name ALLOWED_HOSTS lists
    with urllib.request.urlopen(request, timeout=5) as response:
        return int(response.status)


def query(storage: dict[str, str], statement: str, *params: str) -> object:
    with psycopg.connect(storage["DATABASE_URL"], autocommit=True) as conn:
        row = conn.execute(statement, params).fetchone()
    return row[0] if row else None


def wait_up(run: UnitRun, what: str, check: Callable[[], object]) -> None:
    """Wait for ``check`` while the process stays alive: an exit is a crash loop under Restart=always."""
    deadline = time.monotonic() + UP_WITHIN
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not run.alive():
            code = run.process.poll() if run.process else None
            raise AssertionError(f"{run.unit_path.name} exited with {code} before {what}:\n{run.log()}")
        try:
            if check():
                return
        except Exception as exc:  # not up yet: connection refused, a 503
            last = exc
        time.sleep(0.25)
    raise AssertionError(f"{run.unit_path.name}: no {what} after {UP_WITHIN}s ({last!r}):\n{run.log()}")


def stays_up(run: UnitRun, seconds: float = 4.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert run.alive(), f"{run.unit_path.name} exited after coming up:\n{run.log()}"
        time.sleep(0.25)
    assert "process exited; restarting" not in run.log_path.read_text(errors="replace"), run.log()


def test_the_node_unit_runs_every_role_in_a_temporary_root_and_stays_up(
    migrated: dict[str, str], tmp_path: Path
) -> None:
    """The guide's single-node ``systemctl start workflow-engine``: all roles, health, metrics, shards."""
    values = env_values(migrated, WORKFLOW_ROLES="coordinator,worker,api-gateway")
    run = UnitRun(unit("node"), tmp_path / "root", values).start()
    try:
        base = f"http://127.0.0.1:{values['HTTP_PORT']}"
        wait_up(run, "GET /health/ready answers 200", lambda: get(f"{base}/health/ready") == 200)
        wait_up(
            run, "metrics on METRICS_PORT", lambda: get(f"http://127.0.0.1:{values['METRICS_PORT']}/metrics")
        )
        owned = "SELECT count(*) FROM cluster_shardlease WHERE owner LIKE %s"
        wait_up(
            run, "its worker owns shards", lambda: query(migrated, owned, values["WORKFLOW_NODE_NAME"] + "%")
        )
        stays_up(run)
        metrics_dir = Path(run.env["PROMETHEUS_MULTIPROC_DIR"])
        assert metrics_dir.is_relative_to(tmp_path) and any(metrics_dir.glob("*.db"))
    finally:
        run.stop()


def test_the_node_unit_of_the_issue_crash_loops_here(migrated: dict[str, str], tmp_path: Path) -> None:
    """The check above catches the original bug: with only RuntimeDirectory=workflow-engine, the metrics
    directory does not exist and run_node dies at start (systemd restarted it forever)."""
    text = unit("node").read_text()
    broken = re.sub(r"(?m)^RuntimeDirectory=.*$", "RuntimeDirectory=workflow-engine", text)
    assert broken != text
    values = env_values(migrated, WORKFLOW_ROLES="api-gateway")
    run = UnitRun(unit("node"), tmp_path / "root", values, unit_text=broken).start()
    try:
        with pytest.raises(AssertionError, match="exited with"):
            wait_up(
                run, "GET /health answers 200", lambda: get(f"http://127.0.0.1:{values['HTTP_PORT']}/health")
            )
    finally:
        run.stop()


def test_the_gateway_unit_answers_health_in_a_temporary_root(
    migrated: dict[str, str], tmp_path: Path
) -> None:
    values = env_values(migrated)
    run = UnitRun(unit("gateway"), tmp_path / "root", values).start()
    try:
        base = f"http://127.0.0.1:{values['HTTP_PORT']}"
        wait_up(run, "GET /health/ready answers 200", lambda: get(f"{base}/health/ready") == 200)
        stays_up(run, 2.0)
    finally:
        run.stop()


@pytest.mark.parametrize("name", ["worker", "coordinator", "gateway"])
def test_a_role_unit_that_cannot_reach_postgresql_fails_before_starting_with_one_line(
    migrated: dict[str, str], tmp_path: Path, name: str
) -> None:
    """Its ExecStartPre is run_node's check: one line naming the variable and the address, no traceback, and
    the role's process never starts (a Celery worker or gunicorn would retry with a traceback each time)."""
    values = env_values(migrated, DATABASE_URL=f"postgres://wfe@127.0.0.1:{free_port()}/wfe")
    run = UnitRun(unit(name), tmp_path / "root", values).start()
    assert run.process is not None
    assert run.process.wait(timeout=120) == 1, run.log()
    log = run.log_path.read_text(errors="replace")
    assert "cannot start: DATABASE_URL: cannot connect to PostgreSQL at 127.0.0.1:" in log, log
    assert "Traceback" not in log, log
    assert run.process.args != run.argv, "the main process was started anyway"


def test_the_coordinator_and_worker_units_lead_and_own_shards(
    migrated: dict[str, str], tmp_path: Path
) -> None:
    """The per-role units of one host: the coordinator leads, and assigns the shards to the worker."""
    coordinator_values = env_values(migrated)
    worker_values = env_values(migrated)
    coordinator = UnitRun(unit("coordinator"), tmp_path / "coordinator", coordinator_values).start()
    worker = UnitRun(unit("worker"), tmp_path / "worker", worker_values).start()
    try:
        leader = "SELECT leader FROM cluster_coordinatorterm WHERE leader LIKE %s"
        wait_up(
            coordinator,
            "it leads",
            lambda: query(migrated, leader, coordinator_values["WORKFLOW_NODE_NAME"] + "%"),
        )
        owned = "SELECT count(*) FROM cluster_shardlease WHERE owner LIKE %s"
        wait_up(
            worker,
            "it owns shards",
            lambda: query(migrated, owned, worker_values["WORKFLOW_NODE_NAME"] + "%"),
        )
        stays_up(coordinator, 2.0)
        stays_up(worker, 2.0)
    finally:
        worker.stop()
        coordinator.stop()
