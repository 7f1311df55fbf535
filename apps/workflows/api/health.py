"""Health probes, open (no authentication) and outside ``/api``.

``/health/live`` answers without touching anything: a process that can answer is alive. ``/health`` and
``/health/ready`` check PostgreSQL, Redis and the migrations with short timeouts, and answer 503 (never 500)
when one of them fails, naming the failing check.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import redis
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from drf_spectacular.utils import OpenApiResponse, extend_schema
from redis.backoff import NoBackoff
from redis.retry import Retry
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.workflows.api.schema import HealthSerializer, LiveSerializer
from workflow_engine import redis_client

REDIS_TIMEOUT = 1.0
_MAX_ERROR = 300

Check = dict[str, Any]


@lru_cache(maxsize=1)
def _redis(pid: int) -> redis.Redis:
    """A client for the probe only: 1 s timeouts and no retries, so a down Redis fails the probe fast."""
    return redis_client.connect(
        socket_timeout=REDIS_TIMEOUT,
        socket_connect_timeout=REDIS_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
    )


def _timed(probe: Callable[[], None]) -> Check:
    started = time.perf_counter()
    try:
        probe()
    except Exception as exc:  # a probe reports every failure; it never raises
        return {
            "status": "error",
            "error": f"{type(exc).__name__}: {exc}"[:_MAX_ERROR],
            "latencyMs": round((time.perf_counter() - started) * 1000, 1),
        }
    return {"status": "ok", "latencyMs": round((time.perf_counter() - started) * 1000, 1)}


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis_ping() -> None:
    _redis(os.getpid()).ping()


def _migrations() -> None:
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in plan[:5])
        raise RuntimeError(f"{len(plan)} migration(s) not applied: {names}")


def run_checks() -> dict[str, Check]:
    checks = {"database": _timed(_database), "redis": _timed(_redis_ping)}
    if checks["database"]["status"] == "ok":
        checks["migrations"] = _timed(_migrations)
    else:  # would wait for the connect timeout a second time
        checks["migrations"] = {"status": "error", "error": "Not checked: the database is unavailable."}
    return checks


def _report() -> Response:
    checks = run_checks()
    healthy = all(c["status"] == "ok" for c in checks.values())
    return Response(
        {"status": "healthy" if healthy else "unhealthy", "checks": checks},
        status=200 if healthy else 503,
        headers={"Cache-Control": "no-store"},
    )


class _AlwaysJSON(BaseContentNegotiation):
    """A probe answers whatever the client's Accept header says (a 406 would read as "down")."""

    def select_parser(self, request: Request, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(
        self, request: Request, renderers: Any, format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        return JSONRenderer(), JSONRenderer.media_type


class _Probe(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    content_negotiation_class = _AlwaysJSON


_CHECKED = {200: HealthSerializer, 503: OpenApiResponse(HealthSerializer, description="A check failed.")}


@extend_schema(tags=["health"])
class HealthView(_Probe):
    @extend_schema(summary="Health: database, Redis and migrations", responses=_CHECKED)
    def get(self, request: Request) -> Response:
        return _report()


@extend_schema(tags=["health"])
class ReadyView(_Probe):
    @extend_schema(summary="Readiness probe: database, Redis and migrations", responses=_CHECKED)
    def get(self, request: Request) -> Response:
        return _report()


@extend_schema(tags=["health"])
class LiveView(_Probe):
    @extend_schema(summary="Liveness probe: the process answers", responses={200: LiveSerializer})
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"}, headers={"Cache-Control": "no-store"})
