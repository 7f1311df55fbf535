"""The deployment guide's backup and restore drill, with real processes (docs/operations.md, Backup and
restore).

Executions run (some finished, some waiting in a delay node, a burst starting): ``manage.py backup`` is
taken while they run; the cluster is stopped, the database dropped and created again, Redis flushed;
``manage.py migrate`` and ``manage.py restore`` bring the backup back, and the nodes start again. Every
execution that was in flight at backup time must complete, the finished ones must keep their journals, and
the restored counts must be the manifest's.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from apps.operations import archive
from tests.cluster.conftest import Scenario, _admin_url
from tests.harness import ROOT, wait_for
from tests.integration.test_executions import step, workflow

pytestmark = pytest.mark.cluster


def manage(s: Scenario, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env={**s.cluster.env, "LOG_FORMAT": "text"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


def start_cluster(s: Scenario) -> None:
    s.coordinator("c1")
    s.worker("w1")
    s.gateway()
    s.wait_ready(["w1"])


def delayed(workflow_id: str, out: Path, seconds: int) -> dict[str, object]:
    """source -> delay (a durable timer) -> file sink: in flight for ``seconds``."""
    return workflow(
        workflow_id,
        [
            step("src", "memory.collection", "source", data=[workflow_id]),
            step("wait", "delay", "transform", duration=f"{seconds}s"),
            step("out", "file.text", "sink", path=str(out)),
        ],
        [("src", "wait"), ("wait", "out")],
    )


def journals(s: Scenario, execution_ids: list[str]) -> list[tuple[object, ...]]:
    return s.rows(
        "SELECT execution_id, seq, type, payload::text, epoch, created_at FROM workflows_event "
        "WHERE execution_id = ANY(%s) ORDER BY execution_id, seq",
        [execution_ids],
    )


def wipe(s: Scenario) -> None:
    """Drop the database and create it empty, and flush Redis: nothing of the old store is left."""
    name = s.db_url.rsplit("/", 1)[1]
    with psycopg.connect(_admin_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    s.redis.flushall()


def test_executions_in_flight_at_backup_time_complete_after_a_wipe_and_a_restore(
    make_scenario: object, tmp_path: Path
) -> None:
    s: Scenario = make_scenario()  # type: ignore[operator]
    start_cluster(s)
    finished_load = s.pipelines("done", 4)
    finished = s.execute(finished_load.workflow_ids)
    s.wait_finished(finished, timeout=60)

    s.define([delayed(f"slow-{i}", s.out / f"slow-{i}.txt", 15) for i in range(6)])
    slow = s.execute([f"slow-{i}" for i in range(6)])
    burst_load = s.pipelines("burst", 12)
    wait_for(
        "the delayed executions to wait on their timers",
        lambda: (
            s.rows(
                "SELECT count(*) FROM workflows_timer WHERE execution_id = ANY(%s) AND fired_at IS NULL",
                [slow],
            )[0][0]
            == len(slow)
        ),
        timeout=30,
    )
    # the backup runs while a burst starts and runs
    burst: list[str] = []
    starter = threading.Thread(target=lambda: burst.extend(s.execute(burst_load.workflow_ids)))
    starter.start()
    backup_file = tmp_path / "drill.tar.gz"
    taken = manage(s, "backup", str(backup_file))
    starter.join()
    assert taken.returncode == 0, taken.stderr
    manifest = archive.read_manifest(backup_file)

    s.cluster.kill()
    before = journals(s, finished)
    wipe(s)
    migrated = manage(s, "migrate", "--noinput", "-v0")
    assert migrated.returncode == 0, migrated.stderr
    restored = manage(s, "restore", str(backup_file))
    assert restored.returncode == 0, restored.stdout + restored.stderr

    printed = dict(line.split() for line in restored.stdout.splitlines() if len(line.split()) == 2)
    assert {t.name: t.rows for t in manifest.tables} == {k: int(v) for k, v in printed.items()}
    for table in manifest.tables:
        counted = s.rows(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table.name)).as_string())
        assert counted[0][0] == table.rows, table.name
    assert journals(s, finished) == before
    in_flight = [
        row[0]
        for row in s.rows(
            "SELECT id FROM workflows_execution WHERE status IN ('pending', 'running', 'paused')"
        )
    ]
    assert set(slow) <= set(in_flight), "the delayed executions were waiting at backup time"

    start_cluster(s)
    took = s.wait_finished(in_flight, timeout=90)
    print(
        f"backup of {manifest.total_rows} rows; {len(in_flight)} in flight finished {took:.1f}s after start"
    )
    assert s.statuses(in_flight)["completed"] == len(in_flight)
    # executions started after the snapshot are not in the backup; every one that is has completed
    everything = dict(s.rows("SELECT status, count(*) FROM workflows_execution GROUP BY status"))
    executions = next(t.rows for t in manifest.tables if t.name == "workflows_execution")
    assert everything == {"completed": executions}
    for i in range(6):
        assert (s.out / f"slow-{i}.txt").read_text().split() == [f"slow-{i}"]
    assert journals(s, finished) == before
