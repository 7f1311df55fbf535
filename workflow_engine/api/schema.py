"""The one error shape in the OpenAPI schema: ``{"error", "message", "details"}`` (``errors.py`` renders
it)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers as s


class ErrorSerializer(s.Serializer):
    error = s.CharField(help_text="A stable code: invalid_definition, not_found, conflict, ...")
    message = s.CharField()
    details = s.DictField(child=s.ListField(child=s.CharField()), help_text="{field: [problems]}")


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """The error responses a route can give, in the one error shape. Every authenticated route (401) also
    checks the caller's role (403), is rate-limited (429, ``throttles.py``) and answers 503 while PostgreSQL
    or Redis is down (``errors.py``)."""
    text = {
        400: "Invalid input.",
        401: "Not authenticated.",
        403: "The account's role does not allow this (or it has no role).",
        404: "Not found.",
        409: "Conflict.",
        412: "If-Match does not match the current ETag: the resource changed since it was read.",
        413: "Body too large.",
        415: "Unsupported media type.",
        429: "Too many requests: see Retry-After.",
        503: "PostgreSQL or Redis is unavailable: retry after Retry-After.",
    }
    codes = sorted({*statuses, 403, 429, 503} if 401 in statuses else set(statuses))
    return {code: OpenApiResponse(ErrorSerializer, description=text.get(code, "Error.")) for code in codes}


class OpenSerializer(s.Serializer):
    """A response object that may carry fields beyond those it lists (a definition as posted, an event with
    its type's own fields): OpenAPI shows ``additionalProperties: true``. Every other object is closed in the
    suite's check of responses (``tests/openapi_check.py``), so a field a view adds must be described."""


class _OpenSerializerSchema(OpenApiSerializerExtension):
    target_class = OpenSerializer
    match_subclasses = True

    def map_serializer(self, auto_schema: AutoSchema, direction: Any) -> dict[str, Any]:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        return {**schema, "additionalProperties": True}
