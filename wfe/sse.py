"""A Server-Sent Events reader, as the WHATWG spec parses a stream (what a browser's EventSource does).

Pure: it takes the bytes as they arrive and yields events, so the client can read a ``requests`` stream with
it and tests can feed it any split of the bytes. Lines end in ``\\r\\n``, ``\\n`` or ``\\r``, and a chunk may
end between the ``\\r`` and the ``\\n``. ``str.splitlines`` is not used: it also splits on U+2028 and other
characters that may sit inside an event's JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class SseEvent:
    """One dispatched event: ``event`` (default ``message``), ``data`` (its lines joined by ``\\n``), and
    ``id``, the last event id in effect when it was dispatched (None when none was ever sent)."""

    event: str
    data: str
    id: str | None


class LineSplitter:
    """Bytes in, complete lines (decoded UTF-8, without their end) out."""

    def __init__(self) -> None:
        self._buffer = b""
        self._after_cr = False

    def feed(self, chunk: bytes) -> list[str]:
        lines: list[str] = []
        start = 0
        if self._after_cr and chunk.startswith(b"\n"):
            start = 1  # the \n of a \r\n split across chunks: the line was already ended by the \r
        self._after_cr = False
        i = start
        while i < len(chunk):
            byte = chunk[i]
            if byte in (10, 13):  # \n, \r
                lines.append((self._buffer + chunk[start:i]).decode("utf-8", "replace"))
                self._buffer = b""
                if byte == 13:
                    if i + 1 < len(chunk):
                        if chunk[i + 1] == 10:
                            i += 1
                    else:
                        self._after_cr = True
                start = i + 1
            i += 1
        self._buffer += chunk[start:]
        return lines


class SseParser:
    """Lines in, events out, with the spec's rules: ``field: value`` (one leading space removed), comments
    (``:``) ignored, data lines joined, a blank line dispatches, an ``id`` with NUL ignored, ``retry`` read
    as milliseconds. An ``id:`` line without data (a heartbeat's cursor) moves ``last_id`` without an event.
    """

    def __init__(self) -> None:
        self.last_id: str | None = None
        self.retry_ms: int | None = None
        self._event = ""
        self._data: list[str] = []

    def feed_line(self, line: str) -> SseEvent | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "event":
            self._event = value
        elif field == "data":
            self._data.append(value)
        elif field == "id":
            if "\0" not in value:
                self.last_id = value
        elif field == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> SseEvent | None:
        event, data = self._event, self._data
        self._event, self._data = "", []
        if not data:
            return None
        return SseEvent(event or "message", "\n".join(data), self.last_id)


def parse_stream(chunks: Iterable[bytes], parser: SseParser | None = None) -> Iterator[SseEvent]:
    """Every event of a byte stream. An event not ended by a blank line when the stream ends is dropped,
    as the spec says (the connection broke in its middle; a reconnect sends it again)."""
    parser = parser or SseParser()
    splitter = LineSplitter()
    for chunk in chunks:
        for line in splitter.feed(chunk):
            event = parser.feed_line(line)
            if event is not None:
                yield event
