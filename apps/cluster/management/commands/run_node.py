"""``manage.py run_node``: start the processes of this node's roles, supervise them, stop them cleanly.

Roles come from ``WORKFLOW_ROLES`` (coordinator, worker, api-gateway). The node also serves the merged
Prometheus metrics of all its processes on ``METRICS_PORT`` (9095). A child that dies is restarted after a
short back-off; SIGTERM or SIGINT stops every child (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.cluster.processes import ROLE_COMMANDS

logger = logging.getLogger(__name__)
GRACE_SECONDS = 25.0


@dataclass
class Child:
    role: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)

    def start(self, env: dict[str, str]) -> None:
        # a session of its own, so that stopping it reaches its children (gunicorn and Celery workers)
        self.process = subprocess.Popen(self.argv, env=env, start_new_session=True)
        logger.info("started", extra={"role": self.role, "pid": self.process.pid})

    def signal(self, signum: int) -> None:
        if self.process and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)


class Command(BaseCommand):
    help = "Run this node's roles (WORKFLOW_ROLES) as supervised processes, with metrics on METRICS_PORT."
    # the children run Django's checks themselves; here they would import the metrics before their directory
    # exists (prometheus_client multiprocess mode)
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--roles", default=",".join(settings.WORKFLOW_ROLES))
        parser.add_argument("--no-metrics", action="store_true", help="do not serve metrics on METRICS_PORT")

    def handle(self, *args: Any, **options: Any) -> None:
        roles = [r.strip() for r in options["roles"].split(",") if r.strip()]
        unknown = [r for r in roles if r not in ROLE_COMMANDS]
        if unknown or not roles:
            raise CommandError(f"--roles: unknown {unknown}; expected some of {', '.join(ROLE_COMMANDS)}")
        env = self._environment()
        if not options["no_metrics"]:
            serve_metrics(env["PROMETHEUS_MULTIPROC_DIR"], settings.METRICS_PORT)
        children = [Child(role, ROLE_COMMANDS[role]()) for role in roles]
        self.stopping = False
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for child in children:
            child.start(env)
        self._supervise(children, env)
        stop_all(children)

    def _environment(self) -> dict[str, str]:
        """The children's environment. A metrics directory given to us was prepared by whoever started us
        (this process has already written to it); otherwise we make a fresh one, since stale files of an
        earlier run would be counted again."""
        env = dict(os.environ)
        if not env.get("PROMETHEUS_MULTIPROC_DIR"):
            metrics_dir = Path(settings.DATA_DIR) / "metrics" / f"{settings.WORKFLOW_NODE_NAME}-{os.getpid()}"
            shutil.rmtree(metrics_dir, ignore_errors=True)
            metrics_dir.mkdir(parents=True, exist_ok=True)
            env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        return env

    def _stop(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def _supervise(self, children: list[Child], env: dict[str, str]) -> None:
        while not self.stopping:
            for child in children:
                if child.process is not None and child.process.poll() is not None and not self.stopping:
                    self._restart(child, env)
            time.sleep(0.2)

    def _restart(self, child: Child, env: dict[str, str]) -> None:
        now = time.monotonic()
        child.restarts = [t for t in child.restarts if now - t < 60] + [now]
        code = child.process.returncode if child.process else None
        logger.error(
            "process exited; restarting",
            extra={"role": child.role, "returncode": code, "restarts_last_minute": len(child.restarts)},
        )
        time.sleep(min(10.0, 0.5 * len(child.restarts)))
        child.start(env)


def stop_all(children: list[Child]) -> None:
    for child in children:
        child.signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    for child in children:
        while child.process and child.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        child.signal(signal.SIGKILL)
        if child.process:
            child.process.wait()
    logger.info("node stopped")


def serve_metrics(directory: str, port: int) -> None:
    """Serve the merged metrics of every process of this node (prometheus_client multiprocess mode)."""
    # imported here, once PROMETHEUS_MULTIPROC_DIR is set: prometheus_client reads it at import
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)
    start_http_server(port, addr=settings.HTTP_HOST, registry=registry)
    logger.info("metrics served", extra={"port": port})
