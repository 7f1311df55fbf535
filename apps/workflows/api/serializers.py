"""Input parsing for the workflows API: the Idempotency-Key header and the query-string serializers (the body
parser, ids in paths and paging are the shared ``workflow_engine.api.base``).

Bodies of workflow definitions are not validated here: the engine's validator (``engine/validation.py``) owns
the DSL and reports every problem by field path. The shapes of the responses, for the OpenAPI schema only,
are in ``schema.py``.
"""

from __future__ import annotations

from rest_framework import exceptions, serializers

from apps.workflows.engine.state import ExecutionStatus
from workflow_engine.api.base import MAX_ID_LENGTH, MAX_LIMIT, PageQuery, Query, unstorable_text

MAX_IDEMPOTENCY_KEY = 200


def idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not value.strip() or len(value) > MAX_IDEMPOTENCY_KEY or unstorable_text(value):
        raise exceptions.ValidationError(
            {"Idempotency-Key": [f"Must be 1 to {MAX_IDEMPOTENCY_KEY} characters and not blank."]}
        )
    return value


MAX_RECENT = 20  # the list's ?recent: a glance at the last runs, not a history (that is /executions)


class WorkflowListQuery(PageQuery):
    """``GET /api/v1/workflows``: the original's ``limit``/``offset`` (default: all), and the console's
    filters; without them the list is the original's."""

    q = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        max_length=MAX_ID_LENGTH,
        help_text="Only workflows whose id, name or description contains it (case-insensitive).",
    )
    tag = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        max_length=MAX_ID_LENGTH,
        help_text="Only workflows with this tag (exactly) among their `tags`.",
    )
    recent = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_RECENT,
        default=0,
        help_text=f"Add `recentExecutions`: each workflow's last N executions (0 to {MAX_RECENT}).",
    )


class ExecutionListQuery(Query):
    limit = serializers.IntegerField(required=False, min_value=0, max_value=MAX_LIMIT, default=100)
    offset = serializers.IntegerField(required=False, min_value=0, default=0)
    status = serializers.ChoiceField(
        required=False,
        choices=[status.value for status in ExecutionStatus],
        default=None,
        allow_null=True,
        help_text="Only executions in this status.",
    )


class LogsQuery(Query):
    limit = serializers.IntegerField(required=False, min_value=0, max_value=10 * MAX_LIMIT, default=MAX_LIMIT)
    offset = serializers.IntegerField(required=False, min_value=0, default=0)


class EventsQuery(Query):
    after = serializers.IntegerField(
        required=False, min_value=0, default=0, help_text="Only events with a greater seq."
    )
    limit = serializers.IntegerField(required=False, min_value=0, max_value=10 * MAX_LIMIT, default=MAX_LIMIT)


class HistoryQuery(Query):
    limit = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_LIMIT,
        default=100,
        help_text="The most recent executions to include (default 100).",
    )


class TimelineQuery(Query):
    executionId = serializers.CharField(
        required=False,
        max_length=MAX_ID_LENGTH,
        default=None,
        allow_null=True,
        help_text="Default: the oldest execution.",
    )
