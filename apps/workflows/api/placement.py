"""Where a workflow's executions live, and the cluster events about a workflow (origin-product.md §6.2): the
workflows' routes over the cluster's leases and events."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.cluster.api import serializers as cluster_inp
from apps.cluster.api.schema import ClusterEventsSerializer
from apps.workflows.api.schema import ExecutionLocationSerializer, WorkflowLocationSerializer
from apps.workflows.services import placement
from workflow_engine.api import base
from workflow_engine.api.base import ApiView
from workflow_engine.api.schema import errors


@extend_schema(tags=["cluster"])
class WorkflowLocationView(ApiView):
    """Where the workflow's active executions live: each one's stored shard and that shard's owner now."""

    @extend_schema(
        summary="Shards and owners of a workflow's active executions",
        responses={200: WorkflowLocationSerializer, **errors(401, 404, 503)},
    )
    def get(self, request: Request, workflow_id: str) -> Response:
        return Response(placement.workflow_location(base.path_id(workflow_id, "Workflow")))


@extend_schema(tags=["cluster"])
class ExecutionLocationView(ApiView):
    """The execution's stored shard, the worker owning that shard now, and the lease's epoch."""

    @extend_schema(
        summary="An execution's shard, its owner and epoch",
        responses={200: ExecutionLocationSerializer, **errors(401, 404, 503)},
    )
    def get(self, request: Request, execution_id: str) -> Response:
        return Response(placement.execution_location(base.path_id(execution_id, "Execution")))


@extend_schema(tags=["events"])
class WorkflowEventsView(ApiView):
    """As ``GET /api/v1/events?workflow_id=...``; 404 when the workflow neither exists nor has events."""

    @extend_schema(
        operation_id="api_v1_events_of_workflow_retrieve",
        summary="Cluster events about one workflow, newest first",
        parameters=[cluster_inp.EventsPageQuery],
        responses={200: ClusterEventsSerializer, **errors(400, 401, 404, 503)},
    )
    def get(self, request: Request, workflow_id: str) -> Response:
        query = cluster_inp.EventsPageQuery.parse(request.query_params)
        return Response(placement.workflow_events(base.path_id(workflow_id, "Workflow"), **query))
