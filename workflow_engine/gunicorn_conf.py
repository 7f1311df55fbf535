"""Gunicorn settings for the api-gateway role (run by ``manage.py run_node`` or systemd)."""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import multiprocess

bind = f"{os.environ.get('HTTP_HOST', '127.0.0.1')}:{os.environ.get('HTTP_PORT', '8080')}"
workers = int(os.environ.get("GATEWAY_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GATEWAY_THREADS", "4"))
timeout = 60
graceful_timeout = 20
accesslog = None
raw_env = ["WORKFLOW_PROCESS_ROLE=gateway"]


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the merged metrics (prometheus_client multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
