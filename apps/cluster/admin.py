"""Django admin for the cluster: view only. Leases, terms and members are written by the coordinator under
its fencing term (invariant 6); an edit by hand could give a shard two owners."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from apps.cluster.models import ClusterEvent, ClusterMember, CoordinatorTerm, ShardLease


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ShardLease)
class ShardLeaseAdmin(ReadOnlyAdmin):
    list_display = ("shard_id", "owner", "epoch", "term", "state", "updated_at")
    list_filter = ("state",)
    search_fields = ("owner",)


@admin.register(CoordinatorTerm)
class CoordinatorTermAdmin(ReadOnlyAdmin):
    list_display = ("id", "term", "leader", "updated_at")


@admin.register(ClusterMember)
class ClusterMemberAdmin(ReadOnlyAdmin):
    list_display = ("member_id", "name", "host", "pid", "roles", "state", "started_at", "last_seen")
    list_filter = ("state",)
    search_fields = ("member_id", "name", "host")


@admin.register(ClusterEvent)
class ClusterEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "event_type", "severity", "workflow_id")
    list_filter = ("event_type", "severity")
    search_fields = ("workflow_id",)
    show_full_result_count = False
    fields = ("id", "created_at", "event_type", "severity", "workflow_id", "payload_json")
    readonly_fields = fields

    @admin.display(description="payload")
    def payload_json(self, obj: ClusterEvent) -> SafeString:
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, default=str))
