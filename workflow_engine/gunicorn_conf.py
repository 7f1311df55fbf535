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
# gunicorn's own lines (the master's and its workers') through the same handler and format as the rest:
# JSON lines with LOG_FORMAT=json, repeats counted. The access log (GATEWAY_ACCESS_LOG) is one INFO record
# per request; below that level gunicorn's logger drops it.
logconfig_dict = {
    **_settings.LOGGING,
    "loggers": {
        **_settings.LOGGING["loggers"],  # type: ignore[dict-item]
        "gunicorn.error": {"level": _settings.LOG_LEVEL, "handlers": ["console"], "propagate": False},
        "gunicorn.access": {
            "level": "INFO" if _settings.GATEWAY_ACCESS_LOG else "WARNING",
            "handlers": ["console"],
            "propagate": False,
        },
    },
}
# The request line may be as long as the whole head the gateway worker buffers (MAX_HEAD_BYTES, 64 KiB; past
# it a JSON 431): gunicorn's own 4094-byte line limit answered long query strings (a filtered executions list)
# with an HTML 414 that no client of this API expects.
limit_request_line = 0
raw_env = ["WORKFLOW_PROCESS_ROLE=gateway"]
# gunicorn's control socket is one path per user (~/.gunicorn/gunicorn.ctl): two gateways on a host would
# fight over it, and nothing here uses gunicornc
control_socket_disable = True


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the merged metrics (prometheus_client multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
