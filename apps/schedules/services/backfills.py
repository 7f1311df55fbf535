"""Backfills: a schedule's fire times over a past range ``[start, end)``, at most ``max_active`` at once.

The leader advances each running backfill every tick: in one transaction (the ``BackfillRun`` row locked) it
counts the backfill's active executions, records and admits fire times from ``cursor`` into the free slots,
and moves ``cursor`` on. The fire rows are unique per ``(backfill, fire_time)`` and the starts carry the key
``backfill:<id>:<time>``, so a failover neither repeats nor skips an interval.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from apps.cluster import events
from apps.schedules import engine
from apps.schedules.errors import InvalidSchedule
from apps.schedules.models import BackfillRun, BackfillState, FireOutcome, ScheduleFire
from apps.schedules.services import schedules
from apps.schedules.services.firing import active_runs, db_now, start
from apps.workflows.services import admission
from workflow_engine.errors import NotFound

MAX_INTERVALS = 10_000
BATCH = 20


def _series(spec: engine.Spec, start: datetime) -> engine.Spec:
    """The times a backfill walks: a fixed rate or cron in its own phase; a fixed delay as a fixed rate
    from ``start`` (runs of no length)."""
    if spec.type == "fixed_delay":
        return engine.Spec("fixed_rate", start, spec.interval, None, spec.tz, timedelta(0), spec.schedule_id)
    return engine.Spec(
        spec.type,
        spec.start_at if spec.type == "fixed_rate" else start,
        spec.interval,
        spec.cron,
        spec.tz,
        timedelta(0),
        spec.schedule_id,
    )


def times(spec: engine.Spec, start: datetime, end: datetime) -> list[datetime]:
    series = _series(spec, start)
    found: list[datetime] = []
    current = engine.next_after(series, start - timedelta(microseconds=1))
    while current is not None and current < end:
        found.append(current)
        if len(found) > MAX_INTERVALS:
            raise InvalidSchedule(
                f"The range holds more than {MAX_INTERVALS} fire times.", details={"end": ["Range too long."]}
            )
        current = engine.next_after(series, current)
    return found


def create(schedule_id: str, start: datetime, end: datetime, max_active: int) -> BackfillRun:
    """A running backfill; the leader starts its executions from its next tick."""
    if end <= start:
        raise InvalidSchedule("end must be after start.", details={"end": ["Must be after start."]})
    if end > timezone.now():
        raise InvalidSchedule("A backfill covers the past.", details={"end": ["Must not be in the future."]})
    if max_active < 1:
        raise InvalidSchedule("maxActive must be at least 1.", details={"maxActive": ["At least 1."]})
    schedule = schedules.get(schedule_id)
    if schedule.type == "immediate":
        raise InvalidSchedule(
            "An immediate schedule has no fire times to backfill.",
            details={"scheduleId": ["An immediate schedule cannot be backfilled."]},
        )
    admission.require_runnable(schedule.workflow_id)  # a draft: 400 listing its problems
    found = times(schedules.spec_of(schedule), start, end)
    with transaction.atomic():
        run = BackfillRun.objects.create(
            id=f"bf_{uuid.uuid4().hex}",
            schedule=schedule,
            start=start,
            end=end,
            max_active=max_active,
            cursor=found[0] if found else None,
            total=len(found),
            state=BackfillState.RUNNING if found else BackfillState.COMPLETED,
        )
        events.record(
            "schedule_backfill",
            workflow_id=schedule.workflow_id,
            schedule_id=schedule.id,
            backfill_id=run.id,
            start=start.isoformat(),
            end=end.isoformat(),
            intervals=len(found),
            max_active=max_active,
        )
    return run


def get(backfill_id: str) -> BackfillRun:
    run = BackfillRun.objects.filter(pk=backfill_id).first()
    if run is None:
        raise NotFound(f"Backfill {backfill_id!r} not found.")
    return run


def advance(limit: int = BATCH) -> int:
    """Start what the running backfills' caps allow; returns how many executions started."""
    started = 0
    with transaction.atomic():
        runs = list(
            BackfillRun.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("schedule")
            .filter(state=BackfillState.RUNNING)
            .order_by("created_at")[:limit]
        )
        if runs:
            now = db_now()
        for run in runs:
            started += _advance(run, now)
    return started


def _advance(run: BackfillRun, now: datetime) -> int:
    active = len(active_runs(run.schedule_id, run.id))
    series = _series(schedules.spec_of(run.schedule, now), run.start)
    started = 0
    while run.cursor is not None and active + started < run.max_active:
        fire, _ = ScheduleFire.objects.get_or_create(
            backfill=run,
            fire_time=run.cursor,
            defaults={"schedule_id": run.schedule_id, "due_at": run.cursor, "outcome": FireOutcome.STARTED},
        )
        fire.schedule = run.schedule
        started += start(fire, now)
        run.started += 1
        following = engine.next_after(series, run.cursor)
        run.cursor = following if following is not None and following < run.end else None
    if run.cursor is None and active == 0 and started == 0:
        run.state, run.finished_at = BackfillState.COMPLETED, now
    run.save(update_fields=["cursor", "started", "state", "finished_at"])
    return started
