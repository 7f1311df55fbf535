"""Log lines are JSON with a fixed shape (docs/operations.md), whatever writes them."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from workflow_engine.logs import JsonFormatter


def record(
    msg: str, *args: object, extra: dict[str, object] | None = None, exc: bool = False
) -> logging.LogRecord:
    info = sys.exc_info() if exc else None
    return logging.getLogger("wf.test").makeRecord(
        "wf.test", logging.WARNING, __file__, 1, msg, args, info, extra=extra
    )


def test_a_line_has_the_time_level_logger_message_and_extra_fields_in_order() -> None:
    rec = record("applied %s", "e1", extra={"execution_id": "e1", "shard": 3, "_private": 1})
    rec.created = datetime(2026, 3, 29, 1, 30, 0, 123456, tzinfo=UTC).timestamp()
    line = JsonFormatter().format(rec)
    assert "\n" not in line
    assert json.loads(line) == {
        "ts": "2026-03-29T01:30:00.123+00:00",
        "level": "WARNING",
        "logger": "wf.test",
        "msg": "applied e1",
        "execution_id": "e1",
        "shard": 3,
    }
    assert list(json.loads(line)) == ["ts", "level", "logger", "msg", "execution_id", "shard"]


def test_values_json_cannot_hold_are_written_as_text_and_a_traceback_as_exc() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    try:
        raise ValueError("boom")
    except ValueError:
        rec = record("failed", extra={"at": at, "ids": {1}}, exc=True)
    fields = json.loads(JsonFormatter().format(rec))
    assert (fields["at"], fields["ids"]) == (str(at), "{1}")
    assert fields["exc"].startswith("Traceback") and "ValueError: boom" in fields["exc"]
