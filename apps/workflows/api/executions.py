"""``GET /api/v1/executions``: every workflow's executions, filtered, newest first, in cursor pages.

The query is ``services/listing.py``; this module parses the query string (each bad parameter is a 400 naming
it) and describes the response for OpenAPI.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers as s
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from apps.workflows.engine.state import ExecutionStatus
from apps.workflows.services import listing
from workflow_engine.api.base import MAX_ID_LENGTH, MAX_LIMIT, ApiView, Query
from workflow_engine.api.schema import errors

DEFAULT_LIMIT = 50
# more values than any real filter needs: a parameter repeated 10,000 times is refused before any work
MAX_VALUES = 100
MAX_CURSOR_LENGTH = 500
MAX_EPOCH_DIGITS = 15  # epoch milliseconds up to year 33658; datetime stops at 9999 anyway

TIME_RULE = (
    "ISO 8601 with a timezone (2026-05-01T12:00:00Z, 2026-05-01T14:00:00+02:00) or epoch milliseconds "
    "(digits only, 1777636800000)"
)


@extend_schema_field(OpenApiTypes.STR)
class InstantField(s.Field):
    """A point in time: ISO 8601 with a timezone, or epoch milliseconds (``TIME_RULE``)."""

    default_error_messages = {"invalid": f"Expected {TIME_RULE}."}

    def to_internal_value(self, data: Any) -> datetime:
        text = str(data)
        if len(text) > 64:
            self.fail("invalid")
        try:
            if text.isascii() and text.isdigit():
                if len(text) > MAX_EPOCH_DIGITS:
                    self.fail("invalid")
                return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
            value = datetime.fromisoformat(text)
            if value.tzinfo is None:
                self.fail("invalid")
            return value.astimezone(UTC)
        except (ValueError, OverflowError, OSError):
            self.fail("invalid")

    def to_representation(self, value: datetime) -> str:
        return value.isoformat()


class ExecutionsQuery(Query):
    """The filters of the global list; a list parameter may be repeated (``status=failed&status=cancelled``),
    comma-separated (``status=failed,cancelled``), or both. Filters combine with AND, a list's values with
    OR."""

    workflowId = s.ListField(
        child=s.CharField(max_length=MAX_ID_LENGTH),
        required=False,
        help_text="Only executions of these workflows (an unknown id matches nothing).",
    )
    status = s.ListField(
        child=s.ChoiceField(choices=[status.value for status in ExecutionStatus]),
        required=False,
        help_text="Only executions in one of these statuses.",
    )
    trigger = s.ListField(
        child=s.ChoiceField(choices=list(listing.TRIGGERS)),
        required=False,
        help_text="Only executions started this way: api (execute), schedule, backfill, rerun.",
    )
    startedAfter = InstantField(
        required=False, help_text=f"Only executions started at or after this time: {TIME_RULE}."
    )
    startedBefore = InstantField(required=False, help_text="Only executions started before this time.")
    endedAfter = InstantField(
        required=False, help_text="Only executions that ended at or after this time (implies ended)."
    )
    endedBefore = InstantField(
        required=False, help_text="Only executions that ended before this time (implies ended)."
    )
    idPrefix = s.CharField(
        required=False, max_length=MAX_ID_LENGTH, help_text="Only executions whose id starts with this."
    )
    limit = s.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_LIMIT,
        default=DEFAULT_LIMIT,
        help_text=f"Rows per page: 1 to {MAX_LIMIT}, default {DEFAULT_LIMIT}.",
    )
    cursor = s.CharField(
        required=False,
        max_length=MAX_CURSOR_LENGTH,
        help_text="The previous page's nextCursor: the page after it. Opaque; give the same filters again.",
    )
    count = s.BooleanField(
        required=False,
        default=False,
        help_text="true adds total: the exact number of rows the filters match (one more query, slower on "
        "broad filters).",
    )

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name, field in cls._declared_fields.items():
            if isinstance(field, s.ListField):
                values = _list_values(params, name)
                if values:
                    data[name] = values
            elif params.get(name) is not None:
                data[name] = params[name]
        query = cls(data=data)
        query.is_valid(raise_exception=True)
        return dict(query.validated_data)

    def validate_cursor(self, value: str) -> listing.Position:
        try:
            return listing.decode_cursor(value)
        except listing.BadCursor:
            raise ValidationError("Not a cursor this server issued: pass a nextCursor unchanged.") from None


def _list_values(params: Mapping[str, Any], name: str) -> list[str]:
    """Repeated and comma-separated values, in order; more than ``MAX_VALUES`` is a 400 naming the
    parameter."""
    raw = params.getlist(name) if hasattr(params, "getlist") else [params[name]] if name in params else []
    if len(raw) > MAX_VALUES:
        raise ValidationError({name: [f"At most {MAX_VALUES} values."]})
    values = [value for item in raw for value in str(item).split(",")]
    if len(values) > MAX_VALUES:
        raise ValidationError({name: [f"At most {MAX_VALUES} values."]})
    return values


def _filters(query: dict[str, Any]) -> listing.Filters:
    return listing.Filters(
        workflow_ids=tuple(dict.fromkeys(query.get("workflowId", ()))),
        statuses=tuple(dict.fromkeys(query.get("status", ()))),
        triggers=tuple(dict.fromkeys(query.get("trigger", ()))),
        started_after=query.get("startedAfter"),
        started_before=query.get("startedBefore"),
        ended_after=query.get("endedAfter"),
        ended_before=query.get("endedBefore"),
        id_prefix=query.get("idPrefix", ""),
    )


# --- responses (OpenAPI) -----------------------------------------------------------------------------------


class ExecutionsItemSerializer(s.Serializer):
    """The workflow execution list's item (``GET /api/v1/workflows/{id}/executions``), with where it came
    from."""

    executionId = s.CharField()
    workflowId = s.CharField()
    version = s.IntegerField(help_text="The workflow version it runs.")
    status = s.ChoiceField(choices=[status.value for status in ExecutionStatus])
    trigger = s.CharField(help_text="How it was started: api, schedule, backfill, rerun.")
    startedBy = s.CharField(allow_null=True, help_text="The user who started it; null for a schedule's fire.")
    createdAt = s.DateTimeField(
        help_text="When the start was accepted: the list's order and started* filters."
    )
    startTime = s.DateTimeField(help_text="When it started running (createdAt while it has not).")
    endTime = s.DateTimeField(allow_null=True, help_text="When it ended; null while it has not.")
    logsCount = s.IntegerField()


class ExecutionsPageSerializer(s.Serializer):
    executions = ExecutionsItemSerializer(
        many=True, help_text="Newest first: by createdAt, then executionId."
    )
    nextCursor = s.CharField(allow_null=True, help_text="Pass as cursor for the next page; null on the last.")
    total = s.IntegerField(
        required=False, help_text="With count=true only: every row the filters match, whatever the cursor."
    )


@extend_schema(tags=["executions"])
class ExecutionsView(ApiView):
    """Executions of every workflow, newest first: by ``createdAt`` (when the start was accepted; it never
    changes), then ``executionId``. A page ends with ``nextCursor``; pass it back as ``cursor``, with the same
    filters, for the next page, which holds exactly the rows after the previous one whatever started since
    (new executions come before the first page, not into later ones). ``nextCursor`` is null on the last page.
    Filters combine with AND; a list filter's values with OR. Times in filters: ISO 8601 with a timezone, or
    epoch milliseconds; times in items: ISO 8601 in UTC. Each bad parameter is a 400 naming it."""

    @extend_schema(
        operation_id="api_v1_executions_list",  # "_retrieve" is /api/v1/executions/{id}'s
        summary="List executions across workflows, filtered, newest first, in cursor pages",
        parameters=[ExecutionsQuery],
        responses={200: ExecutionsPageSerializer, **errors(400, 401)},
    )
    def get(self, request: Request) -> Response:
        query = ExecutionsQuery.parse(request.query_params)
        page = listing.list_executions(
            _filters(query), limit=query["limit"], cursor=query.get("cursor"), count=query["count"]
        )
        return Response(page)
