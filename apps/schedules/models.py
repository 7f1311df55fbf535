"""Durable schedules (ARCHITECTURE.md §2): fired by the coordinator leader on PostgreSQL's clock.

``ScheduleFire`` is unique per ``(schedule, fire_time)``: the row is inserted in the transaction that starts
the execution, so however leadership moves, a fire time starts at most one execution, and the schedule's
``next_fire_at`` only moves past a time in the transaction that recorded it, so none is skipped.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from apps.workflows.models import Execution, Workflow


class ScheduleType(models.TextChoices):
    FIXED_RATE = "fixed_rate"
    FIXED_DELAY = "fixed_delay"
    CRON = "cron"
    IMMEDIATE = "immediate"


class CatchupPolicy(models.TextChoices):
    SKIP = "skip"  # missed times are recorded as missed; the schedule goes on at its next time
    ONCE = "once"  # the latest missed time fires, once
    ALL = "all"  # every missed time within catchup_window fires, oldest first


class OverlapPolicy(models.TextChoices):
    SKIP = "skip"
    BUFFER_ONE = "buffer_one"
    ALLOW = "allow"
    CANCEL_PREVIOUS = "cancel_previous"


class ScheduleState(models.TextChoices):
    ACTIVE = "active"
    PAUSED = "paused"
    STOPPED = "stopped"


class Schedule(models.Model):
    id = models.CharField(primary_key=True, max_length=64)
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="schedules")
    name = models.CharField(max_length=200, blank=True, default="")
    type = models.CharField(max_length=16, choices=ScheduleType.choices)
    interval = models.CharField(max_length=32, blank=True, default="")  # the original's grammar: 30s, 5m
    cron_expression = models.CharField(max_length=200, blank=True, default="")
    timezone = models.CharField(max_length=64, default="UTC")
    start_at = models.DateTimeField()  # anchors a fixed rate's phase: fires at start_at + k * interval
    jitter = models.CharField(max_length=32, blank=True, default="")
    catchup_policy = models.CharField(max_length=8, choices=CatchupPolicy.choices, default=CatchupPolicy.ALL)
    catchup_window = models.CharField(max_length=32, default="1h")
    overlap_policy = models.CharField(
        max_length=16, choices=OverlapPolicy.choices, default=OverlapPolicy.SKIP
    )
    state = models.CharField(max_length=8, choices=ScheduleState.choices, default=ScheduleState.ACTIVE)
    # "api", or "metadata" for the one a workflow's metadata.schedule defines (kept in sync on update)
    source = models.CharField(max_length=16, default="api")
    next_fire_at = models.DateTimeField(null=True, blank=True)  # the next logical time
    next_due_at = models.DateTimeField(null=True, blank=True)  # next_fire_at plus its jitter
    last_fire_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            # the leader's due scan, every tick (services/firing.py: fire_due)
            models.Index(fields=["next_due_at"], name="schedule_due", condition=Q(state="active")),
            # fixed-delay schedules waiting for their run to end (services/firing.py: _after_runs)
            models.Index(
                fields=["type"],
                name="schedule_delay_waiting",
                condition=Q(state="active", type="fixed_delay", next_fire_at__isnull=True),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["workflow"], name="schedule_one_metadata_per_workflow", condition=Q(source="metadata")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.type}) of {self.workflow_id}"


class FireOutcome(models.TextChoices):
    STARTED = "started"
    QUEUED = "queued"  # admitted but waiting under the workflow's concurrency limit
    SKIPPED = "skipped"  # the overlap policy, or the workflow's concurrency policy, skipped it
    BUFFERED = "buffered"  # buffer_one: starts when the running one ends
    MISSED = "missed"  # the catch-up policy did not fire it


class BackfillState(models.TextChoices):
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class BackfillRun(models.Model):
    """A schedule's fire times over ``[start, end)``, at most ``max_active`` running at once.

    The leader advances ``cursor`` each tick in the transaction that records the fires, so a backfill
    survives failover and starts each interval once.
    """

    id = models.CharField(primary_key=True, max_length=64)
    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="backfills")
    start = models.DateTimeField()
    end = models.DateTimeField()
    max_active = models.PositiveIntegerField(default=3)
    cursor = models.DateTimeField(null=True, blank=True)  # the next logical time to start; None: all started
    state = models.CharField(max_length=16, choices=BackfillState.choices, default=BackfillState.RUNNING)
    total = models.PositiveIntegerField(default=0)
    started = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # the leader's scan for backfills to advance (services/backfills.py)
            models.Index(fields=["created_at"], name="backfill_running", condition=Q(state="running")),
        ]

    def __str__(self) -> str:
        return f"{self.id} of {self.schedule_id}"


class ScheduleFire(models.Model):
    """One logical time of a schedule (or of one of its backfills), fired once."""

    id = models.BigAutoField(primary_key=True)
    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="fires")
    backfill = models.ForeignKey(
        BackfillRun, null=True, blank=True, on_delete=models.CASCADE, related_name="fires"
    )
    fire_time = models.DateTimeField()  # the logical time, given to the execution as input.logicalTime
    due_at = models.DateTimeField()  # fire_time plus jitter
    outcome = models.CharField(max_length=16, choices=FireOutcome.choices)
    execution = models.ForeignKey(
        Execution, null=True, blank=True, on_delete=models.SET_NULL, related_name="schedule_fires"
    )
    # set while its execution may still be active; cleared once it is seen ended, so the overlap and
    # concurrency checks read a handful of rows however long the schedule's history
    active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["schedule_id", "fire_time"]
        constraints = [
            # exactly once per fire time across leadership changes (services/firing.py)
            models.UniqueConstraint(
                fields=["schedule", "fire_time"],
                name="schedule_fire_once",
                condition=Q(backfill__isnull=True),
            ),
            models.UniqueConstraint(
                fields=["backfill", "fire_time"],
                name="backfill_fire_once",
                condition=Q(backfill__isnull=False),
            ),
        ]
        indexes = [
            # a schedule's (or backfill's) possibly active runs (services/firing.py: active_runs)
            models.Index(
                fields=["schedule", "backfill"], name="schedule_fire_active", condition=Q(active=True)
            ),
            # buffer_one fires waiting for the running one to end (services/firing.py: _release_buffered)
            models.Index(fields=["schedule"], name="schedule_fire_buffered", condition=Q(outcome="buffered")),
        ]

    def __str__(self) -> str:
        return f"{self.schedule_id} @ {self.fire_time:%Y-%m-%d %H:%M:%S} {self.outcome}"
