"""Schedules: create, update, pause, resume, stop, delete, preview, and the sync from ``metadata.schedule``.

Each change runs in a transaction that locks the schedule row, so it never interleaves with the leader
firing it (``firing.py`` locks the same row), and records a cluster event.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps.cluster import events
from apps.schedules import engine
from apps.schedules.errors import InvalidSchedule
from apps.schedules.models import FireOutcome, Schedule, ScheduleFire, ScheduleState
from apps.workflows.models import Workflow
from apps.workflows.services import admission
from workflow_engine.errors import Conflict, NotFound

SPEC_FIELDS = ("type", "interval", "cron_expression", "timezone", "start_at", "jitter")
POLICY_FIELDS = ("catchup_policy", "catchup_window", "overlap_policy", "name")

# the original's six templates (origin-product.md §4)
TEMPLATES = [
    {"name": "Daily", "scheduleType": "fixed_rate", "interval": "1d"},
    {"name": "Hourly", "scheduleType": "fixed_rate", "interval": "1h"},
    {"name": "Every 30 minutes", "scheduleType": "fixed_rate", "interval": "30m"},
    {"name": "Every 5 minutes", "scheduleType": "fixed_rate", "interval": "5m"},
    {"name": "Cron: Daily at midnight", "scheduleType": "cron", "cronExpression": "0 0 * * *"},
    {"name": "Cron: Every hour", "scheduleType": "cron", "cronExpression": "0 * * * *"},
]


def new_schedule_id() -> str:
    return f"sch_{uuid.uuid4().hex}"


def spec_of(schedule: Schedule, now: datetime | None = None) -> engine.Spec:
    fields = {f: getattr(schedule, f) for f in SPEC_FIELDS}
    fields["cron"] = fields.pop("cron_expression")
    return engine.spec_from(fields, now=now or timezone.now(), schedule_id=schedule.id)


def _validated(fields: Mapping[str, Any], now: datetime, schedule_id: str) -> engine.Spec:
    """The spec, or ``InvalidSchedule`` naming the API field."""
    try:
        spec = engine.spec_from(
            {**fields, "cron": fields.get("cron_expression")}, now=now, schedule_id=schedule_id
        )
        engine.parse_duration(fields.get("catchup_window") or "1h", "catchupWindow")
    except engine.ScheduleInvalid as exc:
        raise InvalidSchedule(next(iter(exc.problems.values()))[0], details=exc.problems) from None
    return spec


def _normalized(fields: dict[str, Any]) -> dict[str, Any]:
    """Store the defaults the spec used, so what the API shows is what fires."""
    kind = fields["type"]
    if kind in ("fixed_rate", "fixed_delay"):
        fields["interval"] = (fields.get("interval") or engine.DEFAULT_INTERVAL).strip().lower()
        fields["cron_expression"] = ""
    elif kind == "cron":
        fields["cron_expression"] = " ".join((fields.get("cron_expression") or engine.DEFAULT_CRON).split())
        fields["interval"] = ""
    else:
        fields["interval"] = fields["cron_expression"] = ""
    fields["timezone"] = fields.get("timezone") or "UTC"
    return fields


def _set_next(schedule: Schedule, spec: engine.Spec, next_fire: datetime | None) -> None:
    schedule.next_fire_at = next_fire
    schedule.next_due_at = engine.due_at(spec, next_fire) if next_fire else None


def create(workflow_id: str, fields: Mapping[str, Any], *, source: str = "api") -> Schedule:
    """A new schedule, active unless ``state`` says paused. ``fields`` are the model's names."""
    now = timezone.now()
    schedule_id = new_schedule_id()
    data = _normalized(dict(fields))
    spec = _validated(data, now, schedule_id)
    data["start_at"] = spec.start_at
    with transaction.atomic():
        admission.require_runnable(workflow_id)  # 404, or a draft's 400 listing its problems
        schedule = Schedule(id=schedule_id, workflow_id=workflow_id, source=source, **data)
        if schedule.state == ScheduleState.ACTIVE:
            _set_next(schedule, spec, engine.first_fire(spec))
        schedule.save(force_insert=True)
        _event("schedule_created", schedule)
    return schedule


def get(schedule_id: str) -> Schedule:
    schedule = Schedule.objects.filter(pk=schedule_id).first()
    if schedule is None:
        raise NotFound(f"Schedule {schedule_id!r} not found.")
    return schedule


def _locked(schedule_id: str) -> Schedule:
    schedule = Schedule.objects.select_for_update().filter(pk=schedule_id).first()
    if schedule is None:
        raise NotFound(f"Schedule {schedule_id!r} not found.")
    return schedule


