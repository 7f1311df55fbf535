"""The API plumbing every app's ``api/`` shares: the base view, strict JSON bodies, ids in paths, query
strings.

Views are thin adapters: parse the input, call one service or query, return its dict. Every error is an
exception turned into the one error shape by ``errors.exception_handler``; every view checks the caller's
role (``permissions.HasRole``).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any, ClassVar

from django.conf import settings
from rest_framework import exceptions, serializers
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.views import APIView

from workflow_engine import storable
from workflow_engine.api.permissions import HasRole
from workflow_engine.errors import NotFound

MAX_LIMIT = 1000
MAX_ID_LENGTH = 200


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


def unstorable_text(text: str) -> bool:
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
    if not value or len(value) > MAX_ID_LENGTH or unstorable_text(value):
        raise NotFound(f"{what} not found.")
    return value


# --- query strings -----------------------------------------------------------------------------------------


class Query(serializers.Serializer):
    """Read-only validation of ``request.query_params``; ``parse`` returns the cleaned values."""

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> dict[str, Any]:
        names: list[str] = list(cls._declared_fields)
        query = cls(data={k: params[k] for k in names if params.get(k) is not None})
        query.is_valid(raise_exception=True)
        return dict(query.validated_data)


class PageQuery(Query):
    limit = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_LIMIT,
        default=None,
        allow_null=True,
        help_text=f"At most {MAX_LIMIT}; default: all.",
    )
    offset = serializers.IntegerField(required=False, min_value=0, default=0)


class ApiView(APIView):
    """Our base view: strict JSON bodies (``JSONBodyParser``); authentication as configured in settings;
    the role check of ``permissions``: per HTTP method, the permissions any one of which lets a user in
    (reads need ``roles.READ`` unless declared; an undeclared write is for superusers only)."""

    parser_classes = [JSONBodyParser]
    permission_classes = [HasRole]
    permissions: ClassVar[dict[str, tuple[str, ...]]] = {}


def who(request: Request) -> str:
    """The username recorded as having done it."""
    return request.user.get_username() if request.user and request.user.is_authenticated else "anonymous"
