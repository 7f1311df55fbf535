"""REST views for workflows and executions (origin-product.md §6.1, made real).

Thin adapters: parse the input (``serializers.py``), call one service or query, return its dict. Every error
is an exception turned into the one error shape by ``errors.exception_handler``. Every view checks the
caller's role (``permissions.HasRole``): reads need a role, definitions are for admins, executions for
operators.
"""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from apps.workflows import hooks
from apps.workflows.api import serializers as inp
from apps.workflows.api.listing_schema import TOTAL_COUNT, WorkflowListItemSerializer
from apps.workflows.api.schema import (
    DRAFT_WORKFLOW,
    MINIMAL_WORKFLOW,
    ExecutionEventsSerializer,
    ExecutionListItemSerializer,
    ExecutionLogsSerializer,
    ExecutionSerializer,
    ExecutionStartedSerializer,
    NodeTypesSerializer,
    WorkflowCreatedSerializer,
    WorkflowDefinitionSerializer,
    WorkflowDeletedSerializer,
    WorkflowHeadSerializer,
    WorkflowStatusSerializer,
    WorkflowUpdatedSerializer,
)
from apps.workflows.engine.nodetypes import catalogue
from apps.workflows.services import definitions, executions, queries
from apps.workflows.services.executions import Started
from workflow_engine import roles
from workflow_engine.api import base
from workflow_engine.api.base import ApiView, who
from workflow_engine.api.schema import errors


def workflow_id_of(value: str) -> str:
    return base.path_id(value, "Workflow")


def execution_id_of(value: str) -> str:
    return base.path_id(value, "Execution")


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description=f"Up to {inp.MAX_IDEMPOTENCY_KEY} characters, scoped to the calling user. A retry with the "
    'same key and the same body returns what the first request did (with "duplicate": true); the same key '
    "with a different body is a 409 naming the key.",
)

IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description='The ETag a GET returned (or "*"). When the workflow changed since, nothing is written and '
    "the answer is 412 Precondition Failed. Without it, the write is unconditional.",
)


def if_match(request: Request) -> frozenset[str] | None:
    """The opaque tags of ``If-Match`` (``W/`` is ignored: a proxy may have weakened our tag), or None."""
    header = request.headers.get("If-Match")
    if header is None:
        return None
    tags = set()
    for part in header.split(","):
        tag = part.strip().removeprefix("W/")
        if tag == definitions.ANY:
            tags.add(tag)
        elif len(tag) >= 2 and tag[0] == tag[-1] == '"' and '"' not in tag[1:-1]:
            tags.add(tag[1:-1])
        else:
            raise ValidationError({"If-Match": ['Must be "*" or ETags in double quotes, as a GET returned.']})
    return frozenset(tags)


def etag_header(version: Any) -> dict[str, str]:
    return {"ETag": f'"{definitions.etag(version)}"'} if version is not None else {}


