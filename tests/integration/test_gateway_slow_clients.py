"""Slow clients against the real gateway (gunicorn with workflow_engine/gunicorn_conf.py, as run_node starts
it): clients that send half a request and never finish must not stall /health/live, and are closed."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import process_env
from tests.harness import Cluster, free_port, wait_for
from workflow_engine.gateway_worker import body_to_buffer, head_end

HEADER_TIMEOUT = 4  # GATEWAY_HEADER_TIMEOUT of the gateway under test, short so the test is quick


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[str]:
    """A gateway of 2 workers x 4 threads (the defaults) with a short header timeout."""
    env = process_env(tmp_path)
    env.update({"GATEWAY_THREADS": "4", "GATEWAY_HEADER_TIMEOUT": str(HEADER_TIMEOUT)})
    cluster = Cluster(tmp_path, env)
    port = free_port()
    cluster.start_gateway(port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for("the gateway", lambda: live(base, timeout=2.0), timeout=60)
        yield base
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.stop()


def live(base: str, timeout: float) -> bool:
    with urllib.request.urlopen(base + "/health/live", timeout=timeout) as response:
        return bool(response.status == 200)


class SlowClients:
    """``count`` sockets that each send half a request head, then one more header line every half second,
    and never end it (slowloris)."""

    def __init__(self, base: str, count: int, body: bool = False) -> None:
        port = int(base.rsplit(":", 1)[1])
        self.socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]
        self.closed_by_server: set[int] = set()
        self.stop = threading.Event()
        if body:  # a complete head announcing a body that never comes
            start = b"POST /api/v1/workflows HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"
        else:
            start = b"GET /health/live HTTP/1.1\r\nHost: x\r\n"
        self.trickle = b" " if body else b"X-Slow: 1\r\n"
        for sock in self.socks:
            sock.sendall(start)
        self.thread = threading.Thread(target=self._dribble, daemon=True)
        self.thread.start()

    def _dribble(self) -> None:
        while not self.stop.wait(0.5):
            for index, sock in enumerate(self.socks):
                if index in self.closed_by_server:
                    continue
                try:
                    sock.sendall(self.trickle)
                except OSError:
                    self.closed_by_server.add(index)

    def all_closed_by_server(self) -> bool:
        for index, sock in enumerate(self.socks):
            if index in self.closed_by_server:
                continue
            sock.setblocking(False)
            try:
                data = sock.recv(4096)
            except BlockingIOError:
                return False  # still open, nothing from the server
            except OSError:
                data = b""
            if data:
                return False  # the server answered a request that never ended
            self.closed_by_server.add(index)
        return True

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for sock in self.socks:
            with contextlib.suppress(OSError):
                sock.close()


def assert_live_answers_quickly(base: str, seconds: float) -> None:
    """/health/live answers within 2 s, again and again, for ``seconds``."""
    deadline = time.monotonic() + seconds
    answered = 0
    while time.monotonic() < deadline:
        started = time.monotonic()
        assert live(base, timeout=2.0)
        assert time.monotonic() - started < 2.0
        answered += 1
        time.sleep(0.2)
    assert answered >= 5


@pytest.mark.parametrize("count", [10, 50])
def test_it_answers_health_live_while_slow_clients_hold_half_sent_headers(gateway: str, count: int) -> None:
    slow = SlowClients(gateway, count)
    try:
        # longer than gthread's 5 s wait for a first byte, within the header timeout of the slow clients
        assert_live_answers_quickly(gateway, seconds=HEADER_TIMEOUT - 0.5)
    finally:
        slow.close()


def test_it_closes_clients_that_never_finish_their_headers(gateway: str) -> None:
    slow = SlowClients(gateway, 10)
    try:
        wait_for(
            "the gateway to close the slow clients", slow.all_closed_by_server, timeout=HEADER_TIMEOUT + 5
        )
        assert_live_answers_quickly(gateway, seconds=1.5)
    finally:
        slow.close()


def test_it_answers_health_live_while_slow_clients_hold_half_sent_bodies(gateway: str) -> None:
    slow = SlowClients(gateway, 10, body=True)
    try:
        assert_live_answers_quickly(gateway, seconds=HEADER_TIMEOUT)
    finally:
        slow.close()


def test_it_still_serves_pipelined_and_kept_alive_requests(gateway: str) -> None:
    port = int(gateway.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        request = b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n"
        sock.sendall(request + request)  # two requests in one packet
        time.sleep(0.5)
        sock.sendall(request[:10])  # a third, kept alive and sent in pieces
        time.sleep(0.2)
        sock.sendall(request[10:])
        received = b""
        while received.count(b"HTTP/1.1 200") < 3:
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk


def test_it_refuses_a_request_head_that_never_ends_with_431(gateway: str) -> None:
    port = int(gateway.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\n" + b"X-Big: " + b"a" * 70000)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431")
    assert json.loads(body)["error"] == "headers_too_large"


def test_it_finds_the_end_of_a_request_head_and_the_body_to_wait_for() -> None:
    head = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n"
    assert head_end(head + b"{") == len(head)
    assert head_end(head[:-2]) == -1
    assert body_to_buffer(head, limit=100) == 12
    assert body_to_buffer(head, limit=10) == 0  # over the limit: a thread reads, or Django refuses, it
    chunked = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 12\r\n\r\n"
    assert body_to_buffer(chunked, limit=100) == 0
    twice = b"POST /x HTTP/1.1\r\nContent-Length: 12\r\nContent-Length: 13\r\n\r\n"
    assert body_to_buffer(twice, limit=100) == 0
    assert body_to_buffer(b"POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n", limit=100) == 0
