"""``manage.py run_node``: start the processes of this node's roles, supervise them, stop them cleanly.

Roles come from ``WORKFLOW_ROLES`` (coordinator, worker, api-gateway). The node also serves the merged
Prometheus metrics of all its processes on ``METRICS_PORT`` (9095). A child that dies is restarted after a
short back-off; SIGTERM or SIGINT stops every child (SIGTERM, then SIGKILL after a grace period).

Before starting anything it checks its ports, PostgreSQL and Redis (``preflight``): a failure is one line
naming the variable and exits non-zero. Each child gets a parent-death signal (Linux), so that a
``run_node`` killed by any signal, SIGKILL included, takes its children with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.cluster import startup
from apps.cluster.management import preflight
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
        self.process = subprocess.Popen(
            self.argv, env=env, start_new_session=True, preexec_fn=die_with_parent(os.getpid())
        )
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
        parser.add_argument(
            "--check", action="store_true", help="check the ports, PostgreSQL and Redis, then exit (0: ready)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        roles = [r.strip() for r in options["roles"].split(",") if r.strip()]
        unknown = [r for r in roles if r not in ROLE_COMMANDS]
        if unknown or not roles:
            raise CommandError(f"--roles: unknown {unknown}; expected some of {', '.join(ROLE_COMMANDS)}")
        try:
            run_preflight(roles, metrics=not options["no_metrics"])
        except preflight.PreflightError as exc:
            self._refuse(str(exc))
        if options["check"]:
            return
        env = self._environment()
        if not options["no_metrics"]:
            try:
                serve_metrics(env["PROMETHEUS_MULTIPROC_DIR"], settings.METRICS_PORT)
            except OSError as exc:  # taken since the check
                self._refuse(
                    str(preflight.port_error("METRICS_PORT", settings.HTTP_HOST, settings.METRICS_PORT, exc))
                )
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

    def _refuse(self, message: str) -> None:
        """One log line (JSON or text, as every other) and exit 1: a traceback would bury the message."""
        logger.error("cannot start: %s", message)
        raise SystemExit(1)

    def _supervise(self, children: list[Child], env: dict[str, str]) -> None:
        while not self.stopping:
            for child in children:
                if child.process is not None and child.process.poll() is not None and not self.stopping:
                    if child.process.returncode == startup.EXIT_CONFIG:
                        self._give_up(child, children)
                    self._restart(child, env)
            time.sleep(0.2)

    def _give_up(self, child: Child, children: list[Child]) -> None:
        """A child that refused its configuration (its Redis belongs to another cluster, the shard count
        changed: ``apps.cluster.startup``) would refuse again at every restart: stop the node with the same
        code, which the systemd units do not restart (``RestartPreventExitStatus=78``)."""
        logger.error(
            "cannot start: the %s refused its configuration (its log line above says why); stopping the node",
            child.role,
            extra={"role": child.role, "returncode": startup.EXIT_CONFIG},
        )
        stop_all(children)
        raise SystemExit(startup.EXIT_CONFIG)

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


def run_preflight(roles: list[str], metrics: bool) -> None:
    """What a node needs before its children start: free ports, then PostgreSQL and Redis."""
    if "api-gateway" in roles:
        preflight.check_port("HTTP_PORT", settings.HTTP_HOST, settings.HTTP_PORT)
    if metrics:
        preflight.check_port("METRICS_PORT", settings.HTTP_HOST, settings.METRICS_PORT)
    preflight.check_database()
    preflight.check_redis()


_PR_SET_PDEATHSIG = 1
_libc = (
    ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True) if sys.platform == "linux" else None
)


def die_with_parent(parent: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` giving the child SIGTERM when ``run_node`` dies, however it dies (Linux).

    The child runs in a session of its own, so no terminal or process-group signal reaches it; the kernel's
    parent-death signal does, even after a SIGKILL of ``run_node``. SIGTERM lets each child stop as it would
    on ``run_node``'s own stop: gunicorn's master stops its workers, Celery's its pool, the coordinator
    gives its lease up. Grandchildren watch their own parents (gunicorn workers their master, Celery's
    pool its worker). The signal is armed by the thread that forks: ``run_node`` starts and restarts
    children from its main thread only. After fork this makes system calls only (no lock, no import, no
    allocation by us), which keeps a ``preexec_fn`` safe in a process with threads (the metrics server's).
    """
    if _libc is None:
        return None
    prctl = _libc.prctl

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # run_node died before the signal was armed
            os.kill(os.getpid(), signal.SIGTERM)

    return arm


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
