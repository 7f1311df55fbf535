"""Firing schedules: the coordinator leader calls ``tick()`` every tick (about 250 ms).

Exactly once per fire time, across failovers: each due schedule is claimed with ``FOR UPDATE SKIP LOCKED``,
and in that one transaction its ``ScheduleFire`` rows are inserted (unique per ``(schedule, fire_time)``),
its executions admitted and its ``next_fire_at`` advanced. A leader that dies mid-way commits nothing, so
its successor fires the same times; a deposed leader still running cannot insert a fire time twice. The
start's idempotency key ``schedule:<id>:<time>`` is a second guard: a start is never duplicated even if a
fire row were lost.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction

from apps.schedules import engine, metrics
from apps.schedules.models import FireOutcome, Schedule, ScheduleFire, ScheduleState, ScheduleType
from apps.schedules.services.schedules import catchup_window, spec_of
from apps.workflows.engine.state import TERMINAL_STATUSES
from apps.workflows.errors import InvalidDefinition
from apps.workflows.services import control
from apps.workflows.services.executions import admit
from workflow_engine.errors import Conflict, NotFound

logger = logging.getLogger(__name__)

BATCH = 100
_HOLDS_A_RUN = {"started", "queued", "duplicate"}


def db_now() -> datetime:
    """PostgreSQL's clock: every process agrees on it, whatever the hosts' clocks say."""
    with connection.cursor() as cur:
        cur.execute("SELECT now()")
        return cur.fetchone()[0]  # type: ignore[index]


def fire_due(limit: int = BATCH) -> int:
    """Fire the schedules due now (up to ``limit``); returns how many fire times started an execution."""
    started = 0
    with transaction.atomic():
        now = db_now()
        due = list(
            Schedule.objects.select_for_update(skip_locked=True)
            .filter(state=ScheduleState.ACTIVE, next_due_at__lte=now)
            .order_by("next_due_at")[:limit]
        )
        for schedule in due:
            try:
                with transaction.atomic():  # a broken schedule must not hold up the others
                    started += _fire(schedule, now)
            except Exception:
                logger.exception("schedule could not fire", extra={"schedule": schedule.id})
    return started


def _fire(schedule: Schedule, now: datetime) -> int:
    assert schedule.next_fire_at is not None
    spec = spec_of(schedule, now)
    plan = engine.plan(spec, schedule.next_fire_at, now, schedule.catchup_policy, catchup_window(schedule))
    for missed in plan.missed:
        _record(schedule, spec, missed, FireOutcome.MISSED)
    missed_count = len(plan.missed) + plan.uncounted_missed
    if missed_count:
        transaction.on_commit(lambda: metrics.schedule_missed_total.inc(missed_count))
    started = sum(_fire_one(schedule, spec, t, now) for t in plan.fire)
    latest = max([*plan.fire, *plan.missed], default=schedule.next_fire_at)
    next_fire = plan.next_fire
    if schedule.type == ScheduleType.FIXED_DELAY:
        # the next time is known when the run ends (after_runs); a skipped fire counts as a run of no length
        next_fire = None if started else engine.after_run(spec, now)
    schedule.last_fire_at = latest
    schedule.next_fire_at = next_fire
    schedule.next_due_at = engine.due_at(spec, next_fire) if next_fire else None
    schedule.save(update_fields=["last_fire_at", "next_fire_at", "next_due_at", "updated_at"])
    return started


def _record(schedule: Schedule, spec: engine.Spec, fire_time: datetime, outcome: str) -> ScheduleFire | None:
    """The fire row, or ``None`` if this time was already recorded (by a previous leader)."""
    try:
        with transaction.atomic():
            return ScheduleFire.objects.create(
                schedule=schedule, fire_time=fire_time, due_at=engine.due_at(spec, fire_time), outcome=outcome
            )
    except IntegrityError:
        logger.warning("fire time already recorded", extra={"schedule": schedule.id, "fire_time": fire_time})
        return None


def _fire_one(schedule: Schedule, spec: engine.Spec, fire_time: datetime, now: datetime) -> int:
    running = active_runs(schedule.id)
    buffered = ScheduleFire.objects.filter(schedule=schedule, outcome=FireOutcome.BUFFERED).exists()
    if buffered and not running:
        # the run ended after this round's release_buffered looked: the buffered fire still goes first
        release_buffered(schedule.id)
        running = active_runs(schedule.id)
        buffered = ScheduleFire.objects.filter(schedule=schedule, outcome=FireOutcome.BUFFERED).exists()
    action = engine.overlap_action(schedule.overlap_policy, len(running), buffered)
    if action in ("skip", "buffer"):
        outcome = FireOutcome.SKIPPED if action == "skip" else FireOutcome.BUFFERED
        if _record(schedule, spec, fire_time, outcome):
            _count(outcome, "schedule")
        return 0
    if action == "cancel_and_start":
        _cancel(schedule, running)
    fire = _record(schedule, spec, fire_time, FireOutcome.STARTED)
    if fire is None:
        return 0
    return start(fire, now)


def start(fire: ScheduleFire, now: datetime) -> int:
    """Admit the execution of a recorded fire; returns 1 if it holds a run (started or queued)."""
    schedule_id = fire.schedule_id
    logical = fire.fire_time.isoformat()
    inputs: dict[str, Any] = {"logicalTime": logical, "scheduleId": schedule_id}
    if fire.backfill_id:
        inputs["backfillId"] = fire.backfill_id
        key, trigger = f"backfill:{fire.backfill_id}:{logical}", "backfill"
    else:
        key, trigger = f"schedule:{schedule_id}:{logical}", "schedule"
    try:
        result = admit(fire.schedule.workflow_id, idempotency_key=key, trigger=trigger, input=inputs)
    # the workflow's concurrency policy rejects, it is gone, or its latest save is a draft (not run until
    # a valid save; the fire is recorded as skipped)
    except (Conflict, NotFound, InvalidDefinition) as exc:
        logger.warning("scheduled start refused: %s", exc.message, extra={"schedule": schedule_id})
        result = None
    holds = result is not None and result.outcome in _HOLDS_A_RUN
    fire.execution = result.execution if result else None
    fire.outcome = _outcome(result.outcome if result else "skipped")
    fire.active = holds
    fire.save(update_fields=["execution", "outcome", "active"])
    lag = max(0.0, (now - fire.due_at).total_seconds())
    kind = trigger
    transaction.on_commit(lambda: metrics.schedule_lag_seconds.observe(lag) if holds else None)
    _count(fire.outcome, kind)
    return int(holds)


def _outcome(admitted: str) -> str:
    return {"queued": FireOutcome.QUEUED, "skipped": FireOutcome.SKIPPED}.get(admitted, FireOutcome.STARTED)


def _count(outcome: str, kind: str) -> None:
    transaction.on_commit(lambda: metrics.schedule_fires_total.labels(outcome, kind).inc())


def _cancel(schedule: Schedule, running: list[str]) -> None:
    for execution_id in running:
        with contextlib.suppress(Conflict):  # it ended meanwhile
            control.cancel(
                execution_id,
                by=f"schedule:{schedule.id}",
                reason="cancelled by the schedule's next run (overlap policy cancel_previous)",
                key=f"schedule-overlap:{schedule.id}",
            )


def active_runs(schedule_id: str, backfill_id: str | None = None) -> list[str]:
    """Ids of the schedule's (or its backfill's) executions still holding a run, clearing the flag of
    those that ended."""
    rows = list(
        ScheduleFire.objects.filter(
            schedule_id=schedule_id, backfill_id=backfill_id, active=True
        ).values_list("id", "execution_id", "execution__status")
    )
    ended = [pk for pk, execution, status in rows if execution is None or status in TERMINAL_STATUSES]
    if ended:
        ScheduleFire.objects.filter(pk__in=ended).update(active=False)
    return [execution for pk, execution, status in rows if pk not in ended]


def release_buffered(schedule_id: str | None = None) -> int:
    """buffer_one: start a buffered fire once the schedule's running execution has ended (all schedules',
    or one's)."""
    released = 0
    with transaction.atomic():
        now = db_now()
        fires = (
            ScheduleFire.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("schedule")
            .filter(outcome=FireOutcome.BUFFERED, schedule__state=ScheduleState.ACTIVE)
        )
        if schedule_id is not None:
            fires = fires.filter(schedule_id=schedule_id)
        for fire in fires[:BATCH]:
            if not active_runs(fire.schedule_id):
                released += start(fire, now)
    return released


def after_runs() -> int:
    """fixed_delay: once the last run has ended, the next fire is its end plus the interval."""
    moved = 0
    with transaction.atomic():
        waiting = Schedule.objects.select_for_update(skip_locked=True).filter(
            state=ScheduleState.ACTIVE, type=ScheduleType.FIXED_DELAY, next_fire_at__isnull=True
        )
        for schedule in waiting[:BATCH]:
            if active_runs(schedule.id):
                continue
            last = (
                ScheduleFire.objects.filter(schedule=schedule, backfill=None)
                .select_related("execution")
                .order_by("-fire_time")
                .first()
            )
            ended = last.execution.ended_at if last and last.execution else None
            spec = spec_of(schedule)
            next_fire = engine.after_run(spec, ended or db_now())
            schedule.next_fire_at, schedule.next_due_at = next_fire, engine.due_at(spec, next_fire)
            schedule.save(update_fields=["next_fire_at", "next_due_at", "updated_at"])
            moved += 1
    return moved
