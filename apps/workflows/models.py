"""Workflow definitions and the execution journal (ARCHITECTURE.md §2).

The ``Execution`` row is the entity head: its ``last_seq`` is compared under ``FOR UPDATE`` before every
append, and its ``shard_id`` is computed once and used for routing forever. ``Event`` is the journal; every
other table here is written in the same transaction as the events it belongs to.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from apps.workflows.engine.state import ExecutionStatus


class Workflow(models.Model):
    """The head of a definition; ``current_version`` is what a new execution pins.

    A save that does not validate is a draft: its body and problems are kept here, not as a version, so that
    versions (what executions pin) are only ever valid definitions. While ``draft`` is set, it is what GET
    answers and no execution may start (services/definitions.py, services/executions.py).
    """

    id = models.CharField(primary_key=True, max_length=200)
    name = models.CharField(max_length=500)
    # the last valid version; NULL until the first valid save (a workflow created as a draft)
    current_version = models.ForeignKey(
        "WorkflowVersion", null=True, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False
    )
    # the latest save when it does not validate (NULL when the latest save is ``current_version``) ...
    draft = models.JSONField(null=True, blank=True, default=None)
    # ... and its field-level problems, as a 400's details: {"nodes[1].config.path": ["..."]}
    draft_problems = models.JSONField(null=True, blank=True, default=None)
    # counts draft saves, never reset: a draft's ETag, so that a body saved again after other saves has a
    # new tag (no ABA), as a version's number does for versions
    draft_revision = models.PositiveIntegerField(default=0, db_default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # usernames, not foreign keys: the record of who did it outlives the account
    created_by = models.CharField(max_length=150, blank=True, default="", db_default="")
    updated_by = models.CharField(max_length=150, blank=True, default="", db_default="")

    class Meta:
        ordering = ["id"]
        # the roles' permissions (workflow_engine/roles.py); approve and operate are on Execution
        permissions = [
            ("read_api", "Can read workflows, executions, schedules and the cluster through the API"),
            ("manage_workflows", "Can create, edit and delete workflow definitions"),
            ("manage_schedules", "Can create, edit, delete, pause, resume, stop and backfill schedules"),
        ]

    def __str__(self) -> str:
        return self.id


class WorkflowVersion(models.Model):
    """An immutable, content-hashed definition (the original DSL JSON, as posted)."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    content_hash = models.CharField(max_length=64)
    definition = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True, default="", db_default="")

    class Meta:
        ordering = ["workflow_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "number"], name="workflow_version_number_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.workflow_id} v{self.number}"


# the statuses are the engine's (engine/state.py); the column offers them as choices
STATUS_CHOICES = [(status.value, status.name.title()) for status in ExecutionStatus]


class Execution(models.Model):
    """One run of a pinned workflow version; the event-sourced entity's head row."""

    id = models.CharField(primary_key=True, max_length=64)
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="executions")
    # RESTRICT, not PROTECT: a version goes only with its workflow, which takes its executions along
    version = models.ForeignKey(WorkflowVersion, on_delete=models.RESTRICT, related_name="executions")
    shard_id = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=ExecutionStatus.PENDING)
    last_seq = models.PositiveIntegerField(default=0)
    trigger = models.CharField(max_length=32, default="api")
    # the start command's id (it carries the Idempotency-Key); kept here too because a queued execution has
    # no start command until a concurrency slot frees
    start_key = models.CharField(max_length=300, blank=True, default="")
    # sha256 of the start request's canonical JSON: the same key with another body is a 409, not a duplicate
    request_hash = models.CharField(max_length=64, blank=True, default="", db_default="")
    # who started it (a username); "" for a schedule's fire
    started_by = models.CharField(max_length=150, blank=True, default="", db_default="")
    input = models.JSONField(default=dict, blank=True)  # what the execution.input node outputs
    error = models.TextField(blank=True, default="")
    # node attempts started and not finished, ``[[node_id, attempt], ...]``: a projection of the journal
    # kept on the head row, so the sweeper finds executions waiting on a node without reading events
    running_nodes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    progressed_at = models.DateTimeField(null=True, blank=True)  # when the last event was appended

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # the workflow's execution list, its pages and status filter, history and status routes
            # (services/queries.py): in their order to the last tie-break and covering the list's columns,
            # so that a page, however deep, is an index-only scan without a sort (bench/storage.py)
            models.Index(
                fields=["workflow", "-created_at", "-id"],
                include=["status", "started_at", "ended_at"],
                name="execution_workflow_recent",
            ),
            # recovery and the sweeper: non-terminal executions of a shard (services/recovery.py)
            models.Index(fields=["workflow", "status"], name="execution_workflow_status"),  # admission.py
            # the global execution list (services/listing.py), newest first: one index per filter it offers,
            # each in the list's order to the last tie-break so that a page is a walk without a sort (its
            # workflow filter uses execution_workflow_recent, its id prefix the primary key's ``_like`` index)
            models.Index(fields=["-created_at", "-id"], name="execution_recent"),
            models.Index(fields=["status", "-created_at", "-id"], name="execution_status_recent"),
            models.Index(fields=["trigger", "-created_at", "-id"], name="execution_trigger_recent"),
            models.Index(fields=["ended_at"], name="execution_ended", condition=Q(ended_at__isnull=False)),
            models.Index(
                fields=["shard_id", "status"],
                name="execution_shard_active",
                condition=Q(status__in=["pending", "running", "paused"]),
            ),
        ]

        permissions = [
            ("approve_execution", "Can approve or reject an approval node of an execution"),
            ("operate_execution", "Can start, cancel, pause, resume, retry, rerun and signal executions"),
        ]
        constraints = [
            # one execution per Idempotency-Key, even while it waits queued (services/executions.py)
            models.UniqueConstraint(
                fields=["start_key"], name="execution_start_key_unique", condition=~Q(start_key="")
            ),
        ]

    def __str__(self) -> str:
        return self.id


