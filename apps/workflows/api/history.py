"""The event-history routes (origin-product.md §6.3): projections of the journal, as the original UI reads.

As in the original, an unknown workflow has an empty history (``executions: []``) and an ``idle`` status: its
entity was created by the asking. An unknown execution (``execution/{id}``, ``timeline``) is a 404 in the one
error shape, whose ``error`` field a client of the original's 200 ``{"error": "Execution not found"}`` still
finds (docs/api.md, "Compatibility with the original").
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.workflows.api import serializers as inp
from apps.workflows.api.schema import (
    ExecutionDetailSerializer,
    HistorySerializer,
    HistoryStatusSerializer,
    TimelineSerializer,
)
from apps.workflows.services import queries
from workflow_engine.api import base
from workflow_engine.api.base import ApiView
from workflow_engine.api.schema import errors


def _workflow_id(value: str) -> str:
    return base.path_id(value, "Workflow")


@extend_schema(tags=["history"])
class HistoryView(ApiView):
    @extend_schema(
        summary="Execution history of a workflow, oldest first, from the events",
        description="An unknown workflow answers 200 with `executions: []`, as the original did.",
        parameters=[inp.HistoryQuery],
        responses={200: HistorySerializer, **errors(400, 401, 404)},
    )
    def get(self, request: Request, workflow_id: str) -> Response:
        query = inp.HistoryQuery.parse(request.query_params)
        return Response(queries.history(_workflow_id(workflow_id), **query))


@extend_schema(tags=["history"])
class HistoryStatusView(ApiView):
    @extend_schema(
        summary="Workflow state and execution summaries, from the events",
        description='An unknown workflow answers 200: `state: "idle"`, `allExecutions: []`.',
        parameters=[inp.HistoryQuery],
        responses={200: HistoryStatusSerializer, **errors(400, 401, 404)},
    )
    def get(self, request: Request, workflow_id: str) -> Response:
        query = inp.HistoryQuery.parse(request.query_params)
        return Response(queries.history_status(_workflow_id(workflow_id), **query))


@extend_schema(tags=["history"])
class HistoryExecutionView(ApiView):
    @extend_schema(
        summary="One execution's detail, from its events",
        responses={200: ExecutionDetailSerializer, **errors(401, 404)},
    )
    def get(self, request: Request, workflow_id: str, execution_id: str) -> Response:
        return Response(
            queries.history_execution(_workflow_id(workflow_id), base.path_id(execution_id, "Execution"))
        )


@extend_schema(tags=["history"])
class TimelineView(ApiView):
    @extend_schema(
        summary="Timeline of an execution (default: the oldest)",
        description="404 when the workflow has no such execution (the original answered 200 with "
        '`{"error": "Execution not found"}`; our 404 body has `error` too).',
        parameters=[inp.TimelineQuery],
        responses={200: TimelineSerializer, **errors(400, 401, 404)},
    )
    def get(self, request: Request, workflow_id: str) -> Response:
        query = inp.TimelineQuery.parse(request.query_params)
        return Response(queries.history_timeline(_workflow_id(workflow_id), query["executionId"]))
