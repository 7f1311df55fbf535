"""JSON-lines logging: python-json-logger, set up to write our line, and the handler every process uses.

A line is ``{"ts", "level", "logger", "msg", <extra fields>..., "exc"}``: ``ts`` in UTC with milliseconds,
``extra={...}`` fields as keys of the line, a value JSON cannot hold written as its ``str()``, and the
traceback, if any, as ``exc`` (docs/operations.md). Why the library and not our own: docs/development.md.

Three things keep a node's log readable when something goes wrong for a while:

- ``Handler`` writes a repeated warning or error (same logger, message template and exception type) once
  per ``LOG_REPEAT_WINDOW`` seconds, then one line saying how many times it repeated: PostgreSQL down makes
  the coordinator fail every 250 ms, which would otherwise be a traceback four times a second.
- ``QuietChatter`` moves Celery's per-queue and per-task INFO lines to DEBUG.
- ``LineWriter`` stands in for ``sys.stdout``/``sys.stderr`` of a Celery worker, so that what libraries
  print becomes records, a printed traceback one record rather than one per fragment written.
"""

from __future__ import annotations

import contextlib
import logging
import logging.config
import os
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _LibraryFormatter

_FIELDS = "{asctime}{levelname}{name}{message}"
_NAMES = {"asctime": "ts", "levelname": "level", "name": "logger", "message": "msg", "exc_info": "exc"}


class JsonFormatter(_LibraryFormatter):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(_FIELDS, style="{", rename_fields=_NAMES, json_default=str, **kwargs)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def configure(config: dict[str, Any]) -> None:
    """``LOGGING_CONFIG`` of Django (and the Celery worker's ``setup_logging``): ``dictConfig``, then send
    Python warnings and uncaught exceptions (main thread and others) through logging, as single records."""
    logging.config.dictConfig(config)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