class Event(models.Model):
    """The journal: ``(execution, seq)`` is unique and contiguous; ``epoch`` is the writer's shard epoch."""

    id = models.BigAutoField(primary_key=True)
    # indexed by the unique constraint below, which starts with it
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="events", db_index=False)
    seq = models.PositiveIntegerField()
    type = models.CharField(max_length=64)
    payload = models.JSONField()
    epoch = models.PositiveBigIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["execution_id", "seq"]
        constraints = [
            # the last line of defence for the single-writer rule (invariant 1)
            models.UniqueConstraint(fields=["execution", "seq"], name="event_execution_seq_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.execution_id}#{self.seq} {self.type}"


class Snapshot(models.Model):
    """A cache of the state at ``seq``; a snapshot that does not decode falls back to full replay."""

    # indexed by the unique constraint below, which starts with it
    execution = models.ForeignKey(
        Execution, on_delete=models.CASCADE, related_name="snapshots", db_index=False
    )
    seq = models.PositiveIntegerField()
    schema_version = models.PositiveSmallIntegerField()
    state = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["execution", "seq"], name="snapshot_execution_seq_unique"),
        ]


class Command(models.Model):
    """The inbox: each accepted command once, marked processed in the transaction that applied it."""

    id = models.CharField(primary_key=True, max_length=300)
    # indexed in Meta: a plain index, without the varchar_pattern_ops copy Django adds to a text key
    execution = models.ForeignKey(
        Execution, on_delete=models.CASCADE, related_name="commands", db_index=False
    )
    type = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    processed_seq = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["execution"], name="command_execution"),
            # pending commands of one execution, in arrival order (services/commands.py)
            models.Index(
                fields=["execution", "created_at"],
                name="command_pending",
                condition=Q(processed_at__isnull=True),
            ),
            # the sweeper: commands left unprocessed for too long, across executions (services/sweeper.py)
            models.Index(
                fields=["created_at"], name="command_unprocessed_age", condition=Q(processed_at__isnull=True)
            ),
        ]


class NodeOutput(models.Model):
    """Records one node attempt produced; downstream nodes read them as their input."""

    # indexed by the unique constraint below, which starts with it
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="outputs", db_index=False)
    node_id = models.CharField(max_length=200)
    attempt = models.PositiveIntegerField()
    records = models.JSONField()
    record_count = models.PositiveIntegerField()
    size_bytes = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["execution", "node_id", "attempt"], name="node_output_attempt_unique"
            ),
        ]


class ExecutionLog(models.Model):
    """Lines the engine and the nodes wrote, served by the execution logs route."""

    id = models.BigAutoField(primary_key=True)
    # indexed in Meta: a plain index, without the varchar_pattern_ops copy Django adds to a text key
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="logs", db_index=False)
    node_id = models.CharField(max_length=200, blank=True, default="")
    level = models.CharField(max_length=10, default="INFO")
    message = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["execution_id", "id"]
        # an execution's lines in order (the logs route)
        indexes = [models.Index(fields=["execution", "id"], name="executionlog_execution")]


class Timer(models.Model):
    """A durable timer: retry back-off, attempt and workflow timeouts, delays (invariant 5).

    Fired by the leader on PostgreSQL's clock: it becomes the inbox command ``timer:<id>``, once.
    """

    id = models.BigAutoField(primary_key=True)
    # indexed in Meta: a plain index, without the varchar_pattern_ops copy Django adds to a text key
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="timers", db_index=False)
    kind = models.CharField(max_length=32)
    node_id = models.CharField(max_length=200, blank=True, default="")
    attempt = models.PositiveIntegerField(default=0)
    fire_at = models.DateTimeField()
    fired_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["execution"], name="timer_execution"),
            # the leader's due-timer scan (services/timers.py)
            models.Index(fields=["fire_at"], name="timer_due", condition=Q(fired_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.node_id}#{self.attempt} at {self.fire_at:%H:%M:%S}"
