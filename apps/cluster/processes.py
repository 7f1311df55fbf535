"""Command lines of the role processes, shared by ``run_node``, the tests and the deployment docs."""

from __future__ import annotations

import sys
from pathlib import Path

from django.conf import settings

MANAGE = str(Path(settings.BASE_DIR) / "manage.py")


def gateway() -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "workflow_engine.wsgi:application",
        "-c",
        "python:workflow_engine.gunicorn_conf",
    ]


def worker(concurrency: int | None = None, name: str | None = None) -> list[str]:
    node = name or settings.WORKFLOW_NODE_NAME
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workflow_engine",
        "worker",
        "-P",
        "prefork",
        "-c",
        str(concurrency or settings.WORKER_CONCURRENCY),
        "-Q",
        "wf.nodes",
        "-n",
        f"{node}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-l",
        settings.LOG_LEVEL,
    ]


def coordinator() -> list[str]:
    return [sys.executable, MANAGE, "run_coordinator"]


ROLE_COMMANDS = {"api-gateway": gateway, "worker": worker, "coordinator": coordinator}
