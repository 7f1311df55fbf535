"""The workflows app's own errors, in the platform's hierarchy (``workflow_engine/errors.py``)."""

from __future__ import annotations

from workflow_engine.errors import EngineError


class InvalidDefinition(EngineError):
    """The workflow definition is invalid."""

    code = "invalid_definition"
    status = 400