def saved_fields(workflow: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """What a create or update answers about the latest save (``valid``, ``problems``), and its ETag."""
    head = definitions.head_of(workflow)
    return {"valid": head.valid, "problems": head.problems}, {"ETag": f'"{head.etag}"'}


_SAVED = (
    "A body that does not validate is saved as a draft (when it is a JSON object with a valid `id`): the "
    "answer says `valid: false` and lists its `problems` by field. A draft creates no version and cannot be "
    "executed or scheduled until a valid save; executions already running keep the version they pinned."
)


@extend_schema(tags=["workflows"])
class NodeTypesView(ApiView):
    @extend_schema(
        summary="List the node types, by category", responses={200: NodeTypesSerializer, **errors(401)}
    )
    def get(self, request: Request) -> Response:
        return Response(catalogue.catalogue())


@extend_schema(tags=["workflows"])
class WorkflowListView(ApiView):
    permissions: ClassVar[dict[str, tuple[str, ...]]] = {"POST": (roles.MANAGE_WORKFLOWS,)}

    @extend_schema(
        summary="List workflow definitions (their latest saves, drafts too, by id)",
        parameters=[inp.WorkflowListQuery, TOTAL_COUNT],
        responses={200: WorkflowListItemSerializer(many=True), **errors(400, 401)},
    )
    def get(self, request: Request) -> Response:
        query = inp.WorkflowListQuery.parse(request.query_params)
        text, tag, limit, offset = query["q"], query["tag"], query["limit"], query["offset"]
        items = queries.workflow_list(limit=limit, offset=offset, text=text, tag=tag, recent=query["recent"])
        # the whole list counts itself; a page costs one more query
        total = len(items) if limit is None and not offset else queries.workflow_count(text=text, tag=tag)
        return Response(items, headers={"X-Total-Count": str(total)})

    @extend_schema(
        summary="Create a workflow (or a draft of one)",
        description=_SAVED,
        request=WorkflowDefinitionSerializer,
        examples=[MINIMAL_WORKFLOW, DRAFT_WORKFLOW],
        responses={201: WorkflowCreatedSerializer, **errors(400, 401, 409, 413, 415)},
    )
    def post(self, request: Request) -> Response:
        workflow = definitions.create(request.data, by=who(request), draft_ok=True)
        saved, etag = saved_fields(workflow)
        return Response(
            {
                "message": "Workflow created successfully",
                "workflowId": workflow.id,
                "version": workflow.current_version.number if workflow.current_version else 0,
                # scheduleStatus (the schedules app); a draft schedules nothing (None: no definition synced)
                **hooks.created_fields(request.data if saved["valid"] else None),
                **saved,
            },
            status=201,
            headers=etag,
        )


@extend_schema(tags=["workflows"])
class WorkflowDetailView(ApiView):
    permissions: ClassVar[dict[str, tuple[str, ...]]] = {
        "PUT": (roles.MANAGE_WORKFLOWS,),
        "DELETE": (roles.MANAGE_WORKFLOWS,),
    }

    @extend_schema(
        summary="Get a workflow definition (its latest save, as posted: a valid version or a draft)",
        description="The `ETag` header names the latest save; send it back in `If-Match` on PUT or "
        "DELETE so that a concurrent change is refused (412) instead of overwritten. `valid` and `problems` "
        "say whether it is a draft and what to fix; they are ignored when the body is PUT back.",
        responses={200: WorkflowHeadSerializer, **errors(401, 404)},
    )
    def get(self, request: Request, workflow_id: str) -> Response:
        body, tag = queries.workflow_definition(workflow_id_of(workflow_id))  # with the DSL's defaults
        return Response(body, headers={"ETag": f'"{tag}"'})

    @extend_schema(
        summary="Update a workflow (a new version when the body changed and validates, else a draft)",
        description="Executions already started keep the version they pinned. The answer's `ETag` names "
        f"the latest save. {_SAVED}",
        examples=[MINIMAL_WORKFLOW, DRAFT_WORKFLOW],
        request=WorkflowDefinitionSerializer,
        parameters=[IF_MATCH],
        responses={200: WorkflowUpdatedSerializer, **errors(400, 401, 404, 412, 413, 415)},
    )
    def put(self, request: Request, workflow_id: str) -> Response:
        workflow, changed = definitions.update(
            workflow_id_of(workflow_id),
            request.data,
            by=who(request),
            if_match=if_match(request),
            draft_ok=True,
        )
        current = workflow.current_version
        saved, etag = saved_fields(workflow)
        return Response(
            {
                "message": "Workflow updated successfully",
                "workflowId": workflow.id,
                "version": current.number if current else 0,
                "changed": changed,
                **saved,
            },
            headers=etag,
        )

    @extend_schema(
        summary="Delete a workflow, its versions and its finished executions",
        parameters=[IF_MATCH],
        responses={200: WorkflowDeletedSerializer, **errors(400, 401, 404, 409, 412)},
    )
    def delete(self, request: Request, workflow_id: str) -> Response:
        definitions.delete(workflow_id_of(workflow_id), if_match=if_match(request))
        return Response({"message": "Workflow deleted successfully", "workflowId": workflow_id})


_MESSAGES = {
    "started": "Workflow execution started",
    "queued": "Workflow execution queued: the workflow is at its concurrency limit",
    "skipped": "Workflow execution skipped: the workflow is at its concurrency limit",
    "duplicate": "Workflow execution already started with this Idempotency-Key",
}


def started_body(result: Started) -> dict[str, Any]:
    """The original's execute reply, with ``status`` started, queued, skipped, or the earlier one's status."""
    execution = result.execution
    body: dict[str, Any] = {
        "message": _MESSAGES[result.outcome],
        "executionId": execution.id if execution else None,
        "workflowId": execution.workflow_id if execution else None,
        "status": execution.status if result.outcome == "duplicate" and execution else result.outcome,
        "note": f"Check status at: GET /api/v1/executions/{execution.id}" if execution else "",
    }
    if result.outcome == "duplicate":
        body["duplicate"] = True
    return body


@extend_schema(tags=["executions"])
class WorkflowExecuteView(ApiView):
    permissions: ClassVar[dict[str, tuple[str, ...]]] = {"POST": (roles.OPERATE,)}

    @extend_schema(
        summary="Start an execution of the workflow's current version",
        description="A workflow whose latest save is a draft cannot start: 400 `invalid_definition`, with "
        "the draft's problems as `details`.",
        parameters=[IDEMPOTENCY_KEY],
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: ExecutionStartedSerializer, **errors(400, 401, 404, 409, 415)},
    )
    def post(self, request: Request, workflow_id: str) -> Response:
        workflow_id = workflow_id_of(workflow_id)
        key = inp.idempotency_key(request.headers.get("Idempotency-Key"))
        body = base.optional_json_object(request.data)
        given = body.get("input", {})
        if not isinstance(given, dict):
            raise ValidationError({"input": ["Must be a JSON object (the execution.input node outputs it)."]})
        result = executions.admit(
            workflow_id,
            idempotency_key=key,
            trigger="api",
            input=given,
            by=who(request),
            request_hash=executions.request_hash({"input": given}),
        )
        return Response(started_body(result))


