"""Django admin for schedules. Fire rows and backfills are written by the leader: view only. Any role reads;
changing a schedule needs the admin role (``roles.MANAGE_SCHEDULES``), as in the API."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.schedules.models import BackfillRun, Schedule, ScheduleFire
from apps.workflows.admin import RoleAdmin
from workflow_engine import roles


class _ReadOnly(RoleAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Schedule)
class ScheduleAdmin(RoleAdmin):
    list_display = (
        "id",
        "workflow",
        "type",
        "interval",
        "cron_expression",
        "state",
        "next_fire_at",
        "last_fire_at",
    )
    list_filter = ("state", "type", "source")
    search_fields = ("id", "workflow__id", "name")
    # next/last fire times are the leader's; edit the spec through the API so they are recomputed
    readonly_fields = ("next_fire_at", "next_due_at", "last_fire_at", "source", "created_at", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(roles.MANAGE_SCHEDULES)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(roles.MANAGE_SCHEDULES)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(roles.MANAGE_SCHEDULES)


@admin.register(ScheduleFire)
class ScheduleFireAdmin(_ReadOnly):
    list_display = ("schedule", "fire_time", "outcome", "execution", "backfill", "created_at")
    list_filter = ("outcome",)
    search_fields = ("schedule__id", "execution__id")
    raw_id_fields = ("schedule", "execution", "backfill")


@admin.register(BackfillRun)
class BackfillRunAdmin(_ReadOnly):
    list_display = ("id", "schedule", "start", "end", "max_active", "state", "started", "total")
    list_filter = ("state",)
