"""Query strings of the cluster and events routes. A bad value is a 400 naming the parameter."""

from __future__ import annotations

from rest_framework import serializers

from apps.cluster.models import ClusterEvent
from apps.cluster.queries import MEMBER_STATUSES
from workflow_engine.api.base import MAX_ID_LENGTH, MAX_LIMIT, Query

MAX_EVENT_ID = 2**63 - 1  # a bigint; a larger since_id would be refused by PostgreSQL
EVENT_TYPE_LENGTH = int(ClusterEvent._meta.get_field("event_type").max_length or 64)


class MembersQuery(Query):
    status = serializers.ChoiceField(
        choices=MEMBER_STATUSES, required=False, default=None, allow_null=True, help_text="Only these."
    )
    limit = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_LIMIT,
        default=MAX_LIMIT,
        help_text=f"The newest members (by start) first; at most {MAX_LIMIT}.",
    )


class EventsPageQuery(Query):
    limit = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_LIMIT,
        default=100,
        help_text=f"1 to {MAX_LIMIT}; default 100.",
    )
    since_id = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_EVENT_ID,
        default=None,
        allow_null=True,
        help_text="Only events with a greater id: the oldest `limit` of them, still listed newest first, so "
        "that polling with the highest id seen misses none.",
    )


class EventsQuery(EventsPageQuery):
    event_type = serializers.CharField(
        required=False,
        max_length=EVENT_TYPE_LENGTH,
        default=None,
        allow_null=True,
        help_text="Only this type: member_event, leader_changed, shard_rebalance, workflow_failover, ...",
    )
    workflow_id = serializers.CharField(
        required=False,
        max_length=MAX_ID_LENGTH,
        default=None,
        allow_null=True,
        help_text="Only events about this workflow.",
    )