def listing(workflow_id: str | None = None, state: str | None = None) -> QuerySet[Schedule]:
    schedules = Schedule.objects.all()
    if workflow_id:
        schedules = schedules.filter(workflow_id=workflow_id)
    if state:
        schedules = schedules.filter(state=state)
    return schedules


def update(schedule_id: str, changes: Mapping[str, Any]) -> Schedule:
    """Change a schedule; a new spec recomputes the next fire time (from now, without catch-up)."""
    now = timezone.now()
    with transaction.atomic():
        schedule = _locked(schedule_id)
        old_spec = {f: getattr(schedule, f) for f in SPEC_FIELDS}
        data = {**old_spec, **{k: v for k, v in changes.items() if k in SPEC_FIELDS}}
        if changes.get("type", schedule.type) != schedule.type and "start_at" not in changes:
            data["start_at"] = None  # a new kind of schedule gets its own default phase
        data = _normalized(data)
        spec = _validated(
            {**data, **{k: changes.get(k) for k in POLICY_FIELDS if k in changes}}, now, schedule.id
        )
        data["start_at"] = spec.start_at
        for key, value in {**data, **{k: v for k, v in changes.items() if k in POLICY_FIELDS}}.items():
            setattr(schedule, key, value)
        if data != old_spec and schedule.state == ScheduleState.ACTIVE:
            _set_next(schedule, spec, engine.resumed(spec, now, schedule.last_fire_at))
        schedule.save()
        _event("schedule_updated", schedule)
    if changes.get("state") in (ScheduleState.PAUSED, ScheduleState.ACTIVE):
        return pause(schedule.id) if changes["state"] == ScheduleState.PAUSED else resume(schedule.id)
    return schedule


def pause(schedule_id: str) -> Schedule:
    """Stop firing; the phase is kept (``start_at`` does not move)."""
    with transaction.atomic():
        schedule = _locked(schedule_id)
        if schedule.state == ScheduleState.STOPPED:
            raise Conflict(f"Schedule {schedule_id!r} is stopped; create a new one.")
        if schedule.state == ScheduleState.ACTIVE:
            schedule.state = ScheduleState.PAUSED
            schedule.next_fire_at = schedule.next_due_at = None
            schedule.save(update_fields=["state", "next_fire_at", "next_due_at", "updated_at"])
            _event("schedule_paused", schedule)
    return schedule


def resume(schedule_id: str) -> Schedule:
    """Fire again from the next time in the original phase; times passed while paused do not fire."""
    with transaction.atomic():
        schedule = _locked(schedule_id)
        if schedule.state == ScheduleState.STOPPED:
            raise Conflict(f"Schedule {schedule_id!r} is stopped; create a new one.")
        if schedule.state == ScheduleState.PAUSED:
            spec = spec_of(schedule)
            schedule.state = ScheduleState.ACTIVE
            _set_next(schedule, spec, engine.resumed(spec, timezone.now(), schedule.last_fire_at))
            schedule.save(update_fields=["state", "next_fire_at", "next_due_at", "updated_at"])
            _event("schedule_resumed", schedule)
    return schedule


def stop(schedule_id: str) -> Schedule:
    """Stop for good (the original removed it); its history stays. A buffered fire is dropped."""
    with transaction.atomic():
        schedule = _locked(schedule_id)
        if schedule.state != ScheduleState.STOPPED:
            schedule.state = ScheduleState.STOPPED
            schedule.next_fire_at = schedule.next_due_at = None
            schedule.save(update_fields=["state", "next_fire_at", "next_due_at", "updated_at"])
            ScheduleFire.objects.filter(schedule=schedule, outcome=FireOutcome.BUFFERED).update(
                outcome=FireOutcome.SKIPPED
            )
            _event("schedule_stopped", schedule)
    return schedule


def delete(schedule_id: str) -> None:
    with transaction.atomic():
        schedule = _locked(schedule_id)
        _event("schedule_deleted", schedule)
        schedule.delete()


def resolve(id_or_workflow: str) -> list[str]:
    """Schedule ids for a path segment that is a schedule id or, as in the original, a workflow id (then its
    schedules that are not stopped)."""
    if Schedule.objects.filter(pk=id_or_workflow).exists():
        return [id_or_workflow]
    ids = list(
        Schedule.objects.filter(workflow_id=id_or_workflow)
        .exclude(state=ScheduleState.STOPPED)
        .values_list("id", flat=True)
    )
    if not ids and not Workflow.objects.filter(pk=id_or_workflow).exists():
        raise NotFound(f"No schedule or workflow {id_or_workflow!r}.")
    return ids


