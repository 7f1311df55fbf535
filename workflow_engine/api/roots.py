"""The roots a new client starts from: ``/`` sends a browser to the web console (``/ui/``), and ``/api/``
and ``/api/v1/`` list the API's resource roots, each a link to follow.

The list names paths, not views, so the platform imports no app; ``tests/integration/test_roots.py`` follows
every link it gives (with ids filled in) so that it cannot point at a route that does not exist.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponseRedirect
from drf_spectacular.utils import extend_schema
from rest_framework import serializers as s
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

API_VERSION = "v1"

# resource -> (path template, what it is); ``{...}`` are the ids a client fills in
RESOURCES: dict[str, tuple[str, str]] = {
    "workflows": ("/api/v1/workflows", "Workflow definitions: list, create; one by id: get, update, delete."),
    "workflow": ("/api/v1/workflows/{workflowId}", "One workflow's current definition."),
    "nodeTypes": ("/api/v1/workflows/node-types", "The node catalogue: every node type and its config."),
    "execute": ("/api/v1/workflows/{workflowId}/execute", "Start an execution (POST)."),
    "workflowExecutions": ("/api/v1/workflows/{workflowId}/executions", "One workflow's executions."),
    "executions": ("/api/v1/executions", "Executions across workflows: filters, newest first, cursor pages."),
    "execution": ("/api/v1/executions/{executionId}", "One execution: status, nodes, outputs."),
    "executionEvents": ("/api/v1/executions/{executionId}/events", "One execution's journal."),
    "history": ("/api/history/{workflowId}", "The original's event-history projection of a workflow."),
    "schedules": ("/api/v1/schedules", "Schedules: list, create; templates at /api/v1/schedules/templates."),
    "backfill": ("/api/v1/backfills/{backfillId}", "One backfill's progress."),
    "cluster": ("/api/v1/cluster/stats", "The cluster: members, leader, shards."),
    "events": ("/api/v1/events", "Cluster events, newest first."),
    "docs": ("/api/docs/", "These routes, browsable (Swagger UI)."),
    "console": ("/ui/", "The web console, for a person in a browser (signs in with a session)."),
    "schema": ("/api/schema/", "The OpenAPI schema."),
    "health": ("/health", "Liveness and readiness (no authentication)."),
}


class _ResourceSerializer(s.Serializer):
    href = s.CharField(help_text="A path; `{...}` parts are ids to fill in.")
    description = s.CharField()


class ApiRootSerializer(s.Serializer):
    version = s.CharField()
    resources = s.DictField(child=_ResourceSerializer(), help_text="Each resource root, by name.")


def listing() -> dict[str, Any]:
    return {
        "version": API_VERSION,
        "resources": {name: {"href": href, "description": text} for name, (href, text) in RESOURCES.items()},
    }


@extend_schema(tags=["api"])
class ApiRootView(APIView):
    """The API's resource roots; open, so that a client can find its way before it has a token."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(summary="The API's resource roots", responses={200: ApiRootSerializer})
    def get(self, request: Request) -> Response:
        return Response(listing())


def site_root(request: HttpRequest) -> HttpResponseRedirect:
    """``/``: where a person starts (the admin's "view site" link leads here too)."""
    return HttpResponseRedirect("/ui/")
