"""One error shape for every response: ``{"error": code, "message": text, "details": {field: [problems]}}``.

``exception_handler`` is DRF's ``EXCEPTION_HANDLER``; ``not_found`` and ``server_error`` are Django's
``handler404``/``handler500`` for paths DRF does not serve. A dependency that is down (PostgreSQL, Redis) is a
503 the client may retry, never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import redis.exceptions
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import DataError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from workflow_engine.errors import EngineError

logger = logging.getLogger(__name__)

Details = dict[str, list[str]]

# DRF exceptions other than ValidationError, by the code we answer with.
_DRF_CODES: tuple[tuple[type[drf.APIException], str], ...] = (
    (drf.ParseError, "malformed_json"),
    (drf.NotAuthenticated, "not_authenticated"),
    (drf.AuthenticationFailed, "not_authenticated"),
    (drf.PermissionDenied, "permission_denied"),
    (drf.NotFound, "not_found"),
    (drf.MethodNotAllowed, "method_not_allowed"),
    (drf.NotAcceptable, "not_acceptable"),
    (drf.UnsupportedMediaType, "unsupported_media_type"),
    (drf.Throttled, "throttled"),
)


def error_body(code: str, message: str, details: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
    return {"error": code, "message": message, "details": dict(details or {})}


def flatten(detail: Any, prefix: str = "") -> Details:
    """DRF's nested error detail as ``{"field.sub": [problems]}``; bare lists go to ``non_field_errors``."""
    if isinstance(detail, Mapping):
        out: Details = {}
        for key, value in detail.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    key = prefix.rstrip(".") or "non_field_errors"
    items = detail if isinstance(detail, list) else [detail]
    problems: list[str] = []
    for item in items:
        if isinstance(item, Mapping | list):
            nested = flatten(item, prefix)
            problems.extend(p for values in nested.values() for p in values)
        else:
            problems.append(str(item))
    return {key: problems}


def _respond(
    status: int,
    code: str,
    message: str,
    details: Mapping[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return Response(error_body(code, message, details), status=status, headers=headers)


def _from_api_exception(exc: drf.APIException) -> Response:
    headers: dict[str, str] = {}
    wait = getattr(exc, "wait", None)
    if isinstance(exc, drf.Throttled) and wait is not None:
        headers["Retry-After"] = str(int(wait))
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    if isinstance(exc, drf.ValidationError):
        return _respond(400, "invalid_request", "The request is invalid.", flatten(exc.detail), headers)
    code = next((c for cls, c in _DRF_CODES if isinstance(exc, cls)), str(exc.default_code))
    message = str(exc.detail) if not isinstance(exc.detail, list | dict) else str(exc.default_detail)
    return _respond(exc.status_code, code, message, None, headers)


def exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response:
    """DRF's exception handler: every exception becomes the error shape with the right status."""
    set_rollback()
    if isinstance(exc, EngineError):
        return _respond(exc.status, exc.code, exc.message, exc.details)
    if isinstance(exc, Http404):
        return _respond(404, "not_found", "The requested resource does not exist.")
    if isinstance(exc, DjangoPermissionDenied):
        return _respond(403, "permission_denied", "You do not have permission to perform this action.")
    if isinstance(exc, drf.APIException):
        return _from_api_exception(exc)
    if isinstance(exc, RequestDataTooBig):
        return _respond(413, "payload_too_large", "The request body is too large.")
    if isinstance(exc, SuspiciousOperation):
        return _respond(400, "bad_request", "The request could not be understood.")
    if isinstance(exc, OperationalError | InterfaceError):
        logger.warning("database unavailable: %s", exc)
        return _respond(
            503, "unavailable", "The database is unavailable; try again.", headers={"Retry-After": "5"}
        )
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        logger.warning("redis unavailable: %s", exc)
        return _respond(503, "unavailable", "Redis is unavailable; try again.", headers={"Retry-After": "5"})
    if isinstance(exc, DataError):
        # the database refused a value (too long, out of range): the input's fault, not the server's
        logger.warning("database refused a value: %s", exc)
        return _respond(400, "invalid_request", "A value in the request is too long or out of range.")
    view = context.get("view")
    logger.exception("unhandled error in %s", type(view).__name__ if view else "a view")
    return _respond(500, "internal_error", "An unexpected error occurred; it has been logged.")


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """``handler400``: requests Django refuses before any view (bad Host header, too many fields ...)."""
    return JsonResponse(error_body("bad_request", "The request could not be understood."), status=400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """``handler403`` outside DRF."""
    return JsonResponse(
        error_body("permission_denied", "You do not have permission to perform this action."), status=403
    )


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """``handler404``: unmatched paths outside DRF."""
    path = request.path if len(request.path) <= 200 else request.path[:200] + "..."
    return JsonResponse(error_body("not_found", f"No route for {path!r}."), status=404)


def server_error(request: HttpRequest) -> JsonResponse:
    """``handler500``: the last resort outside DRF (the exception was logged by Django)."""
    return JsonResponse(
        error_body("internal_error", "An unexpected error occurred; it has been logged."), status=500
    )
