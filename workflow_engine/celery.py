"""The Celery application. Workers consume ``wf.nodes`` plus the ``wf.shard.<n>`` queues of their shards."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_engine.settings")

app = Celery("workflow_engine")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["apps.workflows"])

from apps.cluster.worker import install  # noqa: E402  (needs the app)

install(app)
