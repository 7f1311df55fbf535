"""The invariant checker (services/invariants.py, ``check_invariants``, ``/api/v1/cluster/invariants``) on the
session's real node: each violation is built for real in the database, found with its kind and execution,
repaired where the checker can, and cleaned up after, so that the store stays clean for the next test.

The leader would repair some of them first (it fires due timers and moves shards of dead owners): while the
checker looks, those rows are held ``FOR UPDATE`` by a second connection, which the leader's ``SKIP LOCKED``
passes by and its updates wait on, while the checker's plain reads see them.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.core.management import call_command
from django.utils import timezone
from prometheus_client import REGISTRY

from apps.cluster.models import ClusterEvent, ClusterMember, ShardLease
from apps.workflows.models import Command, Event, Execution, NodeOutput, Snapshot, Timer
from apps.workflows.services import invariants
from apps.workflows.services.invariants import Finding
from tests.cluster import checker
from tests.conftest import make_token
from tests.harness import Api, wait_for
from tests.integration.test_executions import run, step, workflow
from tests.integration.test_sweeper_guards import create, first_event_at, quick, start, waiting

pytestmark = pytest.mark.usefixtures("live_db")

LONG_AGO = timedelta(hours=1)


@pytest.fixture(scope="module", autouse=True)
def settled(node: dict[str, Any]) -> None:
    """The worker owns its shards and has recovered what they held before a test builds a violation."""
    api: Api = node["api"]
    assert run(api, quick("inv-settle-" + os.urandom(4).hex()))["status"] == "completed"


@contextlib.contextmanager
def held(sql: str, *params: Any) -> Iterator[list[tuple[Any, ...]]]:
    """Rows locked ``FOR UPDATE`` by another connection for the block: the leader passes them by."""
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=False) as conn:
        yield conn.execute(sql, params).fetchall()
        conn.rollback()


def of(report: invariants.Report, execution_id: str) -> list[Finding]:
    return [f for f in report.findings if f.execution_id == execution_id]


def to_file(workflow_id: str, target: Path) -> dict[str, Any]:
    return workflow(
        workflow_id,
        [
            step("s", "sequence.numbers", "source", start=1, end=3),
            step("out", "file.text", "sink", path=str(target)),
        ],
        [("s", "out")],
    )


def rewind_to_running_sink(execution_id: str) -> None:
    """Make a completed execution what a lost node attempt leaves behind, with nothing to say so: its journal
    ends at the sink's ``NodeExecutionStarted``; no command, timer or claim; the head row lists no running
    attempt (so the sweeper, which reads the head row, does not see it) and has not moved for an hour."""
    started = Event.objects.get(execution_id=execution_id, type="NodeExecutionStarted", payload__nodeId="out")
    Event.objects.filter(execution_id=execution_id, seq__gt=started.seq).delete()
    Snapshot.objects.filter(execution_id=execution_id, seq__gt=started.seq).delete()
    Command.objects.filter(execution_id=execution_id, processed_seq__gt=started.seq).delete()
    NodeOutput.objects.filter(execution_id=execution_id, node_id="out").delete()
    Timer.objects.filter(execution_id=execution_id).delete()
    Execution.objects.filter(pk=execution_id).update(
        status="running",
        last_seq=started.seq,
        running_nodes=[],
        ended_at=None,
        error="",
        progressed_at=timezone.now() - LONG_AGO,
    )


def test_a_clean_store_reports_nothing_about_healthy_executions(api: Api, uid: str, tmp_path: Path) -> None:
    done = run(api, to_file(f"inv-ok-{uid}", tmp_path / "ok.txt"))["executionId"]
    waits = start(api, create(api, waiting(f"inv-wait-{uid}")))
    wait_for("the delay to wait", lambda: first_event_at(waits, "NodeWaiting", "wait"))
    Execution.objects.filter(pk=waits).update(progressed_at=timezone.now() - LONG_AGO)  # idle, with a timer

    report = invariants.scan()

    assert of(report, done) == [] and of(report, waits) == []
    assert report.counts[invariants.SHARD_UNOWNED] == 0, report.findings
    assert report.scanned_executions >= 2 and report.next_after is None
    Execution.objects.filter(pk=waits).delete()


def test_a_stuck_execution_is_found_and_repair_completes_it_on_the_node(
    api: Api, uid: str, tmp_path: Path
) -> None:
    target = tmp_path / "out.txt"
    execution_id = run(api, to_file(f"inv-stuck-{uid}", target))["executionId"]
    target.unlink()
    rewind_to_running_sink(execution_id)

    found = of(invariants.scan(), execution_id)

    assert [(f.kind, f.repairable, f.repaired) for f in found] == [(invariants.NO_WAY_FORWARD, True, False)]
    assert "out#1" in found[0].detail
    assert Execution.objects.get(pk=execution_id).status == "running", "nothing else moves it"
    events = ClusterEvent.objects.filter(event_type="invariant_violation", payload__kind="no_way_forward")
    assert any(execution_id in e.payload["execution_ids"] for e in events)
    gauge = REGISTRY.get_sample_value("workflow_invariant_violations", {"kind": "no_way_forward"})
    assert gauge is not None and gauge >= 1

    repaired = of(invariants.scan(repair=True), execution_id)

    assert [(f.kind, f.repaired) for f in repaired] == [(invariants.NO_WAY_FORWARD, True)]
    assert api.wait_finished(execution_id, timeout=60)["status"] == "completed"
    assert target.read_text().splitlines() == ["1", "2", "3"], "the sink ran again, once"
    assert of(invariants.scan(), execution_id) == []


def test_an_execution_waiting_on_a_deleted_timer_is_reported_not_repaired(api: Api, uid: str) -> None:
    execution_id = start(api, create(api, waiting(f"inv-notimer-{uid}")))
    wait_for("the delay to wait", lambda: first_event_at(execution_id, "NodeWaiting", "wait"))
    Timer.objects.filter(execution_id=execution_id).delete()
    Execution.objects.filter(pk=execution_id).update(progressed_at=timezone.now() - LONG_AGO)

    found = of(invariants.scan(repair=True), execution_id)

    assert [(f.kind, f.repairable, f.repaired) for f in found] == [(invariants.NO_WAY_FORWARD, False, False)]
    assert "no command, timer, running attempt or wait" in found[0].detail
    Execution.objects.filter(pk=execution_id).delete()


def test_a_journal_with_a_gap_and_one_with_a_stale_writer_are_found(api: Api, uid: str) -> None:
    gap = run(api, quick(f"inv-gap-{uid}"))["executionId"]
    stale = run(api, quick(f"inv-stale-{uid}"))["executionId"]
    Event.objects.filter(execution_id=gap, seq=2).delete()
    second = Event.objects.get(execution_id=stale, seq=2)
    Event.objects.filter(pk=second.pk).update(epoch=second.epoch + 5)  # seq 3 is then older than seq 2

    report = invariants.scan()

    assert [f.kind for f in of(report, gap)] == [invariants.JOURNAL_GAP]
    assert "seq not contiguous from 1: expected seq 2" in of(report, gap)[0].detail
    assert "but the journal has" in of(report, gap)[0].detail, "the head's last_seq disagrees too"
    assert [f.kind for f in of(report, stale)] == [invariants.EPOCH_REGRESSION]
    assert of(report, stale)[0].detail.startswith("seq 3 (")
    assert "a stale owner committed after a newer one" in of(report, stale)[0].detail
    Execution.objects.filter(pk__in=[gap, stale]).delete()


def test_an_attempt_with_two_outcomes_is_found_as_the_campaign_checker_finds_it(api: Api, uid: str) -> None:
    twice = run(api, quick(f"inv-twice-{uid}"))["executionId"]
    head = Execution.objects.get(pk=twice)
    outcome = Event.objects.filter(execution_id=twice, type="NodeExecutionCompleted").order_by("seq").first()
    assert outcome is not None
    Event.objects.create(
        execution_id=twice,
        seq=head.last_seq + 1,
        type=outcome.type,
        payload=outcome.payload,
        epoch=Event.objects.get(execution_id=twice, seq=head.last_seq).epoch,
        created_at=timezone.now(),
    )
    Execution.objects.filter(pk=twice).update(last_seq=head.last_seq + 1)

    found = of(invariants.scan(), twice)

    attempt = (
        f"attempt {outcome.payload['attempt']} of node {outcome.payload['nodeId']!r} has 2 outcome events"
    )
    assert [f.kind for f in found] == [invariants.OUTCOME_DUPLICATED] and attempt in found[0].detail
    read = checker.load(os.environ["DATABASE_URL"], [twice])
    assert any(attempt in p for p in checker._journal(twice, read.executions[twice], read.events[twice]))
    Execution.objects.filter(pk=twice).delete()


def test_the_journal_scan_is_bounded_and_goes_on_where_it_stopped(api: Api, uid: str) -> None:
    gap = run(api, quick(f"inv-page-{uid}"))["executionId"]
    Event.objects.filter(execution_id=gap, seq=1).delete()
    before = Execution.objects.filter(id__lt=gap).order_by("-id").values_list("id", flat=True).first() or ""

    first = invariants.journal_findings(limit=1, after=before)
    rest = invariants.journal_findings(limit=10, after=gap)

    assert ([f.execution_id for f in first[0]], first[1], first[2]) == ([gap], 1, gap if rest[1] else None)
    assert gap not in [f.execution_id for f in rest[0]]
    Execution.objects.filter(pk=gap).delete()


def test_an_overdue_timer_is_found_and_repair_fires_it(api: Api, uid: str) -> None:
    execution_id = start(api, create(api, waiting(f"inv-overdue-{uid}")))
    wait_for("the delay to wait", lambda: first_event_at(execution_id, "NodeWaiting", "wait"))
    timer = Timer.objects.get(execution_id=execution_id, fired_at=None)
    Timer.objects.filter(pk=timer.pk).update(fire_at=timezone.now() - timedelta(minutes=5))

    with held("SELECT id FROM workflows_timer WHERE id = %s FOR UPDATE", timer.pk) as rows:
        assert rows, "the leader fired it before the lock: too slow a machine for this test"
        found = of(invariants.scan(), execution_id)
    assert [(f.kind, f.timer_id, f.repairable) for f in found] == [(invariants.TIMER_OVERDUE, timer.pk, True)]

    invariants.scan(repair=True)  # fires it, unless the leader did since the lock went
    assert api.wait_finished(execution_id, timeout=60)["status"] == "completed"
    assert Timer.objects.get(pk=timer.pk).fired_at is not None


def test_a_shard_owned_by_a_member_that_is_down_is_found(uid: str) -> None:
    dead = f"worker@gone-{uid}:1:x"
    now = timezone.now()
    ClusterMember.objects.create(
        member_id=dead,
        name=dead,
        host="gone",
        pid=1,
        roles=["worker"],
        state="down",
        started_at=now,
        last_seen=now - LONG_AGO,
    )
    lease = ShardLease.objects.order_by("shard_id").first()
    assert lease is not None and lease.owner
    sql = "SELECT owner FROM cluster_shardlease WHERE shard_id = %s FOR UPDATE"
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        conn.execute("UPDATE cluster_shardlease SET owner = %s WHERE shard_id = %s", [dead, lease.shard_id])
        conn.commit()
        # held: the leader's move waits for the lock; the owner is put back before it is released
        assert conn.execute(sql, [lease.shard_id]).fetchone() == (dead,), "moved before the lock: too slow"
        found = [f for f in invariants.scan().findings if f.kind == invariants.SHARD_UNOWNED]
        conn.execute(
            "UPDATE cluster_shardlease SET owner = %s WHERE shard_id = %s", [lease.owner, lease.shard_id]
        )
        conn.commit()
    assert [(f.shard_id, f.repairable) for f in found] == [(lease.shard_id, False)]
    assert dead in found[0].detail
    ClusterMember.objects.filter(pk=dead).delete()


def test_the_shard_check_names_each_kind_of_missing_owner() -> None:
    found = invariants.shard_problems({0: "w1", 1: None, 3: "w9"}, 4, {"w1"})
    assert [(f.shard_id, f.detail) for f in found] == [
        (1, "shard 1 has no owner"),
        (2, "shard 2 has no lease row"),
        (3, "shard 3 is owned by w9, whose liveness expired"),
    ]


def test_the_command_exits_1_with_findings_and_prints_them_as_json(api: Api, uid: str) -> None:
    gap = run(api, quick(f"inv-cmd-{uid}"))["executionId"]
    Event.objects.filter(execution_id=gap, seq=2).delete()
    out = io.StringIO()

    with pytest.raises(SystemExit) as exited:
        call_command("check_invariants", "--json", stdout=out)

    assert exited.value.code == 1
    body = json.loads(out.getvalue())
    assert body["clean"] is False and body["counts"]["journal_gap"] >= 1
    assert {"kind": "journal_gap", "executionId": gap} in [
        {"kind": f["kind"], "executionId": f["executionId"]} for f in body["findings"]
    ]
    Execution.objects.filter(pk=gap).delete()


def test_the_route_is_for_admins_and_names_a_bad_limit(api: Api, uid: str) -> None:
    gap = run(api, quick(f"inv-api-{uid}"))["executionId"]
    Event.objects.filter(execution_id=gap, seq=1).delete()

    status, body = api.get("/api/v1/cluster/invariants")
    assert status == 200 and gap in [f["executionId"] for f in body["findings"]], body
    status, body = api.post("/api/v1/cluster/invariants/repair")
    assert status == 200 and body["counts"]["journal_gap"] >= 1, body
    for role in ("viewer", "operator", "approver"):
        other = Api(api.base, make_token(f"inv-{role}-{uid}", role))
        assert other.get("/api/v1/cluster/invariants")[0] == 403
        assert other.post("/api/v1/cluster/invariants/repair")[0] == 403
    status, body = api.get("/api/v1/cluster/invariants?limit=0")
    assert status == 400 and "limit" in body["details"], body
    Execution.objects.filter(pk=gap).delete()