@extend_schema(tags=["executions"])
class WorkflowStatusView(ApiView):
    @extend_schema(
        summary="The workflow's state, current and last execution",
        responses={200: WorkflowStatusSerializer, **errors(401, 404)},
    )
    def get(self, request: Request, workflow_id: str) -> Response:
        return Response(queries.workflow_status(workflow_id_of(workflow_id)))


@extend_schema(tags=["executions"])
class WorkflowExecutionsView(ApiView):
    @extend_schema(
        summary="List the workflow's executions, newest first",
        parameters=[inp.ExecutionListQuery],
        responses={200: ExecutionListItemSerializer(many=True), **errors(400, 401, 404)},
    )
    def get(self, request: Request, workflow_id: str) -> Response:
        query = inp.ExecutionListQuery.parse(request.query_params)
        return Response(queries.execution_list(workflow_id_of(workflow_id), **query))


@extend_schema(tags=["executions"])
class ExecutionLogsView(ApiView):
    @extend_schema(
        summary="An execution's log lines",
        parameters=[inp.LogsQuery],
        responses={200: ExecutionLogsSerializer, **errors(400, 401, 404)},
    )
    def get(self, request: Request, workflow_id: str, execution_id: str) -> Response:
        query = inp.LogsQuery.parse(request.query_params)
        return Response(
            queries.execution_logs(workflow_id_of(workflow_id), execution_id_of(execution_id), **query)
        )


@extend_schema(tags=["executions"])
class ExecutionView(ApiView):
    @extend_schema(
        summary="An execution: status, nodes and outputs",
        responses={200: ExecutionSerializer, **errors(401, 404)},
    )
    def get(self, request: Request, execution_id: str) -> Response:
        return Response(queries.execution_detail(execution_id_of(execution_id)))


@extend_schema(tags=["executions"])
class ExecutionEventsView(ApiView):
    @extend_schema(
        summary="An execution's journal events, by seq",
        parameters=[inp.EventsQuery],
        responses={200: ExecutionEventsSerializer, **errors(400, 401, 404)},
    )
    def get(self, request: Request, execution_id: str) -> Response:
        query = inp.EventsQuery.parse(request.query_params)
        return Response(queries.execution_events(execution_id_of(execution_id), **query))
