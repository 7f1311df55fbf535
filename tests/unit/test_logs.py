"""Log lines are JSON with a fixed shape (docs/operations.md), whatever writes them."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import traceback
from datetime import UTC, datetime

from workflow_engine.logs import Handler, JsonFormatter, LineWriter, QuietChatter, RepeatLimiter, never_limit


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


# --- repeated failures, chatter, printed output (workflow_engine/logs.py) -------------------------------


def failure(msg: str = "round failed", exc: type[Exception] = ConnectionError) -> logging.LogRecord:
    try:
        raise exc("down")
    except exc:
        return record(msg, exc=True)


def test_a_repeated_failure_is_written_once_per_window_then_summarised_with_its_count() -> None:
    limiter = RepeatLimiter(window=60)
    assert limiter.admit(failure(), now=0.0) == (True, [])
    held = [limiter.admit(failure(), now=0.25 * i) for i in range(1, 240)]  # every 250 ms for a minute
    assert all(admitted is False and not summaries for admitted, summaries in held)
    admitted, summaries = limiter.admit(failure(), now=60.0)
    assert admitted is True  # a new window opens with a full record (and its traceback)
    [line] = summaries
    assert (line.levelno, line.name, line.repeated, line.repeat_window_s) == (
        logging.WARNING,
        "wf.test",
        239,
        60,
    )
    assert line.getMessage() == "round failed (repeated 239 times in the last 60 s)"


def test_failures_differing_in_exception_type_or_message_are_counted_apart_and_info_is_never_held() -> None:
    limiter = RepeatLimiter(window=60)
    assert limiter.admit(failure(exc=ConnectionError), 0.0)[0]
    assert limiter.admit(failure(exc=TimeoutError), 0.1)[0]
    assert limiter.admit(failure("another"), 0.2)[0]
    assert not limiter.admit(failure(exc=TimeoutError), 0.3)[0]
    info = logging.getLogger("wf.test").makeRecord("wf.test", logging.INFO, __file__, 1, "tick", (), None)
    assert all(limiter.admit(info, 0.4 + i)[0] for i in range(5))


def test_the_handler_writes_what_was_held_back_when_it_closes() -> None:
    out = io.StringIO()
    handler = Handler(out, repeat_window=60)
    handler.setFormatter(JsonFormatter())
    for _ in range(5):
        handler.handle(failure())
    handler.close()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["msg"] for line in lines] == [
        "round failed",
        "round failed (repeated 4 times in the last 1 s)",
    ]
    assert "exc" in lines[0] and "exc" not in lines[1] and lines[1]["repeated"] == 4


def test_celery_queue_and_task_chatter_is_logged_at_debug() -> None:
    chatter = logging.getLogger("celery.worker.consumer.consumer").makeRecord(
        "celery.worker.consumer.consumer",
        logging.INFO,
        __file__,
        1,
        "Started consuming from %s",
        ("q",),
        None,
    )
    other = record("Connected to %s", "redis://")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    try:
        assert QuietChatter().filter(chatter) is False and chatter.levelname == "DEBUG"
        assert QuietChatter().filter(other) is True
    finally:
        root.setLevel(level)


def test_a_printed_traceback_becomes_one_record_whatever_the_fragments_written() -> None:
    logger = logging.getLogger("wf.test.printed")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    try:
        writer = LineWriter(logger, logging.WARNING)
        try:
            int("x")
        except ValueError:
            text = traceback.format_exc()
        writer.write("before\n")
        for fragment in re.split(r"(\s+)", text):  # as Python writes it: a piece at a time
            writer.write(fragment)
        writer.write("after")
        writer.flush()
    finally:
        logger.removeHandler(handler)
    messages = [r.getMessage() for r in records]
    assert messages == ["before", text.rstrip("\n"), "after"]
    assert messages[1].startswith("Traceback") and messages[1].endswith(
        "ValueError: invalid literal for int() with base 10: 'x'"
    )


def test_an_exempt_logger_writes_every_warning_however_many_repeat() -> None:
    limiter = RepeatLimiter(window=60)
    never_limit("tests.every-event")
    record = logging.LogRecord(
        "tests.every-event", logging.WARNING, __file__, 1, "CLUSTER_EVENT: %s", ("x",), None
    )
    assert all(limiter.admit(record, now=float(i))[0] for i in range(5))
    other = logging.LogRecord("tests.limited", logging.WARNING, __file__, 1, "round failed", (), None)
    assert [limiter.admit(other, now=float(i))[0] for i in range(3)] == [True, False, False]
