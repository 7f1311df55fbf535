"""The event-history routes (origin-product.md §6.3): projections of the journal, as the original UI reads.

Unlike the original, an unknown workflow or execution is a 404 in the error shape (it answered 200 with an
error body, or text).
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
        parameters=[inp.TimelineQuery],
        responses={200: TimelineSerializer, **errors(400, 401, 404)},
    )
    def get(self, request: Request, workflow_id: str) -> Response:
        query = inp.TimelineQuery.parse(request.query_params)
        return Response(queries.history_timeline(_workflow_id(workflow_id), query["executionId"]))
