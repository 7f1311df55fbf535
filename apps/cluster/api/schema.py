"""Response shapes of the cluster and events routes, for the OpenAPI schema only (the views return dicts).

Field names follow the original (origin-product.md §5.5) where it had the route, camelCase elsewhere; cluster
events keep the ``CLUSTER_EVENT`` JSON's snake_case fields (§7.2), as logged.
"""

from __future__ import annotations

from rest_framework import serializers as s

from workflow_engine.api.schema import OpenSerializer

# --- stats and shards ---------------------------------------------------------------------------------------


class MemberSerializer(s.Serializer):
    address = s.CharField(help_text="The member id: <node name>:<role>:<incarnation>.")
    host = s.CharField()
    status = s.CharField(help_text='"Up": only live members are listed.')
    roles = s.ListField(child=s.CharField())
    shards = s.IntegerField(help_text="Shards this member owns.")
    entities = s.IntegerField(help_text="Active (pending or running) executions in the shards it owns.")


class ShardingSummarySerializer(s.Serializer):
    totalShards = s.IntegerField(help_text="WORKFLOW_NUMBER_OF_SHARDS, fixed for the cluster's life.")
    activeShards = s.IntegerField(
        help_text="Shards owned by a live worker. A shard whose lease still names a worker that left or "
        "died is not active: its executions do not move until the leader gives it to a live worker."
    )
    totalEntities = s.IntegerField(help_text="Active (pending or running) executions.")


class ClusterStatsSerializer(s.Serializer):
    clusterName = s.CharField()
    clusterId = s.CharField(
        allow_null=True,
        help_text="This cluster's id, made by its database's first migration; its Redis is claimed for it.",
    )
    status = s.ChoiceField(
        choices=["Up", "Degraded", "Down"],
        help_text='"Down": no shard has a live owner, so no execution moves (the last worker left or died, '
        'or none joined). "Degraded": some shards have no live owner, or no coordinator leads. "Up": '
        "every shard has a live owner and a coordinator leads.",
    )
    reasons = s.ListField(
        child=s.CharField(),
        help_text='Why the status is not "Up", one sentence each; empty when it is.',
    )
    leader = s.CharField(allow_null=True, help_text="The leading coordinator's member id.")
    term = s.IntegerField(help_text="The leader's fencing term.")
    members = s.IntegerField(
        help_text="The NUMBER of live member processes (workers and coordinators), as the deployment "
        "guide shows it; the members themselves are in memberList."
    )
    nodeCount = s.IntegerField(help_text="Distinct node names among the live members.")
    selfAddress = s.CharField()
    selfRoles = s.ListField(child=s.CharField())
    memberList = MemberSerializer(many=True, help_text="The live member processes, one item each.")
    sharding = ShardingSummarySerializer()


class ShardSerializer(s.Serializer):
    shardId = s.IntegerField()
    owner = s.CharField(allow_null=True)
    location = s.CharField(allow_null=True, help_text="The original's name for the owner.")
    epoch = s.IntegerField(help_text="Incremented at every change of owner; fences the old owner's writes.")
    term = s.IntegerField(help_text="The coordinator term that wrote the lease.")
    state = s.CharField(help_text='"unassigned", "assigned", or a hand-off state ("handoff", "released").')
    updatedAt = s.DateTimeField(allow_null=True)
    handoffTo = s.CharField(allow_null=True, help_text="During a planned move: the worker the shard goes to.")
    previousOwner = s.CharField(allow_null=True, help_text="The owner before the last move.")
    movedReason = s.CharField(allow_null=True, help_text="initial, failover, rebalance or handoff_timeout.")
    movedAt = s.DateTimeField(allow_null=True)
    entityCount = s.IntegerField(help_text="Active executions in the shard.")


class ClusterShardsSerializer(s.Serializer):
    entityType = s.CharField()
    totalShards = s.IntegerField()
    activeShards = s.IntegerField()
    shards = ShardSerializer(many=True)


# --- members ------------------------------------------------------------------------------------------------


class ClusterMemberSerializer(s.Serializer):
    nodeId = s.CharField(help_text="<node name>:<role>:<incarnation>, new at every start.")
    name = s.CharField(help_text="The node name (WORKFLOW_NODE_NAME).")
    role = s.CharField()
    host = s.CharField()
    pid = s.IntegerField()
    status = s.CharField(
        help_text='"up" while its liveness key lives; else "down" (expired) or "left" (a clean exit).'
    )
    startedAt = s.DateTimeField()
    lastSeen = s.DateTimeField()
    shards = s.IntegerField(help_text="Shards it owns.")


class ClusterMembersSerializer(s.Serializer):
    members = ClusterMemberSerializer(many=True)
    count = s.IntegerField()


# --- locations ----------------------------------------------------------------------------------------------


# --- events -------------------------------------------------------------------------------------------------


class ClusterEventSerializer(OpenSerializer):
    """The stored CLUSTER_EVENT JSON: these fields plus the event type's own (origin-product.md §7.2)."""

    id = s.IntegerField(help_text="Increasing; pass the highest seen as since_id to poll.")
    timestamp = s.DateTimeField()
    event_type = s.CharField(
        help_text="member_event, leader_changed, unreachable_member, shard_rebalance, ..."
    )
    severity = s.CharField(help_text="INFO, WARNING or ERROR.")
    workflow_id = s.CharField(required=False)


class ClusterEventsSerializer(s.Serializer):
    events = ClusterEventSerializer(many=True)
    count = s.IntegerField()


class EventStatsSerializer(s.Serializer):
    total = s.IntegerField()
    byType = s.DictField(child=s.IntegerField(), help_text="{event_type: count}")
    bySeverity = s.DictField(child=s.IntegerField(), help_text="{severity: count}")
    last24h = s.IntegerField()
