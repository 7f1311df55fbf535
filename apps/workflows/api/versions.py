"""A workflow's versions: the list (newest first) and one version's definition. Read-only, for every role;
the console diffs two versions in the browser (``static/console/workflow.js``)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.workflows.api.listing_schema import TOTAL_COUNT, VersionSerializer, VersionSummarySerializer
from apps.workflows.services import versions
from workflow_engine.api import base
from workflow_engine.api.base import ApiView
from workflow_engine.api.schema import errors
from workflow_engine.errors import NotFound


class VersionsQuery(base.Query):
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=base.MAX_LIMIT, default=100, help_text="Default 100."
    )
    offset = serializers.IntegerField(required=False, min_value=0, default=0)


def version_number(value: str, workflow_id: str) -> int:
    """A path's version number: digits only (no sign, no spaces), else no such version."""
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise NotFound(f"Workflow {workflow_id!r} has no version {value!r}.", details={"version": [value]})
    return int(value)


@extend_schema(tags=["workflows"])
class VersionsView(ApiView):
    @extend_schema(
        summary="List a workflow's versions, newest first",
        description="Each valid save that changed the definition made a version; a draft makes none.",
        parameters=[VersionsQuery, TOTAL_COUNT],
        responses={200: VersionSummarySerializer(many=True), **errors(400, 401, 404)},
    )
    def get(self, request: Request, workflow_id: str) -> Response:
        workflow_id = base.path_id(workflow_id, "Workflow")
        query = VersionsQuery.parse(request.query_params)
        page, total = versions.version_list(workflow_id, limit=query["limit"], offset=query["offset"])
        return Response(page, headers={"X-Total-Count": str(total)})


@extend_schema(tags=["workflows"])
class VersionView(ApiView):
    @extend_schema(
        summary="One version of a workflow, with its definition as posted",
        parameters=[OpenApiParameter("number", OpenApiTypes.INT, OpenApiParameter.PATH)],
        responses={200: VersionSerializer, **errors(401, 404)},
    )
    def get(self, request: Request, workflow_id: str, number: str) -> Response:
        workflow_id = base.path_id(workflow_id, "Workflow")
        return Response(versions.version_detail(workflow_id, version_number(number, workflow_id)))
