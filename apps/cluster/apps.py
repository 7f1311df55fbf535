from __future__ import annotations

from django.apps import AppConfig


class ClusterConfig(AppConfig):
    name = "apps.cluster"
    label = "cluster"
    verbose_name = "Cluster"

    def ready(self) -> None:
        from apps.cluster.worker import install
        from workflow_engine.celery import app

        # a worker's shard consumer and signal handlers; Celery's Django fix-up sets Django up (so this runs)
        # before the worker builds its bootsteps
        install(app)
