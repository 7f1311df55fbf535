"""Input parsing for the API: the JSON body parser and the query-string serializers.

Bodies of workflow definitions are not validated here: the engine's validator (``engine/validation.py``) owns
the DSL and reports every problem by field path. The shapes of the responses, for the OpenAPI schema only,
are in ``schema.py``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework import exceptions, serializers
from rest_framework.parsers import JSONParser

from apps.workflows.engine import storable
from apps.workflows.errors import NotFound
from apps.workflows.models import ExecutionStatus

MAX_LIMIT = 1000
MAX_ID_LENGTH = 200
MAX_IDEMPOTENCY_KEY = 200


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def _unstorable(text: str) -> bool:
    """PostgreSQL text and jsonb refuse NUL characters and unpaired surrogates."""
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_storable(value: Any) -> None:
    """Raise ``ParseError`` when a parsed JSON body holds what PostgreSQL's ``jsonb`` cannot store: NUL
    characters, unpaired surrogates, or a number out of range (``1e400`` parses as infinity)."""
    found = storable.problem(value, "the body")
    if found:
        raise exceptions.ParseError(f"JSON parse error - {found}.")


class JSONBodyParser(JSONParser):
    """DRF's strict JSON parser, plus: a size limit (413), deep nesting as a parse error (not a 500), and
    values PostgreSQL could not store refused up front."""

    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        try:
            data = super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - the body is nested too deeply.") from None
        check_storable(data)
        return data


def optional_json_object(data: Any) -> dict[str, Any]:
    """An optional body that, when given, must be a JSON object (``{}`` or nothing is fine)."""
    if data is None or data == {}:
        return {}
    if not isinstance(data, Mapping):
        raise exceptions.ValidationError(
            {"non_field_errors": ["The body, when given, must be a JSON object."]}
        )
    return dict(data)


def path_id(value: str, what: str = "Resource") -> str:
    """A path segment used as an id: anything longer than any stored id, or unstorable, cannot exist."""
    if not value or len(value) > MAX_ID_LENGTH or _unstorable(value):
        raise NotFound(f"{what} not found.")
    return value


def idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not value.strip() or len(value) > MAX_IDEMPOTENCY_KEY or _unstorable(value):
        raise exceptions.ValidationError(
            {"Idempotency-Key": [f"Must be 1 to {MAX_IDEMPOTENCY_KEY} characters and not blank."]}
        )
    return value


# --- query strings -----------------------------------------------------------------------------------------


class _Query(serializers.Serializer):
    """Read-only validation of ``request.query_params``; ``parse`` returns the cleaned values."""

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> dict[str, Any]:
        names: list[str] = list(cls._declared_fields)
        query = cls(data={k: params[k] for k in names if params.get(k) is not None})
        query.is_valid(raise_exception=True)
        return dict(query.validated_data)


class PageQuery(_Query):
    limit = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_LIMIT,
        default=None,
        allow_null=True,
        help_text=f"At most {MAX_LIMIT}; default: all.",
    )
    offset = serializers.IntegerField(required=False, min_value=0, default=0)


class ExecutionListQuery(_Query):
    limit = serializers.IntegerField(required=False, min_value=0, max_value=MAX_LIMIT, default=100)
    offset = serializers.IntegerField(required=False, min_value=0, default=0)
    status = serializers.ChoiceField(
        required=False,
        choices=ExecutionStatus.choices,
        default=None,
        allow_null=True,
        help_text="Only executions in this status.",
    )


class LogsQuery(_Query):
    limit = serializers.IntegerField(required=False, min_value=0, max_value=10 * MAX_LIMIT, default=MAX_LIMIT)
    offset = serializers.IntegerField(required=False, min_value=0, default=0)


class EventsQuery(_Query):
    after = serializers.IntegerField(
        required=False, min_value=0, default=0, help_text="Only events with a greater seq."
    )
    limit = serializers.IntegerField(required=False, min_value=0, max_value=10 * MAX_LIMIT, default=MAX_LIMIT)


class HistoryQuery(_Query):
    limit = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_LIMIT,
        default=100,
        help_text="The most recent executions to include (default 100).",
    )


class TimelineQuery(_Query):
    executionId = serializers.CharField(
        required=False,
        max_length=MAX_ID_LENGTH,
        default=None,
        allow_null=True,
        help_text="Default: the oldest execution.",
    )