_uncaught = logging.getLogger("workflow_engine.uncaught")


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    _uncaught.critical("uncaught exception", exc_info=(kind, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread else "?"
    exc_info = (args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback)
    _uncaught.error("uncaught exception in thread %s", name, exc_info=exc_info)


# --- repeated failures -----------------------------------------------------------------------------------


@dataclass
class _Seen:
    since: float  # when the record that opened the window was written
    record: logging.LogRecord
    count: int = 0  # repeats held back since


# Loggers whose every record is written: each is an event someone counts (``never_limit``).
_UNLIMITED: set[str] = set()


def never_limit(logger_name: str) -> None:
    """Exempt a logger from the repeat limit: its records are events, each of which matters (the cluster
    events: a failover of 100 executions is 100 ``workflow_failover`` lines, as the guide's grep expects)."""
    _UNLIMITED.add(logger_name)


class RepeatLimiter:
    """Decides which warnings and errors to write: the first of a kind in each window, then a summary.

    A kind is (logger, message template, exception type), so ``"round failed"`` with an ``OperationalError``
    and with a ``RedisError`` are counted apart, and differing arguments (ids, hosts) do not defeat it.
    """

    def __init__(self, window: float) -> None:
        self.window = window
        self.seen: dict[tuple[str, str, str], _Seen] = {}
        self.lock = threading.Lock()

    @staticmethod
    def kind(record: logging.LogRecord) -> tuple[str, str, str]:
        exc = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
        return record.name, str(record.msg), exc

    def admit(self, record: logging.LogRecord, now: float) -> tuple[bool, list[logging.LogRecord]]:
        """Whether to write ``record``, and the summaries of kinds whose window has ended, to write first."""
        with self.lock:
            summaries = self._ended(now)
            if record.levelno < logging.WARNING or self.window <= 0 or record.name in _UNLIMITED:
                return True, summaries
            kind = self.kind(record)
            seen = self.seen.get(kind)
            if seen is None:
                self.seen[kind] = _Seen(now, record)
                return True, summaries
            seen.count += 1
            return False, summaries

    def flush(self, now: float) -> list[logging.LogRecord]:
        """Summaries of everything held back, windows ended or not (the process is stopping)."""
        with self.lock:
            return self._ended(now, everything=True)

    def _ended(self, now: float, everything: bool = False) -> list[logging.LogRecord]:
        summaries = []
        for kind, seen in list(self.seen.items()):
            if everything or now - seen.since >= self.window:
                del self.seen[kind]
                if seen.count:
                    summaries.append(summary(seen.record, seen.count, now - seen.since))
        return summaries


def summary(first: logging.LogRecord, count: int, elapsed: float) -> logging.LogRecord:
    """The line that stands for ``count`` repeats of ``first`` held back over ``elapsed`` seconds."""
    seconds = max(1, round(elapsed))
    record = logging.LogRecord(
        first.name,
        first.levelno,
        first.pathname,
        first.lineno,
        "%s (repeated %d times in the last %d s)",
        (first.getMessage(), count, seconds),
        None,
    )
    record.repeated = count
    record.repeat_window_s = seconds
    return record


class Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """stderr (or ``stream``); a repeated warning or error is written once per window (``RepeatLimiter``)."""

    def __init__(self, stream: Any = None, repeat_window: float = 60.0) -> None:
        stream = stream or sys.stderr
        if isinstance(stream, LineWriter):  # configured again after redirect_output(): not into ourselves
            stream = sys.__stderr__
        super().__init__(stream)
        self.repeats = RepeatLimiter(repeat_window)

    def handle(self, record: logging.LogRecord) -> bool:
        if not self.filter(record):
            return False
        admitted, summaries = self.repeats.admit(record, time.monotonic())
        self.acquire()
        try:
            for line in summaries:
                self.emit(line)
            if admitted:
                self.emit(record)
        finally:
            self.release()
        return admitted

    def close(self) -> None:
        # logging.shutdown() at exit: what was held back is still counted
        self.acquire()
        try:
            for line in self.repeats.flush(time.monotonic()):
                self.emit(line)
        finally:
            self.release()
        super().close()


# --- chatter ---------------------------------------------------------------------------------------------

# (logger, message template) of lines that come by the hundred in normal operation
CHATTER = {
    ("celery.worker.consumer.consumer", "Started consuming from %s"),
    ("celery.worker.consumer.consumer", "Canceling queue %s"),
    ("celery.worker.strategy", "Task %(name)s[%(id)s] received"),
    ("celery.app.trace", "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s"),
}


class QuietChatter(logging.Filter):
    """Logs ``CHATTER`` at DEBUG: a worker taking 100 shards wrote 100 INFO lines, and one per task."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or (record.name, str(record.msg)) not in CHATTER:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


# --- printed output --------------------------------------------------------------------------------------


class LineWriter:
    """A text stream that logs each line written to it, and a traceback as one record.

    Celery's own redirect logs every ``write()`` call, and Python prints a traceback in fragments (a frame,
    its source line, the ``^^^`` marker line), hundreds of one-fragment records per traceback. Here a
    traceback is gathered from ``Traceback (most recent call last):`` to its exception line (the first
    unindented line after the frames) and written as one record.
    """

    _TRACEBACK_STARTS = ("Traceback (most recent call last):", "Exception in thread")

    def __init__(self, logger: logging.Logger, level: int) -> None:
        self.logger, self.level = logger, level
        self.pending = ""  # written, not yet a whole line
        self.traceback: list[str] = []
        self.lock = threading.RLock()
        self.inside = threading.local()  # a handler that writes to us again must not loop

    def write(self, text: str) -> int:
        if getattr(self.inside, "active", False):
            return sys.__stderr__.write(text) if sys.__stderr__ else len(text)
        with self.lock:
            self.inside.active = True
            try:
                self.pending += text
                *lines, self.pending = self.pending.split("\n")
                for line in lines:
                    self._line(line)
            finally:
                self.inside.active = False
        return len(text)

    def _line(self, line: str) -> None:
        if self.traceback:
            self.traceback.append(line)
            framed = len(self.traceback) > 1 and line[:1] not in (" ", "\t", "")
            if framed and not line.startswith(self._TRACEBACK_STARTS):
                self._emit("\n".join(self.traceback))
                self.traceback = []
        elif line.startswith(self._TRACEBACK_STARTS):
            self.traceback = [line]
        elif line.strip():
            self._emit(line)

    def _emit(self, text: str) -> None:
        self.logger.log(self.level, "%s", text)

    def flush(self) -> None:
        with self.lock:
            if self.pending or self.traceback:
                rest = [*self.traceback, self.pending] if self.pending else self.traceback
                self.pending, self.traceback = "", []
                text = "\n".join(rest)
                if text.strip():
                    self._emit(text)

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        # C-level writers (faulthandler) go to the real stream
        return sys.__stderr__.fileno() if sys.__stderr__ else 2

    @property
    def encoding(self) -> str:
        return "utf-8"


def redirect_output(level: int = logging.WARNING) -> None:
    """Make what is printed to ``sys.stdout`` and ``sys.stderr`` log records of ``printed.stdout`` and
    ``printed.stderr``. The handlers keep the real stderr they were made with."""
    sys.stdout = LineWriter(logging.getLogger("printed.stdout"), level)  # type: ignore[assignment]
    sys.stderr = LineWriter(logging.getLogger("printed.stderr"), level)  # type: ignore[assignment]


def say(msg: str, f: Any = None) -> None:
    """Celery's ``safe_say`` (shutdown and restart notices, written from signal handlers with ``os.write``
    to the real stdout or stderr) as one JSON line, written the same way: no handler lock is taken."""
    record = logging.LogRecord("celery.apps.worker", logging.INFO, __file__, 0, "%s", (msg,), None)
    line = JsonFormatter().format(record) + "\n"
    stream = f if f is not None else sys.__stderr__
    with contextlib.suppress(OSError, ValueError):  # a notice must never break the shutdown it reports
        os.write(stream.fileno() if stream is not None else 2, line.encode())
