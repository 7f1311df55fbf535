"""Django admin for definitions and executions.

Everything the engine writes is read-only here: an edit by hand would bypass the journal (an execution's state
is the fold of its events), so only viewing is allowed, and deleting finished executions. A staff account sees
these pages with any role (``roles.READ``) and runs the execution actions with the operator role, as in the
API; who created, edited and started what is shown.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from apps.workflows.engine.state import TERMINAL_STATUSES
from apps.workflows.models import Command, Event, Execution, Workflow, WorkflowVersion
from apps.workflows.services import control
from workflow_engine import roles
from workflow_engine.errors import EngineError

EVENTS_SHOWN = 500


def pretty_json(value: Any) -> SafeString:
    return format_html(
        "<pre style='white-space: pre-wrap'>{}</pre>", json.dumps(value, indent=2, default=str)
    )


class RoleAdmin(admin.ModelAdmin):
    """Viewing follows the roles (any role reads), not Django's per-model view permissions."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(roles.READ) or super().has_view_permission(request, obj)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(roles.READ) or super().has_module_permission(request)


class ReadOnlyAdmin(RoleAdmin):
    """View only: no add, change or delete."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class WorkflowVersionInline(admin.TabularInline):
    model = WorkflowVersion
    fields = ("number", "content_hash", "created_at", "created_by")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("-number",)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Workflow)
class WorkflowAdmin(RoleAdmin):
    list_display = ("id", "name", "current_version_number", "updated_at", "updated_by")
    list_select_related = ("current_version",)
    search_fields = ("id", "name")
    fields = (
        "id",
        "name",
        "current_version_number",
        "created_at",
        "created_by",
        "updated_at",
        "updated_by",
        "definition",
    )
    readonly_fields = fields
    inlines = (WorkflowVersionInline,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # definitions are validated by the API (POST /api/v1/workflows)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(roles.MANAGE_WORKFLOWS)

    @admin.display(description="version")
    def current_version_number(self, obj: Workflow) -> int | None:
        return obj.current_version.number if obj.current_version else None

    @admin.display(description="definition (current version)")
    def definition(self, obj: Workflow) -> SafeString | str:
        return pretty_json(obj.current_version.definition) if obj.current_version else "-"


@admin.register(WorkflowVersion)
class WorkflowVersionAdmin(ReadOnlyAdmin):
    list_display = ("workflow", "number", "content_hash", "created_at", "created_by")
    search_fields = ("workflow__id",)
    fields = ("workflow", "number", "content_hash", "created_at", "created_by", "definition_json")
    readonly_fields = fields

    @admin.display(description="definition")
    def definition_json(self, obj: WorkflowVersion) -> SafeString:
        return pretty_json(obj.definition)


@admin.register(Execution)
class ExecutionAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "workflow_id",
        "status",
        "shard_id",
        "trigger",
        "started_by",
        "created_at",
        "started_at",
        "ended_at",
    )
    list_filter = ("status", "trigger")
    search_fields = ("id", "workflow__id")
    date_hierarchy = "created_at"
    actions = (
        "cancel_executions",
        "pause_executions",
        "resume_executions",
        "retry_executions",
        "rerun_executions",
    )
    show_full_result_count = False
    fields = (
        "id",
        "workflow",
        "version",
        "shard_id",
        "status",
        "trigger",
        "started_by",
        "last_seq",
        "error",
        "created_at",
        "started_at",
        "ended_at",
        "journal",
    )
    readonly_fields = fields

    def _control(self, request: HttpRequest, queryset: Any, verb: str, act: Any) -> None:
        """Send one control command per selected execution, as the API does; report what could not apply."""
        done, refused = 0, []
        for execution in queryset:
            try:
                act(execution)
                done += 1
            except EngineError as exc:
                refused.append(f"{execution.id}: {exc.message}")
        if done:
            self.message_user(request, f"{verb}: {done} execution(s).", messages.SUCCESS)
        for line in refused[:20]:
            self.message_user(request, line, messages.WARNING)

    @admin.action(description="Cancel the selected executions", permissions=["operate"])
    def cancel_executions(self, request: HttpRequest, queryset: Any) -> None:
        who = request.user.get_username()
        self._control(request, queryset, "Cancel requested", lambda e: control.cancel(e.id, by=who))

    @admin.action(description="Pause the selected executions", permissions=["operate"])
    def pause_executions(self, request: HttpRequest, queryset: Any) -> None:
        who = request.user.get_username()
        self._control(request, queryset, "Pause requested", lambda e: control.control(e.id, "pause", by=who))

    @admin.action(description="Resume the selected executions", permissions=["operate"])
    def resume_executions(self, request: HttpRequest, queryset: Any) -> None:
        who = request.user.get_username()
        self._control(
            request, queryset, "Resume requested", lambda e: control.control(e.id, "resume", by=who)
        )

    @admin.action(
        description="Retry the selected failed executions from their failed nodes", permissions=["operate"]
    )
    def retry_executions(self, request: HttpRequest, queryset: Any) -> None:
        who = request.user.get_username()
        self._control(
            request, queryset, "Retry requested", lambda e: control.control(e.id, "retry_failed", by=who)
        )

    @admin.action(
        description="Rerun the selected executions (a new execution of the same version)",
        permissions=["operate"],
    )
    def rerun_executions(self, request: HttpRequest, queryset: Any) -> None:
        who = request.user.get_username()
        self._control(request, queryset, "Rerun started", lambda e: control.rerun(e.id, by=who))

    def has_operate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(roles.OPERATE)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # a finished execution may go; an active one belongs to its shard owner
        return (
            obj is not None
            and obj.status in TERMINAL_STATUSES
            and (
                request.user.has_perm(roles.MANAGE_WORKFLOWS)
                or super(ReadOnlyAdmin, self).has_delete_permission(request, obj)
            )
        )

    @admin.display(description=f"events (first {EVENTS_SHOWN})")
    def journal(self, obj: Execution) -> SafeString:
        rows = obj.events.order_by("seq").values_list("seq", "type", "epoch", "created_at", "payload")
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            (
                (seq, type_, epoch, at.isoformat(), json.dumps(payload, default=str))
                for seq, type_, epoch, at, payload in rows[:EVENTS_SHOWN]
            ),
        )
        return format_html(
            "<table><tr><th>seq</th><th>type</th><th>epoch</th><th>time</th><th>payload</th></tr>{}</table>",
            body,
        )


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("execution_id", "seq", "type", "epoch", "created_at")
    list_filter = ("type",)
    search_fields = ("execution__id",)
    show_full_result_count = False
    fields = ("execution", "seq", "type", "epoch", "created_at", "payload_json")
    readonly_fields = fields

    @admin.display(description="payload")
    def payload_json(self, obj: Event) -> SafeString:
        return pretty_json(obj.payload)


class ProcessedFilter(admin.SimpleListFilter):
    title = "processed"
    parameter_name = "processed"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "processed"), ("no", "pending")]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if self.value() in ("yes", "no"):
            return queryset.filter(processed_at__isnull=self.value() == "no")
        return queryset


@admin.register(Command)
class CommandAdmin(ReadOnlyAdmin):
    list_display = ("id", "execution_id", "type", "created_at", "processed_at", "processed_seq")
    list_filter = (ProcessedFilter, "type")
    search_fields = ("id", "execution__id")
    show_full_result_count = False
    fields = ("id", "execution", "type", "created_at", "processed_at", "processed_seq", "payload_json")
    readonly_fields = fields

    @admin.display(description="payload")
    def payload_json(self, obj: Command) -> SafeString:
        return pretty_json(obj.payload)
