from __future__ import annotations

from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "apps.workflows"
    label = "workflows"
    verbose_name = "Workflows"

    def ready(self) -> None:
        from apps.workflows.conf import engine_settings

        # every process (gateway, worker, coordinator, manage.py) refuses a bad configuration at start
        engine_settings.reload()
        _ = engine_settings.number_of_shards
        from apps.workflows.nodes.http import allow_list

        allow_list()  # WORKFLOW_HTTP_ALLOWED_HOSTS: an entry it cannot read is ImproperlyConfigured
