"""The Celery application. Workers consume ``wf.nodes`` plus the ``wf.shard.<n>`` queues of their shards.

The cluster app adds the worker's shard consumer in its ``AppConfig.ready()`` (``apps/cluster/worker.py``);
tasks are found in the apps by ``autodiscover_tasks``. Publishing goes through ``workflow_engine.messaging``.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_engine.settings")

app = Celery("workflow_engine")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["apps.workflows"])
