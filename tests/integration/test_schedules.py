"""Schedules end to end on a real node: the API, the leader firing them, catch-up after downtime, overlap
policies, backfills with a concurrency cap, and the original's ``metadata.schedule``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from apps.schedules.models import BackfillRun, Schedule, ScheduleFire
from apps.workflows.engine.state import ACTIVE_STATUSES
from apps.workflows.models import Execution
from tests.harness import Api, wait_for
from tests.integration.test_executions import minimal, step, workflow

pytestmark = pytest.mark.usefixtures("live_db")


@pytest.fixture(autouse=True)
def _stop_schedules(live_db: None) -> Iterator[None]:
    """The session's node fires every active schedule: stop this test's when it ends."""
    before = set(Schedule.objects.values_list("id", flat=True))
    yield
    Schedule.objects.exclude(id__in=before).update(state="stopped", next_fire_at=None, next_due_at=None)


def create_workflow(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    status, created = api.post("/api/v1/workflows", body)
    assert status == 201, created
    return dict(created)


def delayed(workflow_id: str, duration: str) -> dict[str, Any]:
    """execution.input -> delay -> count: a run that lasts ``duration`` and shows its logical time."""
    return workflow(
        workflow_id,
        [
            step("in", "execution.input", "source"),
            step("wait", "delay", "transform", duration=duration),
            step("out", "aggregate.count", "sink"),
        ],
        [("in", "wait"), ("wait", "out")],
    )


def add_schedule(api: Api, **body: Any) -> dict[str, Any]:
    status, created = api.post("/api/v1/schedules", body)
    assert status == 201, created
    return dict(created)


def fires(schedule_id: str) -> list[ScheduleFire]:
    return list(ScheduleFire.objects.filter(schedule_id=schedule_id, backfill=None).order_by("fire_time"))


def active(schedule_id: str, backfill: str | None = None) -> int:
    return Execution.objects.filter(
        schedule_fires__schedule_id=schedule_id,
        schedule_fires__backfill_id=backfill,
        status__in=ACTIVE_STATUSES,
    ).count()


# --- the API ----------------------------------------------------------------------------------------------


def test_the_original_routes_work_and_name_the_bad_field(api: Api, uid: str) -> None:
    wf = create_workflow(api, minimal(f"sched-api-{uid}"))["workflowId"]
    status, body = api.get("/api/v1/schedules/templates")
    assert status == 200 and len(body["templates"]) == 6
    assert body["templates"][4] == {
        "name": "Cron: Daily at midnight",
        "scheduleType": "cron",
        "cronExpression": "0 0 * * *",
    }
    for bad, field in [
        ({"scheduleType": "weekly"}, "scheduleType"),
        ({"scheduleType": "fixed_rate", "interval": "100ms"}, "interval"),
        ({"scheduleType": "cron", "cronExpression": "61 * * * *"}, "cronExpression"),
    ]:
        status, err = api.post("/api/v1/schedules/add", {"workflowId": wf, **bad})
        assert status == 400 and list(err["details"]) == [field], err
    assert (
        "Unknown schedule type: weekly"
        in api.post("/api/v1/schedules/add", {"workflowId": wf, "scheduleType": "weekly"})[1]["message"]
    )
    assert api.post("/api/v1/schedules/add", {"workflowId": "nope", "scheduleType": "immediate"})[0] == 404

    status, added = api.post("/api/v1/schedules/add", {"workflowId": wf, "scheduleType": "cron",
                                                       "cronExpression": "0 9 * * MON"})  # fmt: skip
    assert status == 200 and added["message"] == "Schedule added successfully", added
    assert added["workflowId"] == wf and added["scheduleType"] == "cron"
    sid = added["scheduleId"]
    status, listed = api.get(f"/api/v1/schedules?workflowId={wf}")
    assert status == 200 and listed["count"] == 1 and listed["schedules"][0]["id"] == sid
    assert listed["schedules"][0]["cronExpression"] == "0 9 * * MON"

    status, preview = api.get(f"/api/v1/schedules/{sid}/preview?count=3")
    times = [datetime.fromisoformat(t) for t in preview["fireTimes"]]
    assert status == 200 and len(times) == 3 and all(t.weekday() == 0 and t.hour == 9 for t in times)
    assert times[1] - times[0] == timedelta(days=7)

    # pause, resume and stop by workflow id (the original's {id}) or by schedule id
    status, paused = api.post(f"/api/v1/schedules/{wf}/pause")
    assert status == 200 and paused == {"message": "Schedule paused", "workflowId": wf, "scheduleIds": [sid]}
    assert api.get(f"/api/v1/schedules/{sid}")[1]["state"] == "paused"
    assert api.post(f"/api/v1/schedules/{sid}/resume")[0] == 200
    assert api.get(f"/api/v1/schedules/{sid}")[1]["nextFireAt"] == preview["fireTimes"][0]

    status, patched = api.call("PATCH", f"/api/v1/schedules/{sid}", {"timezone": "Europe/Berlin"})
    assert status == 200 and patched["timezone"] == "Europe/Berlin" and patched["scheduleType"] == "cron"
    status, err = api.call("PATCH", f"/api/v1/schedules/{sid}", {"overlapPolicy": "sometimes"})
    assert status == 400 and "overlapPolicy" in err["details"]
    status, put = api.call(
        "PUT", f"/api/v1/schedules/{sid}", {"scheduleType": "fixed_rate", "interval": "1h"}
    )
    assert status == 200 and put["interval"] == "1h" and put["cronExpression"] is None

    assert api.post(f"/api/v1/schedules/{wf}/stop")[1]["scheduleIds"] == [sid]
    assert api.post(f"/api/v1/schedules/{sid}/resume")[0] == 409
    assert api.call("DELETE", f"/api/v1/schedules/{sid}")[0] == 200
    assert api.get(f"/api/v1/schedules/{sid}")[0] == 404


# --- metadata.schedule ------------------------------------------------------------------------------------


def test_a_workflow_with_the_originals_metadata_schedule_gets_a_working_schedule(api: Api, uid: str) -> None:
    body = delayed(f"sched-meta-{uid}", "10ms")
    body["metadata"]["schedule"] = {"enabled": True, "scheduleType": "fixed_rate", "interval": "1s"}
    created = create_workflow(api, body)
    assert created["scheduleStatus"] == "Scheduled: Fixed Rate: 1s"
    [schedule] = Schedule.objects.filter(workflow_id=body["id"])
    assert (schedule.source, schedule.type, schedule.interval, schedule.state) == (
        "metadata",
        "fixed_rate",
        "1s",
        "active",
    )

    fire = wait_for(
        "a fire", lambda: next((f for f in fires(schedule.id) if f.execution_id), None), timeout=15
    )
    done = api.wait_finished(fire.execution_id or "")
    assert done["status"] == "completed"
    execution = Execution.objects.get(pk=fire.execution_id)
    assert execution.trigger == "schedule"
    assert execution.input == {"logicalTime": fire.fire_time.isoformat(), "scheduleId": schedule.id}

    # the original's other strings; an update that disables it removes the schedule
    body["metadata"]["schedule"] = {"enabled": False, "scheduleType": "fixed_rate"}
    assert api.call("PUT", f"/api/v1/workflows/{body['id']}", body)[0] == 200
    assert not Schedule.objects.filter(workflow_id=body["id"]).exists()
    cron = minimal(f"sched-meta-cron-{uid}")
    cron["metadata"]["schedule"] = {"enabled": True, "scheduleType": "cron", "cronExpression": "0 * * * *"}
    assert create_workflow(api, cron)["scheduleStatus"] == "Scheduled: Cron: 0 * * * *"
    assert create_workflow(api, minimal(f"sched-meta-none-{uid}"))["scheduleStatus"] == (
        "Immediate task - execute manually"
    )
    bad = minimal(f"sched-meta-bad-{uid}")
    bad["metadata"]["schedule"] = {"enabled": True, "scheduleType": "fixed_rate", "interval": "soon"}
    status, draft = api.post("/api/v1/workflows", bad)  # a draft naming the problem, and no schedule
    assert status == 201 and "metadata.schedule.interval" in draft["problems"], draft
    assert draft["valid"] is False and not Schedule.objects.filter(workflow_id=bad["id"]).exists()


# --- catch-up after downtime ------------------------------------------------------------------------------


def test_after_ten_intervals_of_downtime_each_catchup_policy_does_what_it_says(api: Api, uid: str) -> None:
    wf = create_workflow(api, minimal(f"sched-catchup-{uid}"))["workflowId"]
    now = timezone.now()
    start = now - timedelta(minutes=52, seconds=30)  # due: start + 5m * k, k = 0..10; the latest 2.5m late
    ids = {}
    for policy in ("skip", "once", "all"):
        created = add_schedule(
            api,
            workflowId=wf,
            scheduleType="fixed_rate",
            interval="5m",
            startAt=start.isoformat(),
            catchupPolicy=policy,
            catchupWindow="16m",
            overlapPolicy="allow",
            enabled=False,
        )
        ids[policy] = created["id"]
    # the leader was down: the schedules' next fire time is ten intervals in the past
    Schedule.objects.filter(id__in=ids.values()).update(state="active", next_fire_at=start, next_due_at=start)

    due = [start + timedelta(minutes=5 * k) for k in range(11)]
    for sid in ids.values():
        wait_for("the leader to catch up", lambda sid=sid: len(fires(sid)) == 11, timeout=15)
    outcomes = {p: {f.fire_time: f.outcome for f in fires(sid)} for p, sid in ids.items()}
    assert all(list(o) == due for o in outcomes.values())
    assert set(outcomes["skip"].values()) == {"missed"}
    assert [t for t, o in outcomes["once"].items() if o == "started"] == [due[-1]]
    assert [t for t, o in outcomes["all"].items() if o == "started"] == due[-3:]  # within the 16m window
    for sid in ids.values():
        schedule = Schedule.objects.get(pk=sid)
        assert schedule.next_fire_at == due[-1] + timedelta(minutes=5)  # the phase is kept
        assert Execution.objects.filter(schedule_fires__schedule_id=sid).count() == sum(
            o == "started" for o in outcomes[{v: k for k, v in ids.items()}[sid]].values()
        )


# --- overlap policies -------------------------------------------------------------------------------------


OBSERVE = 5.0


@pytest.fixture(scope="module")
def overlapping(node: dict[str, Any], django_db_blocker: Any) -> dict[str, Any]:
    """Four schedules firing every second a workflow that runs two, one per overlap policy, observed
    together for five seconds: the most active runs seen at once (sampled every 50 ms), then stopped."""
    api: Api = node["api"]
    suffix = str(int(time.time() * 1000))
    with django_db_blocker.unblock():
        ids = {}
        for policy in ("skip", "buffer_one", "allow", "cancel_previous"):
            wf = create_workflow(api, delayed(f"sched-overlap-{policy}-{suffix}", "2s"))["workflowId"]
            start = (timezone.now() + timedelta(seconds=1)).isoformat()
            ids[policy] = add_schedule(
                api,
                workflowId=wf,
                scheduleType="fixed_rate",
                interval="1s",
                startAt=start,
                overlapPolicy=policy,
            )["id"]
        peak = dict.fromkeys(ids, 0)
        deadline = time.monotonic() + OBSERVE
        while time.monotonic() < deadline:
            for policy, sid in ids.items():
                peak[policy] = max(peak[policy], active(sid))
            time.sleep(0.05)
        for sid in ids.values():
            api.post(f"/api/v1/schedules/{sid}/stop")
    return {"ids": ids, "peak": peak, "api": api}


def test_overlap_skip_skips_fires_while_a_run_is_active(overlapping: dict[str, Any]) -> None:
    sid = overlapping["ids"]["skip"]
    outcomes = [f.outcome for f in fires(sid)]
    assert overlapping["peak"]["skip"] == 1
    assert outcomes.count("started") >= 2 and outcomes.count("skipped") >= 2, outcomes


def test_overlap_buffer_one_starts_one_buffered_fire_when_the_run_ends(overlapping: dict[str, Any]) -> None:
    sid = overlapping["ids"]["buffer_one"]
    rows = fires(sid)
    assert overlapping["peak"]["buffer_one"] == 1
    started = [f for f in rows if f.outcome == "started"]
    assert len(started) >= 2 and any(f.outcome == "skipped" for f in rows), [f.outcome for f in rows]
    first, second = (Execution.objects.get(pk=f.execution_id) for f in started[:2])
    # the buffered fire is the one due right after the first started, and it starts when that one ends
    assert started[1].fire_time == started[0].fire_time + timedelta(seconds=1)
    assert first.ended_at is not None and second.created_at >= first.ended_at


def test_overlap_allow_runs_them_side_by_side(overlapping: dict[str, Any]) -> None:
    sid = overlapping["ids"]["allow"]
    assert overlapping["peak"]["allow"] >= 2
    assert {f.outcome for f in fires(sid)} == {"started"}


def test_overlap_cancel_previous_cancels_the_running_one(overlapping: dict[str, Any]) -> None:
    sid = overlapping["ids"]["cancel_previous"]
    rows = [f for f in fires(sid) if f.execution_id]
    assert len(rows) >= 3 and {f.outcome for f in rows} == {"started"}
    api: Api = overlapping["api"]
    statuses = [api.wait_finished(f.execution_id or "", timeout=20)["status"] for f in rows]
    assert statuses[:-1] == ["cancelled"] * (len(rows) - 1), statuses
    assert statuses[-1] == "completed"


# --- backfill ---------------------------------------------------------------------------------------------


def test_a_backfill_of_20_intervals_with_a_cap_of_3_never_runs_more_than_3_and_runs_each_once(
    api: Api, uid: str
) -> None:
    wf = create_workflow(api, delayed(f"sched-backfill-{uid}", "500ms"))["workflowId"]
    anchor = (timezone.now() - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    sid = add_schedule(
        api,
        workflowId=wf,
        scheduleType="fixed_rate",
        interval="1m",
        startAt=anchor.isoformat(),
        enabled=False,
    )["id"]
    end = anchor + timedelta(minutes=20)
    status, run = api.post(
        f"/api/v1/schedules/{sid}/backfill",
        {"start": anchor.isoformat(), "end": end.isoformat(), "maxActive": 3},
    )
    assert status == 202 and run["total"] == 20 and run["state"] == "running", run

    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(active(sid, run["id"]))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        wait_for(
            "the backfill to complete",
            lambda: BackfillRun.objects.get(pk=run["id"]).state == "completed",
            timeout=60,
            interval=0.1,
        )
    finally:
        stop.set()
        sampler.join()
    assert max(samples) == 3, samples

    expected = [anchor + timedelta(minutes=k) for k in range(20)]
    rows = list(ScheduleFire.objects.filter(backfill_id=run["id"]).order_by("fire_time"))
    assert [f.fire_time for f in rows] == expected
    executions = Execution.objects.filter(schedule_fires__backfill_id=run["id"])
    assert sorted(e.input["logicalTime"] for e in executions) == [t.isoformat() for t in expected]
    assert {(e.trigger, e.status) for e in executions} == {("backfill", "completed")}
    assert api.get(f"/api/v1/backfills/{run['id']}")[1]["started"] == 20


def test_the_backfill_command_queues_a_backfill_for_the_leader(api: Api, uid: str, tmp_path: Path) -> None:
    wf = create_workflow(api, minimal(f"sched-cmd-{uid}"))["workflowId"]
    anchor = (timezone.now() - timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    sid = add_schedule(api, workflowId=wf, scheduleType="cron", cronExpression="*/10 * * * *", enabled=False)[
        "id"
    ]
    out = StringIO()
    call_command(
        "backfill_schedule",
        sid,
        "--start",
        anchor.isoformat(),
        "--end",
        (anchor + timedelta(hours=1)).isoformat(),
        "--max-active",
        "2",
        stdout=out,
    )
    run = BackfillRun.objects.get(schedule_id=sid)
    assert (run.total, run.max_active) == (6, 2) and "6 interval(s)" in out.getvalue()
    wait_for("the backfill", lambda: BackfillRun.objects.get(pk=run.id).state == "completed", timeout=30)
    assert ScheduleFire.objects.filter(backfill=run).count() == 6
