"""Request metrics: ``http_requests_total`` and ``http_request_duration_seconds`` per route template.

The ``path`` label is the resolved route (``api/v1/workflows/<str:workflow_id>``), never the raw path, so ids
cannot explode the label cardinality; a request no route matched is ``unmatched``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from apps.workflows import metrics

logger = logging.getLogger(__name__)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_of(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    return match.route if match is not None and match.route else "unmatched"


class RequestMetricsMiddleware:
    """First in ``MIDDLEWARE``, so it times everything; it never raises, whatever the metrics backend does."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        try:
            method = request.method if request.method in _METHODS else "other"
            path = route_of(request)
            metrics.http_requests_total.labels(method, path, str(response.status_code)).inc()
            metrics.http_request_duration_seconds.labels(method, path).observe(time.perf_counter() - started)
        except Exception:
            logger.warning("could not record request metrics", exc_info=True)
        return response
