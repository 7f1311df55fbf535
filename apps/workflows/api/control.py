"""Execution control over REST: cancel, pause, resume, retry from the failed nodes, rerun, and signals.

Each route puts one command in the execution's inbox (``services.control``) and answers at once with the
execution's current status; the shard owner applies the command moments later. An ``Idempotency-Key`` makes a
client retry the same command. Every route needs the operator role, except the approval signals (approve or
reject), which need the approver role (the ``workflows.approve_execution`` permission). Each command records
the user who sent it, and the events it becomes carry it (``by``, ``approvedBy``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework import serializers as s
from rest_framework.request import Request
from rest_framework.response import Response

from apps.workflows.api import serializers as inp
from apps.workflows.api.schema import ExecutionStartedSerializer
from apps.workflows.api.views import IDEMPOTENCY_KEY, execution_id_of, started_body
from apps.workflows.models import Execution
from apps.workflows.services import control
from workflow_engine import roles
from workflow_engine.api import base, permissions
from workflow_engine.api.base import ApiView, who
from workflow_engine.api.schema import errors

MAX_SIGNAL_NAME = 100


class CommandAcceptedSerializer(s.Serializer):
    message = s.CharField()
    executionId = s.CharField()
    command = s.CharField()
    status = s.CharField(help_text="The execution's status when the command was accepted.")


class CancelRequestSerializer(s.Serializer):
    reason = s.CharField(required=False, max_length=500)


_OPERATOR: dict[str, tuple[str, ...]] = {"POST": (roles.OPERATE,)}


def _accepted(execution: Execution, command: str) -> Response:
    return Response(
        {
            "message": f"{command.replace('_', ' ').capitalize()} accepted",
            "executionId": execution.id,
            "command": command,
            "status": execution.status,
        },
        status=202,
    )


def _key(request: Request) -> str | None:
    return inp.idempotency_key(request.headers.get("Idempotency-Key"))


_RESPONSES: dict[int, Any] = {202: CommandAcceptedSerializer, **errors(400, 401, 404, 409)}


@extend_schema(tags=["control"])
class CancelView(ApiView):
    permissions: ClassVar[dict[str, tuple[str, ...]]] = _OPERATOR

    @extend_schema(
        summary="Cancel an execution: running node attempts are told to stop",
        request=CancelRequestSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses=_RESPONSES,
    )
    def post(self, request: Request, execution_id: str) -> Response:
        body = base.optional_json_object(request.data)
        reason = body.get("reason", "")
        if not isinstance(reason, str) or len(reason) > 500:
            raise exceptions.ValidationError({"reason": ["Must be a string of at most 500 characters."]})
        execution = control.cancel(
            execution_id_of(execution_id), by=who(request), reason=reason, key=_key(request)
        )
        return _accepted(execution, "cancel")


def _control_view(kind: str, summary: str) -> type[ApiView]:
    @extend_schema(tags=["control"])
    class View(ApiView):
        permissions: ClassVar[dict[str, tuple[str, ...]]] = _OPERATOR

        @extend_schema(
            summary=summary,
            request=None,
            operation_id=f"executions_{kind}",
            parameters=[IDEMPOTENCY_KEY],
            responses=_RESPONSES,
        )
        def post(self, request: Request, execution_id: str) -> Response:
            execution = control.control(
                execution_id_of(execution_id), kind, by=who(request), key=_key(request)
            )
            return _accepted(execution, kind)

    View.__name__ = f"{kind.title().replace('_', '')}View"
    return View


PauseView = _control_view("pause", "Pause a running execution: no node starts; running attempts finish")
ResumeView = _control_view("resume", "Resume a paused execution")
RetryView = _control_view(
    "retry_failed",
    "Retry a failed execution from its failed nodes, reusing the outputs of the completed ones",
)


@extend_schema(tags=["control"])
class RerunView(ApiView):
    permissions: ClassVar[dict[str, tuple[str, ...]]] = _OPERATOR

    @extend_schema(
        summary="Start a new execution of the same workflow version",
        request=None,
        parameters=[IDEMPOTENCY_KEY],
        responses={200: ExecutionStartedSerializer, **errors(400, 401, 404, 409)},
    )
    def post(self, request: Request, execution_id: str) -> Response:
        result = control.rerun(execution_id_of(execution_id), by=who(request), key=_key(request))
        return Response(started_body(result))


@extend_schema(tags=["control"])
class SignalView(ApiView):
    # either role passes the route's gate; the handler checks which one this signal needs
    permissions: ClassVar[dict[str, tuple[str, ...]]] = {"POST": (roles.OPERATE, roles.APPROVE)}

    @extend_schema(
        summary="Send a named signal with a JSON payload (wait.signal and approval nodes wait for them)",
        description="An approval node's signal (and its rejection) needs the approver role; any other "
        "signal needs the operator role.",
        parameters=[IDEMPOTENCY_KEY],
        request={"application/json": OpenApiTypes.ANY},
        responses={202: CommandAcceptedSerializer, **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, execution_id: str, name: str) -> Response:
        if not name or len(name) > MAX_SIGNAL_NAME:
            raise exceptions.ValidationError({"name": [f"Must be 1 to {MAX_SIGNAL_NAME} characters."]})
        execution = control.get(execution_id_of(execution_id))
        approval = name in control.approval_signals(execution)
        permissions.require(request.user, (roles.APPROVE,) if approval else (roles.OPERATE,))
        payload: Any = request.data if request.body else None
        execution = control.signal(execution.id, name, payload, by=who(request), key=_key(request))
        return _accepted(execution, "signal")
