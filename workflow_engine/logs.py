"""JSON-lines logging: python-json-logger, set up to write our line.

A line is ``{"ts", "level", "logger", "msg", <extra fields>..., "exc"}``: ``ts`` in UTC with milliseconds,
``extra={...}`` fields as keys of the line, a value JSON cannot hold written as its ``str()``, and the
traceback, if any, as ``exc`` (docs/operations.md). Why the library and not our own: docs/development.md.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _LibraryFormatter

_FIELDS = "{asctime}{levelname}{name}{message}"
_NAMES = {"asctime": "ts", "levelname": "level", "name": "logger", "message": "msg", "exc_info": "exc"}


class JsonFormatter(_LibraryFormatter):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(_FIELDS, style="{", rename_fields=_NAMES, json_default=str, **kwargs)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
