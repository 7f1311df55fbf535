"""The scheduler's errors, in the engine's hierarchy (``apps/workflows/errors.py``): one handler for both."""

from __future__ import annotations

from workflow_engine.errors import EngineError


class InvalidSchedule(EngineError):
    """The schedule is invalid."""

    code = "invalid_schedule"
    status = 400
