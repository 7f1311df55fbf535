"""``POST /api/v1/workflows/{id}/execute-es``: the original's "execute with Event Sourcing" route.

Every execution here is event-sourced, so it is ``execute`` (the same service, roles, Idempotency-Key and
concurrency policy) answered with the original's ``message`` and ``note`` when the execution started.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.workflows.api.schema import ExecutionStartedSerializer
from apps.workflows.api.views import IDEMPOTENCY_KEY, WorkflowExecuteView
from workflow_engine.api.schema import errors

MESSAGE = "Workflow execution started with Event Sourcing"


def note(workflow_id: str) -> str:
    return f"Events will be persisted. Check status at: GET /api/v1/workflows/{workflow_id}/status"


@extend_schema(tags=["executions"])
class WorkflowExecuteEsView(WorkflowExecuteView):
    @extend_schema(
        summary="Start an execution (the original's event-sourced execute; same as execute)",
        description="As `POST /api/v1/workflows/{id}/execute`; when the execution started, `message` and "
        "`note` are the original's execute-es ones. Queued, skipped and duplicate starts answer as execute.",
        parameters=[IDEMPOTENCY_KEY],
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: ExecutionStartedSerializer, **errors(400, 401, 404, 409, 415)},
    )
    def post(self, request: Request, workflow_id: str) -> Response:
        response = super().post(request, workflow_id)
        body: dict[str, Any] = response.data
        if body["status"] == "started":
            body.update(message=MESSAGE, note=note(body["workflowId"]))
        return response