def preview(schedule_id: str, count: int) -> list[datetime]:
    """The next ``count`` fire times (fixed_delay: assuming each run takes no time)."""
    schedule = get(schedule_id)
    spec = spec_of(schedule)
    now = timezone.now()
    current = schedule.next_fire_at or engine.resumed(spec, now, schedule.last_fire_at)
    times: list[datetime] = []
    while current is not None and len(times) < count:
        times.append(current)
        current = (
            engine.after_run(spec, current)
            if spec.type == "fixed_delay"
            else engine.next_after(spec, current)
        )
    return times


def _event(kind: str, schedule: Schedule) -> None:
    events.record(
        kind,
        workflow_id=schedule.workflow_id,
        schedule_id=schedule.id,
        schedule_type=schedule.type,
        state=schedule.state,
    )


# --- metadata.schedule (origin-product.md §1.1) -----------------------------------------------------------

_METADATA_KEYS = {
    "scheduleType": "type",
    "interval": "interval",
    "cronExpression": "cron_expression",
    "timezone": "timezone",
    "jitter": "jitter",
    "catchupPolicy": "catchup_policy",
    "catchupWindow": "catchup_window",
    "overlapPolicy": "overlap_policy",
}


def metadata_schedule(body: Any) -> dict[str, Any] | None:
    """The definition's enabled ``metadata.schedule``, or ``None``."""
    metadata = body.get("metadata") if isinstance(body, dict) else None
    config = metadata.get("schedule") if isinstance(metadata, dict) else None
    if config is None:
        return None
    if not isinstance(config, dict) or not isinstance(config.get("enabled"), bool):
        raise InvalidSchedule(
            "metadata.schedule must be an object with a boolean enabled.",
            details={"metadata.schedule.enabled": ["Required: true or false."]},
        )
    return config if config["enabled"] else None


def _metadata_fields(config: dict[str, Any]) -> dict[str, Any]:
    fields = {
        ours: config[theirs] for theirs, ours in _METADATA_KEYS.items() if config.get(theirs) is not None
    }
    for key in ("catchup_policy", "overlap_policy"):
        allowed = engine.CATCHUP_POLICIES if key == "catchup_policy" else engine.OVERLAP_POLICIES
        if key in fields and fields[key] not in allowed:
            name = f"metadata.schedule.{key.split('_')[0]}Policy"
            raise InvalidSchedule(
                f"{name} must be one of {', '.join(allowed)}.", details={name: ["Unknown."]}
            )
    return fields


def sync_from_definition(workflow: Workflow, body: Any) -> None:
    """Create, change or delete the workflow's ``metadata`` schedule to match its definition. Runs inside
    the definition's transaction: an invalid schedule stores nothing."""
    config = metadata_schedule(body)
    existing = Schedule.objects.select_for_update().filter(workflow=workflow, source="metadata").first()
    if config is None:
        if existing is not None:
            delete(existing.id)
        return
    try:
        # what the definition leaves out takes its default, so removing a key there resets it here
        fields = {"interval": None, "cron_expression": None, "timezone": "UTC", "jitter": ""}
        fields.update(_metadata_fields(config))
        if existing is None:
            create(workflow.id, fields, source="metadata")
        else:
            update(existing.id, fields)
    except InvalidSchedule as exc:
        details = {f"metadata.schedule.{k}": v for k, v in exc.details.items()}
        raise InvalidSchedule(exc.message, details=details) from None


def status_text(body: Any) -> str:
    """The original's ``scheduleStatus`` of a created workflow; ``body`` is None for a draft, whose
    ``metadata.schedule`` creates nothing until a valid save."""
    if body is None:
        return "Draft - not scheduled until the workflow is valid"
    config = metadata_schedule(body)
    if config is None:
        return "Immediate task - execute manually"
    kind = config.get("scheduleType")
    if kind == "fixed_rate":
        return f"Scheduled: Fixed Rate: {config.get('interval') or engine.DEFAULT_INTERVAL}"
    if kind == "fixed_delay":
        return f"Scheduled: Fixed Delay: {config.get('interval') or engine.DEFAULT_INTERVAL}"
    if kind == "cron":
        return f"Scheduled: Cron: {config.get('cronExpression') or engine.DEFAULT_CRON}"
    return "Scheduled: Immediate"


def catchup_window(schedule: Schedule) -> timedelta:
    return engine.parse_duration(schedule.catchup_window, "catchupWindow")
