"""The Celery application. Workers consume ``wf.nodes`` plus the ``wf.shard.<n>`` queues of their shards.

The cluster app adds the worker's shard consumer in its ``AppConfig.ready()`` (``apps/cluster/worker.py``);
tasks are found in the apps by ``autodiscover_tasks``. Publishing goes through ``workflow_engine.messaging``.

Logging is Django's ``LOGGING`` (``workflow_engine/logs.py``), in the worker too: with ``LOG_FORMAT=json`` the
banner becomes one record and what is printed is logged by line (a traceback as one record).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery, signals
from celery.apps import worker as celery_worker
from django.conf import settings

from workflow_engine import broker, logs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workflow_engine.settings")
broker.install()  # before the app makes its first broker connection

app = Celery("workflow_engine")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["apps.workflows"])


_logger = logging.getLogger(__name__)  # not under "celery", which the test profile quiets


@signals.celeryd_init.connect
def _configure_logging_early(instance: Any, **kwargs: Any) -> None:
    """Before the worker checks its privileges: the warning it gives when run as root is a record too."""
    logs.configure(settings.LOGGING)
    if settings.LOG_FORMAT == "json":
        instance.quiet = True  # the banner is logged as one record instead (_log_banner)
        # its shutdown notices ("worker: Warm shutdown") bypass sys.stdout: write them as JSON lines too
        celery_worker.safe_say = logs.say  # type: ignore[attr-defined]


@signals.setup_logging.connect
def _configure_logging(**kwargs: Any) -> None:
    """A receiver here makes Celery leave logging alone (no root handler of its own, no per-write redirect
    of stdout and stderr, which turned one traceback into hundreds of records)."""
    logs.configure(settings.LOGGING)
    if settings.LOG_FORMAT == "json":
        logs.redirect_output()


@signals.celeryd_after_setup.connect
def _log_banner(sender: str, instance: Any, **kwargs: Any) -> None:
    if not instance.quiet:
        return
    _logger.info(
        "celery worker starting",
        extra={
            "celery_node": sender,
            "concurrency": instance.concurrency,
            "pool": getattr(instance.pool_cls, "__module__", str(instance.pool_cls)),
            "broker": instance.app.connection().as_uri(),
            "queues": sorted(instance.app.amqp.queues),
            "tasks": sorted(name for name in instance.app.tasks if not name.startswith("celery.")),
        },
    )
