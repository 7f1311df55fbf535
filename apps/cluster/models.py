"""Cluster state in PostgreSQL: shard ownership, the leader's fencing term, members and cluster events."""

from __future__ import annotations

from django.db import models


class LeaseState(models.TextChoices):
    UNASSIGNED = "unassigned"
    ASSIGNED = "assigned"
    HANDOFF = "handoff"  # the leader asked the owner to let go (a planned move to ``handoff_to``)
    RELEASED = "released"  # the owner stopped consuming and has nothing in flight: the leader may move it


class MoveReason(models.TextChoices):
    INITIAL = "initial"
    FAILOVER = "failover"  # the previous owner's liveness expired
    MEMBER_LEFT = "member_left"  # the previous owner stopped cleanly and gave its shards up
    REBALANCE = "rebalance"  # a planned hand-off
    HANDOFF_TIMEOUT = "handoff_timeout"  # a planned hand-off forced after handoff-timeout


class ShardLease(models.Model):
    """Who owns a shard, at which epoch. Every journal append reads this row ``FOR SHARE`` (invariant 1)."""

    shard_id = models.PositiveIntegerField(primary_key=True)
    owner = models.CharField(max_length=300, null=True, blank=True)
    epoch = models.PositiveBigIntegerField(default=0)
    term = models.PositiveBigIntegerField(default=0)
    state = models.CharField(max_length=16, choices=LeaseState.choices, default=LeaseState.UNASSIGNED)
    handoff_to = models.CharField(max_length=300, blank=True, default="")
    handoff_started_at = models.DateTimeField(null=True, blank=True)
    previous_owner = models.CharField(max_length=300, blank=True, default="")
    moved_reason = models.CharField(max_length=16, choices=MoveReason.choices, blank=True, default="")
    moved_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["shard_id"]
        indexes = [models.Index(fields=["owner"], name="shard_lease_owner")]  # worker reconcile loop

    def __str__(self) -> str:
        return f"shard {self.shard_id} -> {self.owner} @{self.epoch}"


class CoordinatorTerm(models.Model):
    """One row: the leader's fencing term, incremented on every takeover."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    term = models.PositiveBigIntegerField(default=0)
    leader = models.CharField(max_length=300, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)


class ClusterIdentity(models.Model):
    """One row, written by the first migration: this cluster's id.

    Every process reads it at start and claims the Redis it is given for it (``apps/cluster/startup.py``):
    a node whose Redis already belongs to another cluster refuses to start, since the two would take each
    other's wake-ups. A backup carries the row, so a restored cluster keeps its id.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    cluster_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.cluster_id


class ClusterMember(models.Model):
    """A member process: ``member_id`` is ``<name>:<role>:<incarnation>``, new at every start."""

    member_id = models.CharField(primary_key=True, max_length=300)
    name = models.CharField(max_length=200)
    host = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    roles = models.JSONField(default=list)
    state = models.CharField(max_length=16, default="up")
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        ordering = ["started_at"]
        indexes = [models.Index(fields=["state", "last_seen"], name="cluster_member_state_seen")]  # pruning

    def __str__(self) -> str:
        return self.member_id


class ClusterEvent(models.Model):
    """A ``CLUSTER_EVENT`` record (the original's event types), also logged as a JSON line."""

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField()
    event_type = models.CharField(max_length=64)
    severity = models.CharField(max_length=16, default="INFO")
    workflow_id = models.CharField(max_length=200, blank=True, default="")
    payload = models.JSONField(default=dict)

    class Meta:
        ordering = ["-id"]
        indexes = [
            # GET /api/v1/events filters (apps/cluster/queries.py)
            models.Index(fields=["event_type", "-id"], name="cluster_event_type_recent"),
            models.Index(
                fields=["workflow_id", "-id"],
                name="cluster_event_workflow_recent",
                condition=~models.Q(workflow_id=""),
            ),
            models.Index(fields=["created_at"], name="cluster_event_created"),  # events/stats last24h
        ]
