"""The scheduler across a leader's death: SIGKILL the leading coordinator while schedules are due; the standby
fires each due time exactly once (no gap, no duplicate), catching up the times due while no one led."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from tests.cluster.conftest import Scenario, poll
from tests.integration.test_executions import minimal

pytestmark = pytest.mark.cluster

SCHEDULES = 3


def fire_times(s: Scenario, schedule_id: str) -> list[tuple[datetime, str, str | None]]:
    return [
        (row[0], row[1], row[2])
        for row in s.rows(
            "SELECT fire_time, outcome, execution_id FROM schedules_schedulefire "
            "WHERE schedule_id = %s AND backfill_id IS NULL ORDER BY fire_time",
            [schedule_id],
        )
    ]


def test_when_the_leader_is_sigkilled_the_standby_fires_each_due_time_exactly_once(
    make_scenario: Callable[..., Scenario],
) -> None:
    s = make_scenario(env={"WORKFLOW_MIN_NR_OF_MEMBERS": "1"})
    api = s.gateway()
    s.coordinator("c1")
    s.coordinator("c2")
    s.worker("w1")
    s.wait_ready(["w1"])
    body = minimal("scheduled")
    assert api.post("/api/v1/workflows", body)[0] == 201
    ids = []
    for _ in range(SCHEDULES):
        status, created = api.post(
            "/api/v1/schedules",
            {"workflowId": "scheduled", "scheduleType": "fixed_rate", "interval": "1s",
             "catchupPolicy": "all", "overlapPolicy": "allow"},
        )  # fmt: skip
        assert status == 201, created
        ids.append(created["id"])
    poll("fires before the kill", lambda: all(len(fire_times(s, i)) >= 3 for i in ids), timeout=20)

    _, leader = s.term()
    standby = s.node_id("c2" if leader.startswith("c1:") else "c1")
    s.proc(leader.split(":")[0]).kill()
    killed_at = s.rows("SELECT now()")[0][0]
    took = poll("the standby to lead", lambda: s.term()[1] == standby, timeout=20)
    print(f"\nleader {leader} SIGKILLed; {standby} leads after {took:.2f}s")
    poll(
        "fires well after the takeover",
        lambda: all(fire_times(s, i)[-1][0] > killed_at + timedelta(seconds=took + 2) for i in ids),
        timeout=20,
    )
    for schedule_id in ids:
        assert api.post(f"/api/v1/schedules/{schedule_id}/stop")[0] == 200
    time.sleep(0.5)  # a firing transaction that was in flight has committed

    for schedule_id in ids:
        rows = fire_times(s, schedule_id)
        times = [t for t, _, _ in rows]
        start = times[0]
        # no gap and no duplicate: exactly start + k seconds, across the kill
        assert times == [start + timedelta(seconds=k) for k in range(len(times))], times
        assert {outcome for _, outcome, _ in rows} == {"started"}
        assert times[0] < killed_at < times[-1]
        executions = s.rows(
            "SELECT input->>'logicalTime', trigger FROM workflows_execution WHERE id = ANY(%s)",
            [[e for _, _, e in rows]],
        )
        assert sorted(x for x, _ in executions) == [t.isoformat() for t in times]
        assert {t for _, t in executions} == {"schedule"}
        per_schedule = s.rows(
            "SELECT count(*) FROM workflows_execution WHERE input->>'scheduleId' = %s", [schedule_id]
        )
        assert per_schedule[0][0] == len(times)  # nothing started twice, even without a fire row
    leaderless = [
        t for t, _, _ in fire_times(s, ids[0]) if killed_at < t < killed_at + timedelta(seconds=took)
    ]
    assert leaderless, "some times fell due while no coordinator led, and were caught up"
