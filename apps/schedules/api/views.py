"""REST views for schedules: the original's routes (origin-product.md §4, §6.1) made real, plus full CRUD,
a preview of the next fire times and backfills. Thin adapters over ``services``.

In ``/{id}/pause``, ``/resume`` and ``/stop`` the original's ``{id}`` was a workflow id: a schedule id or a
workflow id is accepted there (a workflow id acts on all of its schedules that are not stopped).

Reading needs a role; every change (create, edit, delete, pause, resume, stop, backfill) is for admins.
"""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers as s
from rest_framework.request import Request
from rest_framework.response import Response

from apps.schedules.api import serializers as ser
from apps.schedules.services import backfills, schedules
from workflow_engine import roles
from workflow_engine.api import base
from workflow_engine.api.base import ApiView
from workflow_engine.api.schema import errors

ID_OR_WORKFLOW = OpenApiParameter(
    "schedule_id",
    str,
    OpenApiParameter.PATH,
    description="A schedule id, or a workflow id (all its schedules).",
)


def _parse(serializer_class: type[s.Serializer], data: Any, partial: bool = False) -> s.Serializer:
    serializer = serializer_class(data=base.optional_json_object(data), partial=partial)
    serializer.is_valid(raise_exception=True)
    return serializer


def _query(serializer_class: type[s.Serializer], params: Any) -> dict[str, Any]:
    serializer = serializer_class(data={k: v for k, v in params.items()})
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _schedule_id(value: str) -> str:
    return base.path_id(value, "Schedule")


_MANAGE = (roles.MANAGE_SCHEDULES,)


@extend_schema(tags=["schedules"])
class ScheduleListView(ApiView):
    permissions: ClassVar[dict[str, tuple[str, ...]]] = {"POST": _MANAGE}

    @extend_schema(
        summary="List schedules (the original's shape, with full objects)",
        operation_id="api_v1_schedules_list",
        parameters=[ser.ListQuery],
        responses={200: ser.ScheduleListDoc, **errors(400, 401)},
    )
    def get(self, request: Request) -> Response:
        query = _query(ser.ListQuery, request.query_params)
        found = [ser.schedule_json(x) for x in schedules.listing(query.get("workflowId"), query.get("state"))]
        return Response({"schedules": found, "count": len(found)})

    @extend_schema(
        summary="Create a schedule",
        request=ser.ScheduleInput,
        responses={201: ser.ScheduleDoc, **errors(400, 401, 404, 415)},
    )
    def post(self, request: Request) -> Response:
        data = _parse(ser.ScheduleInput, request.data)
        workflow_id = data.validated_data["workflowId"]
        schedule = schedules.create(workflow_id, data.fields_for_model())  # type: ignore[attr-defined]
        return Response(ser.schedule_json(schedule), status=201)


@extend_schema(tags=["schedules"])
class ScheduleAddView(ApiView):
    permissions: ClassVar[dict[str, tuple[str, ...]]] = {"POST": _MANAGE}

    @extend_schema(
        summary="Add a schedule to a workflow (the original's route)",
        request=ser.AddInput,
        responses={200: ser.AddedDoc, **errors(400, 401, 404, 415)},
    )
    def post(self, request: Request) -> Response:
        data = _parse(ser.AddInput, request.data).validated_data
        fields = {
            "type": data["scheduleType"],
            "interval": data.get("interval"),
            "cron_expression": data.get("cronExpression"),
        }
        schedule = schedules.create(data["workflowId"], fields)
        return Response(
            {
                "message": "Schedule added successfully",
                "workflowId": schedule.workflow_id,
                "scheduleType": schedule.type,
                "scheduleId": schedule.id,
            }
        )


@extend_schema(tags=["schedules"])
class TemplatesView(ApiView):
    @extend_schema(summary="The schedule templates", responses={200: ser.TemplatesDoc, **errors(401)})
    def get(self, request: Request) -> Response:
        return Response({"templates": schedules.TEMPLATES})


