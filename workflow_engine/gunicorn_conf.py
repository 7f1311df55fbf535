"""Gunicorn settings for the api-gateway role (run by ``manage.py run_node``, systemd or Kubernetes).

Values come from the same strictly parsed settings as everything else (``HTTP_HOST``, ``HTTP_PORT``,
``GATEWAY_WORKERS``, ``GATEWAY_THREADS``, ``GATEWAY_*_TIMEOUT``), so the profiles' defaults apply here too.

The worker is gunicorn's ``gthread`` with request heads read in its event loop (``gateway_worker.py``), so
that clients sending half a request hold a socket, not one of the few threads.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import multiprocess

from workflow_engine import settings as _settings

bind = f"{_settings.HTTP_HOST}:{_settings.HTTP_PORT}"
workers = _settings.GATEWAY_WORKERS
worker_class = "workflow_engine.gateway_worker.BufferingThreadWorker"
threads = _settings.GATEWAY_THREADS
timeout = 60
graceful_timeout = 20
accesslog = None
# The request line may be as long as the whole head the gateway worker buffers (MAX_HEAD_BYTES, 64 KiB; past
# it a JSON 431): gunicorn's own 4094-byte line limit answered long query strings (a filtered executions list)
# with an HTML 414 that no client of this API expects.
limit_request_line = 0
raw_env = ["WORKFLOW_PROCESS_ROLE=gateway"]


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the merged metrics (prometheus_client multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
