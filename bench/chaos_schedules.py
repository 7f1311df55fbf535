"""The fault campaign's schedules (``bench/chaos.py``): a few fast fixed-rate schedules fired through the
faults, and the check that each fired exactly once per fire time.

A fixed rate fires at ``start_at + k * interval`` (docs/scheduler.md). With ``catchupPolicy: all`` and a
window of an hour, a time the leader missed while it was down fires late, never not at all; with
``overlapPolicy: allow`` every fire starts an execution. So over the campaign each schedule's fires must be
``k = 0, 1, ..., last`` with no gap and no repeat, each ``started`` with an execution that completed, and the
last one close to when the schedules were stopped (the scheduler did not stall).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import psycopg

from apps.workflows.engine import history  # pure: the history rules, shared with check_invariants

WORKFLOW_ID = "chaos-tick"
INTERVALS = ("2s", "3s")
# how long after its due time a fire may come, at most, across a leader failover (the lease TTL, a new
# leader's first tick, a PostgreSQL restart) before the schedule counts as stalled
STALL_SLACK = timedelta(seconds=20)

Add = Callable[[str, str | None, str], None]

# The Django imports are made in the functions: Django is set up only once the campaign's servers run.


def definition() -> dict[str, Any]:
    return {
        "id": WORKFLOW_ID,
        "name": WORKFLOW_ID,
        "nodes": [
            {"id": "in", "type": "source", "nodeType": "execution.input", "config": {}},
            {"id": "nap", "type": "transform", "nodeType": "delay", "config": {"duration": "500ms"}},
            {"id": "log", "type": "sink", "nodeType": "console.log", "config": {"limit": 1}},
        ],
        "edges": [
            {"id": "e0", "source": "in", "target": "nap"},
            {"id": "e1", "source": "nap", "target": "log"},
        ],
    }


def create() -> list[str]:
    """The campaign's schedules, firing from one interval from now on; their ids."""
    from apps.schedules.services import schedules

    fields = {
        "type": "fixed_rate",
        "catchup_policy": "all",
        "catchup_window": "1h",
        "overlap_policy": "allow",
    }
    return [schedules.create(WORKFLOW_ID, {**fields, "interval": i}).id for i in INTERVALS]


def stop(schedule_ids: list[str]) -> datetime:
    """Stop the schedules (retried while PostgreSQL comes back from a fault); when they stopped."""
    from django.db import DatabaseError, connection
    from django.utils import timezone

    from apps.schedules.services import schedules

    for attempt in range(60):
        connection.close()  # PostgreSQL may have restarted under this process's connection
        try:
            for schedule_id in schedule_ids:
                schedules.stop(schedule_id)
            return timezone.now()
        except DatabaseError:
            if attempt == 59:
                raise
            time.sleep(1.0)
    raise AssertionError("unreachable")


def check(
    dsn: str, schedule_ids: list[str], stopped_at: datetime, add: Add
) -> tuple[dict[str, int], list[str]]:
    """Anomalies of the schedules' fires; the fires per schedule and the executions they started."""
    with psycopg.connect(dsn, connect_timeout=5, autocommit=True) as conn:
        schedules = conn.execute(
            "SELECT id, start_at, interval FROM schedules_schedule WHERE id = ANY(%s)", [schedule_ids]
        ).fetchall()
        fires = conn.execute(
            "SELECT f.schedule_id, f.fire_time, f.outcome, f.execution_id, e.status "
            "FROM schedules_schedulefire f LEFT JOIN workflows_execution e ON e.id = f.execution_id "
            "WHERE f.schedule_id = ANY(%s) AND f.backfill_id IS NULL ORDER BY f.fire_time",
            [schedule_ids],
        ).fetchall()
    counts: dict[str, int] = {}
    executions: list[str] = []
    for schedule_id, start_at, interval in schedules:
        mine = [f[1:] for f in fires if f[0] == schedule_id]
        counts[schedule_id] = len(mine)
        executions += [f[2] for f in mine if f[2]]
        check_one(schedule_id, start_at, interval, mine, stopped_at, add)
    return counts, executions


def check_one(
    schedule_id: str,
    start_at: datetime,
    interval: str,
    fires: list[tuple[datetime, str, str | None, str | None]],
    stopped_at: datetime,
    add: Add,
) -> None:
    from apps.schedules.engine import parse_duration

    period = parse_duration(interval)
    name = f"schedule {schedule_id} (every {interval})"
    last = max((fire_time for fire_time, *_ in fires), default=None)
    due = stopped_at - period - STALL_SLACK  # the last fire time that must have fired by the stop
    if last is None or last < due:
        add("schedule_stalled", None, f"{name}: last fire {last}, stopped at {stopped_at.isoformat()}")
    expected = []  # every fire time from the first to the last one that fired
    while last is not None and start_at + len(expected) * period <= last:
        expected.append(start_at + len(expected) * period)
    fired = [(schedule_id, fire_time) for fire_time, *_ in fires]
    for problem in history.schedule_fire_problems(fired, {schedule_id: expected}):
        add(problem.kind, None, f"{name}: {problem.detail}")
    for fire_time, outcome, execution_id, status in fires:
        if outcome != "started" or execution_id is None:
            add("schedule_fire_not_started", execution_id, f"{name}: {fire_time.isoformat()} was {outcome}")
        elif status != "completed":
            add("schedule_run_not_completed", execution_id, f"{name}: {fire_time.isoformat()}: {status}")
