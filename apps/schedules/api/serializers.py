"""Schedule API shapes: input serializers (camelCase, the original's names) and the response documents."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers as s

from apps.schedules import engine
from apps.schedules.models import BackfillRun, Schedule

# API name -> model field
_FIELDS = {
    "name": "name",
    "scheduleType": "type",
    "interval": "interval",
    "cronExpression": "cron_expression",
    "timezone": "timezone",
    "startAt": "start_at",
    "jitter": "jitter",
    "catchupPolicy": "catchup_policy",
    "catchupWindow": "catchup_window",
    "overlapPolicy": "overlap_policy",
}


class ScheduleInput(s.Serializer):
    """A schedule to create or change. Types and durations are checked by the scheduler, which names the
    field in its 400 (``Unknown schedule type: x``)."""

    workflowId = s.CharField(max_length=200)
    name = s.CharField(max_length=200, required=False, allow_blank=True)
    scheduleType = s.CharField(help_text="fixed_rate, fixed_delay, cron or immediate.")
    interval = s.CharField(max_length=32, required=False, help_text="30s, 5m, 1h, 1d (default 1h).")
    cronExpression = s.CharField(
        max_length=200, required=False, help_text="Five fields (default '0 0 * * *')."
    )
    timezone = s.CharField(max_length=64, required=False, help_text="IANA zone for cron (default UTC).")
    startAt = s.DateTimeField(
        required=False, help_text="Anchors a fixed rate's phase (default: now plus one interval)."
    )
    jitter = s.CharField(max_length=32, required=False, allow_blank=True, help_text="Up to this delay.")
    catchupPolicy = s.ChoiceField(choices=engine.CATCHUP_POLICIES, required=False)
    catchupWindow = s.CharField(
        max_length=32, required=False, help_text="For catchupPolicy all (default 1h)."
    )
    overlapPolicy = s.ChoiceField(choices=engine.OVERLAP_POLICIES, required=False)
    enabled = s.BooleanField(required=False, help_text="false creates it paused.")

    def fields_for_model(self) -> dict[str, Any]:
        data = self.validated_data
        fields = {ours: data[theirs] for theirs, ours in _FIELDS.items() if theirs in data}
        if "enabled" in data:
            fields["state"] = "active" if data["enabled"] else "paused"
        return fields


class ScheduleChange(ScheduleInput):
    workflowId = None  # type: ignore[assignment]
    scheduleType = s.CharField(required=False, help_text="fixed_rate, fixed_delay, cron or immediate.")


class AddInput(s.Serializer):
    """The original's ``POST /api/v1/schedules/add``."""

    workflowId = s.CharField(max_length=200)
    scheduleType = s.CharField(help_text="fixed_rate, fixed_delay, cron or immediate.")
    interval = s.CharField(max_length=32, required=False)
    cronExpression = s.CharField(max_length=200, required=False)


class BackfillInput(s.Serializer):
    start = s.DateTimeField(help_text="Inclusive.")
    end = s.DateTimeField(help_text="Exclusive; not in the future.")
    maxActive = s.IntegerField(min_value=1, max_value=1000, default=3)


class PreviewQuery(s.Serializer):
    count = s.IntegerField(min_value=1, max_value=1000, default=10)


class ListQuery(s.Serializer):
    workflowId = s.CharField(required=False)
    state = s.ChoiceField(choices=["active", "paused", "stopped"], required=False)


def iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def schedule_json(schedule: Schedule) -> dict[str, Any]:
    return {
        "id": schedule.id,
        "workflowId": schedule.workflow_id,
        "name": schedule.name,
        "scheduleType": schedule.type,
        "interval": schedule.interval or None,
        "cronExpression": schedule.cron_expression or None,
        "timezone": schedule.timezone,
        "startAt": iso(schedule.start_at),
        "jitter": schedule.jitter or None,
        "catchupPolicy": schedule.catchup_policy,
        "catchupWindow": schedule.catchup_window,
        "overlapPolicy": schedule.overlap_policy,
        "state": schedule.state,
        "enabled": schedule.state == "active",
        "source": schedule.source,
        "nextFireAt": iso(schedule.next_fire_at),
        "lastFireAt": iso(schedule.last_fire_at),
        "createdAt": iso(schedule.created_at),
        "updatedAt": iso(schedule.updated_at),
    }


def backfill_json(run: BackfillRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "scheduleId": run.schedule_id,
        "start": iso(run.start),
        "end": iso(run.end),
        "maxActive": run.max_active,
        "state": run.state,
        "total": run.total,
        "started": run.started,
        "cursor": iso(run.cursor),
        "createdAt": iso(run.created_at),
        "finishedAt": iso(run.finished_at),
    }


# --- response documents (schema only) ---------------------------------------------------------------------


class ScheduleDoc(s.Serializer):
    id = s.CharField()
    workflowId = s.CharField()
    name = s.CharField()
    scheduleType = s.CharField()
    interval = s.CharField(allow_null=True)
    cronExpression = s.CharField(allow_null=True)
    timezone = s.CharField()
    startAt = s.DateTimeField()
    jitter = s.CharField(allow_null=True)
    catchupPolicy = s.CharField()
    catchupWindow = s.CharField()
    overlapPolicy = s.CharField()
    state = s.CharField()
    enabled = s.BooleanField()
    source = s.CharField(help_text="api, or metadata for the schedule of a workflow's metadata.schedule.")  # type: ignore[assignment]
    nextFireAt = s.DateTimeField(allow_null=True)
    lastFireAt = s.DateTimeField(allow_null=True)
    createdAt = s.DateTimeField()
    updatedAt = s.DateTimeField()


class ScheduleListDoc(s.Serializer):
    schedules = ScheduleDoc(many=True)
    count = s.IntegerField()


class AddedDoc(s.Serializer):
    message = s.CharField()
    workflowId = s.CharField()
    scheduleType = s.CharField()
    scheduleId = s.CharField()


class ControlledDoc(s.Serializer):
    message = s.CharField()
    workflowId = s.CharField()
    scheduleIds = s.ListField(child=s.CharField())


class TemplateDoc(s.Serializer):
    name = s.CharField()
    scheduleType = s.CharField()
    interval = s.CharField(required=False)
    cronExpression = s.CharField(required=False)


class TemplatesDoc(s.Serializer):
    templates = TemplateDoc(many=True)


class PreviewDoc(s.Serializer):
    scheduleId = s.CharField()
    timezone = s.CharField()
    fireTimes = s.ListField(child=s.DateTimeField())


class BackfillDoc(s.Serializer):
    id = s.CharField()
    scheduleId = s.CharField()
    start = s.DateTimeField()
    end = s.DateTimeField()
    maxActive = s.IntegerField()
    state = s.CharField()
    total = s.IntegerField()
    started = s.IntegerField()
    cursor = s.DateTimeField(allow_null=True)
    createdAt = s.DateTimeField()
    finishedAt = s.DateTimeField(allow_null=True)


class DeletedDoc(s.Serializer):
    message = s.CharField()
    scheduleId = s.CharField()
