from __future__ import annotations

from django.apps import AppConfig


class SchedulesConfig(AppConfig):
    name = "apps.schedules"
    label = "schedules"
    verbose_name = "Schedules"

    def ready(self) -> None:
        from apps.cluster import hooks as cluster_hooks
        from apps.schedules.services import rounds, schedules
        from apps.workflows import hooks as workflow_hooks

        cluster_hooks.on_leader_tick(rounds.tick)  # schedules fire on the leader, every tick
        # a definition's ``metadata.schedule`` is a schedule of its own, kept in step with the definition
        workflow_hooks.on_definition_saved(schedules.sync_from_definition)
        workflow_hooks.on_created_fields(lambda body: {"scheduleStatus": schedules.status_text(body)})
