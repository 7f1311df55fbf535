"""The gateway's gunicorn worker: gthread, but a request reaches a thread only once it has fully arrived.

gunicorn's ``gthread`` worker hands every accepted connection to a thread, which then blocks reading the
request line and headers. A client that sends half a request and stops (slowloris) holds that thread for
good, so ten of them stall a gateway of 2 workers x 4 threads: ``/health/live`` no longer answers.

This worker reads the request head, and a body of known length up to ``BUFFER_BODY_BYTES``, in its
main event loop, as nginx does, without a thread. A connection that has not sent its whole head within
``GATEWAY_HEADER_TIMEOUT`` seconds (or its body within ``GATEWAY_BODY_TIMEOUT`` more) is closed. Only a
complete request takes a thread, so slow clients cost a socket each, never a thread. Whatever a thread
still reads or writes (a body over the buffer limit, a client that does not read its answer) is bounded per
call by the kernel's ``SO_RCVTIMEO``/``SO_SNDTIMEO`` (``GATEWAY_IO_TIMEOUT``).
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import time
from collections import deque
from functools import partial
from typing import Any

from gunicorn.http2 import negotiation
from gunicorn.workers.gthread import TConn, ThreadWorker

from workflow_engine import settings as _settings

_READ_SIZE = 65536
# Bodies up to this size are buffered before a thread sees them: more than Django reads at all
# (DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MB, answers 413 above it without reading).
BUFFER_BODY_BYTES = 4 * 1024 * 1024
# A head larger than this is refused (431) rather than buffered: the request line has no limit of its own
# (gunicorn_conf.py), header fields gunicorn's 100 of 8190 bytes: far more than any client of this API sends.
MAX_HEAD_BYTES = 64 * 1024
_TOO_LARGE_BODY = (
    b'{"error": "headers_too_large", "message": "The request headers are too large.", "details": {}}\n'
)
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: application/json\r\nConnection: close\r\n"
    + f"Content-Length: {len(_TOO_LARGE_BODY)}\r\n\r\n".encode()
    + _TOO_LARGE_BODY
)


class _Incoming:
    """What a connection has sent of its next request, and by when the rest must arrive."""

    __slots__ = ("body_length", "data", "deadline", "head_end")

    def __init__(self, deadline: float) -> None:
        self.data = bytearray()
        self.deadline = deadline
        self.head_end = -1  # offset just past the blank line ending the head, once seen
        self.body_length = 0  # bytes of body to buffer after the head


def head_end(data: bytes | bytearray) -> int:
    """Offset just past the blank line that ends an HTTP/1 request head, or -1 if it has not arrived."""
    crlf = data.find(b"\r\n\r\n")
    if crlf >= 0:
        return crlf + 4
    lf = data.find(b"\n\n")  # bare LF: gunicorn's parser decides whether to accept it
    return lf + 2 if lf >= 0 else -1


def body_to_buffer(head: bytes | bytearray, limit: int) -> int:
    """How many body bytes to wait for in the event loop: the ``Content-Length`` when it is the only framing
    and at most ``limit``; else 0 (gunicorn's parser reads, or refuses, the rest in a thread)."""
    lengths: list[bytes] = []
    for line in bytes(head).split(b"\n")[1:]:
        name, sep, value = line.partition(b":")
        name = name.strip().lower()
        if not sep:
            continue
        if name in (b"transfer-encoding", b"expect"):
            return 0  # chunked bodies are not read by Django; 100-continue waits for gunicorn's answer
        if name == b"content-length":
            lengths.append(value.strip())
    if len(lengths) != 1 or not lengths[0].isdigit() or len(lengths[0]) > 12:
        return 0
    length = int(lengths[0])
    return length if length <= limit else 0


def _timeval(seconds: float) -> bytes:
    return struct.pack("ll", int(seconds), int((seconds % 1) * 1_000_000))


class BufferingThreadWorker(ThreadWorker):
    """``gthread`` with request heads (and small bodies) read by the event loop; see the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = float(_settings.GATEWAY_HEADER_TIMEOUT)
        self.body_timeout = float(_settings.GATEWAY_BODY_TIMEOUT)
        self.io_timeout = float(_settings.GATEWAY_IO_TIMEOUT)
        self.buffer_body_bytes = BUFFER_BODY_BYTES
        # ordered by deadline: every entry gets the same header timeout when it joins
        self.incoming: deque[TConn] = deque()

    def accept(self, listener: socket.socket) -> None:
        try:
            client_sock, client_addr = listener.accept()
        except (BlockingIOError, ConnectionAbortedError, InterruptedError):
            return
        self.nr_conns += 1
        if self.io_timeout:
            # bounds each blocking recv/send a thread makes later, whatever Python's own socket timeout is
            client_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(self.io_timeout))
            client_sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(self.io_timeout))
        conn = TConn(self.cfg, client_sock, client_addr, listener.getsockname())
        if self.cfg.is_ssl or conn_may_speak_http2(self.cfg, client_addr):
            self.enqueue_req(conn)  # TLS and HTTP/2 are terminated by nginx in our deployments
            return
        self._await_request(conn)

    def on_client_socket_readable(self, conn: TConn, client: socket.socket) -> None:
        """A kept-alive connection starts its next request: buffer it like a new one."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._await_request(conn)

    def _await_request(self, conn: TConn) -> None:
        conn.sock.setblocking(False)
        conn.incoming = _Incoming(time.monotonic() + self.header_timeout)
        self.incoming.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_incoming, conn))

    def _on_incoming(self, conn: TConn, client: socket.socket) -> None:
        incoming: _Incoming = conn.incoming
        try:
            data = client.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._drop(conn)
            return
        incoming.data += data
        if incoming.head_end < 0:
            incoming.head_end = head_end(incoming.data)
            if incoming.head_end < 0:
                if len(incoming.data) > MAX_HEAD_BYTES:
                    self._refuse_too_large(conn)
                return
            incoming.body_length = body_to_buffer(incoming.data[: incoming.head_end], self.buffer_body_bytes)
            if incoming.body_length:
                self._reorder(conn, time.monotonic() + self.body_timeout)
        if len(incoming.data) >= incoming.head_end + incoming.body_length:
            self._dispatch(conn)

    def _reorder(self, conn: TConn, deadline: float) -> None:
        """Give ``conn`` a new deadline, keeping ``self.incoming`` ordered by deadline."""
        self.incoming.remove(conn)
        conn.incoming.deadline = deadline
        index = len(self.incoming)
        while index and self.incoming[index - 1].incoming.deadline > deadline:
            index -= 1
        self.incoming.insert(index, conn)

    def _dispatch(self, conn: TConn) -> None:
        """The request has arrived: hand it, bytes already read included, to a thread."""
        self.poller.unregister(conn.sock)
        self.incoming.remove(conn)
        data = bytes(conn.incoming.data)
        conn.incoming = None
        conn.sock.setblocking(True)
        conn.init()  # the HTTP/1 parser (no-op on a kept-alive connection)
        conn.parser.unreader.unread(data)
        conn.data_ready = True  # skip gthread's wait for a first byte: it is here
        self.enqueue_req(conn)

    def _refuse_too_large(self, conn: TConn) -> None:
        with contextlib.suppress(OSError):
            conn.sock.send(_TOO_LARGE)
        self._drop(conn)

    def _drop(self, conn: TConn) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)
        with contextlib.suppress(ValueError):
            self.incoming.remove(conn)
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        """gthread calls this about once a second: also close connections whose request is overdue."""
        super().murder_pending()
        now = time.monotonic()
        while self.incoming and self.incoming[0].incoming.deadline <= now:
            self._drop(self.incoming[0])


def conn_may_speak_http2(cfg: Any, client_addr: Any) -> bool:
    """Whether gunicorn may expect an HTTP/2 preface here (off unless ``http_protocols`` enables h2c)."""
    return bool(negotiation.prior_knowledge_allowed(cfg, client_addr))
