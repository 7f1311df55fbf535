"""Response shapes (OpenAPI only; the views return plain dicts) of the workflow list's additions and of a
workflow's versions: what the console's workflow pages read (docs/api.md "Workflows")."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers as s

from apps.workflows.api.schema import WorkflowHeadSerializer

TOTAL_COUNT = OpenApiParameter(
    "X-Total-Count",
    OpenApiTypes.INT,
    OpenApiParameter.HEADER,
    response=[200],
    description="How many items match in all, whatever `limit` and `offset`: a client pages with it "
    "(the body stays a plain list).",
)


class RecentExecutionSerializer(s.Serializer):
    executionId = s.CharField()
    status = s.CharField()
    startTime = s.IntegerField(allow_null=True, help_text="Epoch milliseconds; null until it starts.")
    createdAt = s.DateTimeField(help_text="When the start was accepted (the list's order).")


class WorkflowListItemSerializer(WorkflowHeadSerializer):
    """A workflow's latest save, as in ``GET /api/v1/workflows/{id}``, plus its last executions when the
    list was asked ``?recent=N``."""

    recentExecutions = RecentExecutionSerializer(
        many=True,
        required=False,
        help_text="Only with ?recent=N: the last N executions, newest first (by createdAt).",
    )


class VersionSummarySerializer(s.Serializer):
    number = s.IntegerField()
    createdAt = s.DateTimeField()
    createdBy = s.CharField(allow_null=True, help_text="Who saved it; null when unknown.")
    contentHash = s.CharField(help_text="sha256 of the definition's canonical JSON.")


class VersionSerializer(VersionSummarySerializer):
    workflowId = s.CharField()
    definition = s.DictField(help_text="The definition as posted (without the DSL's defaults).")
