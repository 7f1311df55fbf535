"""The errors every app raises. Each carries a ``code`` and an HTTP ``status``; the docstring is the default
message. Apps subclass ``EngineError`` for their own (``apps/workflows/errors.py``,
``apps/schedules/errors.py``). One DRF exception handler (``workflow_engine/api/errors.py``) turns them into
``{"error", "message", "details"}``.
"""

from __future__ import annotations

from typing import Any


class EngineError(Exception):
    """The request could not be completed."""

    code = "engine_error"
    status = 500

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())
        self.message = message or (self.__doc__ or "").strip()
        self.details = details or {}


class NotFound(EngineError):
    """The requested resource does not exist."""

    code = "not_found"
    status = 404


class Conflict(EngineError):
    """The request conflicts with the current state of the resource."""

    code = "conflict"
    status = 409


class PreconditionFailed(EngineError):
    """The resource changed since the version the request names (If-Match); read it again."""

    code = "precondition_failed"
    status = 412


class Unavailable(EngineError):
    """A dependency (PostgreSQL or Redis) is unavailable; try again."""

    code = "unavailable"
    status = 503
