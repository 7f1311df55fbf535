"""``manage.py worker_probe``: a worker's liveness probe (deploy/k8s/worker.yaml, an ``exec`` probe).

It pings this node's Celery worker by name, as ``celery inspect ping --destination`` does: the worker that
``run_node`` started as ``<WORKFLOW_NODE_NAME>@<hostname>`` (``processes.worker``). The reply comes from the
worker's main process, from the event loop that also runs its shard heartbeat and reconcile, so a hung or
stopped worker fails the probe. ``run_node``'s metrics endpoint, which the probe used to hit, keeps answering
whatever its children do.

Exit 0: the worker answered within ``--timeout``. Exit 1: it did not (the kubelet restarts the pod after
``failureThreshold`` failures). When Redis itself cannot be reached the probe passes and says so: the worker
cannot be judged, a restart would not bring Redis back, and the worker fences itself meanwhile.
"""

from __future__ import annotations

import socket
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from workflow_engine import redis_client
from workflow_engine.celery import app


class Command(BaseCommand):
    help = "Exit 0 when this node's Celery worker answers a ping within --timeout, else 1 (a liveness probe)."
    requires_system_checks: list[str] = []  # a probe runs often: only what it needs

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--name",
            default=settings.WORKFLOW_NODE_NAME,
            help="the worker's node name (WORKFLOW_NODE_NAME; the pod's name in deploy/k8s)",
        )
        parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the answer")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["timeout"] <= 0:
            raise CommandError("--timeout: must be more than 0 seconds")
        destination = f"{options['name']}@{socket.gethostname()}"
        try:
            redis_client.client().ping()
        except Exception as exc:  # any failure to reach Redis: the worker cannot be judged
            self.stdout.write(
                f"Redis unreachable ({redis_client.safe_url()}: {exc}); not judging {destination}"
            )
            return
        replies = app.control.ping(destination=[destination], timeout=options["timeout"]) or []
        if not any(destination in reply for reply in replies):
            raise CommandError(f"worker {destination} did not answer a ping within {options['timeout']:g} s")
        self.stdout.write(f"worker {destination} answered")
