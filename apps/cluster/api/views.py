"""Cluster routes: members and leader (Redis), shard ownership and load (PostgreSQL).

Redis or PostgreSQL being down is a 503 in the error shape (``apps.workflows.api.errors``), never a 500.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers as s
from rest_framework.request import Request
from rest_framework.response import Response

from apps.workflows.api.schema import errors
from apps.workflows.api.views import ApiView
from apps.workflows.services import queries


class MemberSerializer(s.Serializer):
    address = s.CharField(help_text="The member's node id: <node name>:<role>:<incarnation>.")
    host = s.CharField()
    status = s.CharField()
    roles = s.ListField(child=s.CharField())
    shards = s.IntegerField(help_text="Shards this member owns.")


class ShardingSummarySerializer(s.Serializer):
    totalShards = s.IntegerField()
    activeShards = s.IntegerField(help_text="Shards with an owner.")
    totalEntities = s.IntegerField(help_text="Active (pending or running) executions.")


class ClusterStatsSerializer(s.Serializer):
    clusterName = s.CharField()
    status = s.ChoiceField(choices=["Up", "Degraded"], help_text='"Degraded" when no coordinator leads.')
    leader = s.CharField(allow_null=True, help_text="The leading coordinator's node id.")
    term = s.IntegerField(help_text="The leader's fencing term.")
    members = s.IntegerField(help_text="Live member processes.")
    nodeCount = s.IntegerField(help_text="Distinct node names among the live members.")
    selfAddress = s.CharField()
    selfRoles = s.ListField(child=s.CharField())
    memberList = MemberSerializer(many=True)
    sharding = ShardingSummarySerializer()


class ShardSerializer(s.Serializer):
    shardId = s.IntegerField()
    owner = s.CharField(allow_null=True)
    location = s.CharField(allow_null=True, help_text="The original's name for the owner.")
    epoch = s.IntegerField()
    state = s.CharField()
    entityCount = s.IntegerField(help_text="Active executions in the shard.")


class ClusterShardsSerializer(s.Serializer):
    entityType = s.CharField()
    totalShards = s.IntegerField()
    activeShards = s.IntegerField()
    shards = ShardSerializer(many=True)


@extend_schema(tags=["cluster"])
class ClusterStatsView(ApiView):
    @extend_schema(
        summary="Cluster members, leader and sharding summary",
        responses={200: ClusterStatsSerializer, **errors(401, 503)},
    )
    def get(self, request: Request) -> Response:
        return Response(queries.cluster_stats(settings.WORKFLOW_NODE_NAME, list(settings.WORKFLOW_ROLES)))


@extend_schema(tags=["cluster"])
class ClusterShardsView(ApiView):
    @extend_schema(
        summary="Every shard: owner, epoch and active executions",
        responses={200: ClusterShardsSerializer, **errors(401, 503)},
    )
    def get(self, request: Request) -> Response:
        return Response(queries.cluster_shards())