@extend_schema(tags=["schedules"])
class ScheduleDetailView(ApiView):
    permissions: ClassVar[dict[str, tuple[str, ...]]] = {"PUT": _MANAGE, "PATCH": _MANAGE, "DELETE": _MANAGE}

    @extend_schema(summary="A schedule", responses={200: ser.ScheduleDoc, **errors(401, 404)})
    def get(self, request: Request, schedule_id: str) -> Response:
        return Response(ser.schedule_json(schedules.get(_schedule_id(schedule_id))))

    @extend_schema(
        summary="Replace a schedule's settings (a new spec fires from its next time, without catch-up)",
        request=ser.ScheduleChange,
        responses={200: ser.ScheduleDoc, **errors(400, 401, 404, 409, 415)},
    )
    def put(self, request: Request, schedule_id: str) -> Response:
        return self._change(request, schedule_id, partial=False)

    @extend_schema(
        summary="Change some of a schedule's settings",
        request=ser.ScheduleChange,
        responses={200: ser.ScheduleDoc, **errors(400, 401, 404, 409, 415)},
    )
    def patch(self, request: Request, schedule_id: str) -> Response:
        return self._change(request, schedule_id, partial=True)

    def _change(self, request: Request, schedule_id: str, *, partial: bool) -> Response:
        data = _parse(ser.ScheduleChange, request.data, partial=partial)
        schedule = schedules.update(_schedule_id(schedule_id), data.fields_for_model())  # type: ignore[attr-defined]
        return Response(ser.schedule_json(schedule))

    @extend_schema(
        summary="Delete a schedule and its fire history (executions stay)",
        responses={200: ser.DeletedDoc, **errors(401, 404)},
    )
    def delete(self, request: Request, schedule_id: str) -> Response:
        schedules.delete(_schedule_id(schedule_id))
        return Response({"message": "Schedule deleted", "scheduleId": schedule_id})


class _ControlView(ApiView):
    permissions: ClassVar[dict[str, tuple[str, ...]]] = {"POST": _MANAGE}
    action = ""
    message = ""

    def _apply(self, schedule_id: str) -> Response:
        target = _schedule_id(schedule_id)
        changed = [getattr(schedules, self.action)(x) for x in schedules.resolve(target)]
        workflow_id = changed[0].workflow_id if changed else target
        return Response(
            {"message": self.message, "workflowId": workflow_id, "scheduleIds": [x.id for x in changed]}
        )


_CONTROL: dict[str, Any] = {
    "parameters": [ID_OR_WORKFLOW],
    "request": None,
    "responses": {200: ser.ControlledDoc, **errors(401, 404, 409)},
}


@extend_schema(tags=["schedules"])
class PauseView(_ControlView):
    action, message = "pause", "Schedule paused"

    @extend_schema(summary="Pause a schedule (or a workflow's schedules); the phase is kept", **_CONTROL)
    def post(self, request: Request, schedule_id: str) -> Response:
        return self._apply(schedule_id)


@extend_schema(tags=["schedules"])
class ResumeView(_ControlView):
    action, message = "resume", "Schedule resumed"

    @extend_schema(summary="Resume a schedule (or a workflow's schedules) from its next time", **_CONTROL)
    def post(self, request: Request, schedule_id: str) -> Response:
        return self._apply(schedule_id)


@extend_schema(tags=["schedules"])
class StopView(_ControlView):
    action, message = "stop", "Schedule stopped"

    @extend_schema(summary="Stop a schedule (or a workflow's schedules) for good", **_CONTROL)
    def post(self, request: Request, schedule_id: str) -> Response:
        return self._apply(schedule_id)


@extend_schema(tags=["schedules"])
class PreviewView(ApiView):
    @extend_schema(
        summary="The schedule's next fire times",
        parameters=[ser.PreviewQuery],
        responses={200: ser.PreviewDoc, **errors(400, 401, 404)},
    )
    def get(self, request: Request, schedule_id: str) -> Response:
        count = _query(ser.PreviewQuery, request.query_params)["count"]
        schedule = schedules.get(_schedule_id(schedule_id))
        times = schedules.preview(schedule.id, count)
        return Response(
            {
                "scheduleId": schedule.id,
                "timezone": schedule.timezone,
                "fireTimes": [t.isoformat() for t in times],
            }
        )


@extend_schema(tags=["schedules"])
class BackfillView(ApiView):
    permissions: ClassVar[dict[str, tuple[str, ...]]] = {"POST": _MANAGE}

    @extend_schema(
        summary="Backfill: run the schedule's fire times over a past range, at most maxActive at once",
        request=ser.BackfillInput,
        responses={202: ser.BackfillDoc, **errors(400, 401, 404, 415)},
    )
    def post(self, request: Request, schedule_id: str) -> Response:
        data = _parse(ser.BackfillInput, request.data).validated_data
        run = backfills.create(_schedule_id(schedule_id), data["start"], data["end"], data["maxActive"])
        return Response(ser.backfill_json(run), status=202)


@extend_schema(tags=["schedules"])
class BackfillDetailView(ApiView):
    @extend_schema(summary="A backfill's progress", responses={200: ser.BackfillDoc, **errors(401, 404)})
    def get(self, request: Request, backfill_id: str) -> Response:
        return Response(ser.backfill_json(backfills.get(base.path_id(backfill_id, "Backfill"))))
