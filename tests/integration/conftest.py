"""Real servers for the integration nodes: a scratch PostgreSQL database, a MariaDB server, an HTTP server.

The scratch database lives on the ``DATABASE_URL`` server, so the engine's own tables stay out of the way;
MariaDB is started from the system's binaries (``apt-get install mariadb-server``) in a temporary directory.
Without them the MariaDB tests fail, saying so, unless ``WORKFLOW_SKIP_MARIADB=1``.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from devservices import DevServiceError, free_port
from devservices.binaries import find_mariadb
from devservices.mariadb import MariaDBServer


def db_url(base: str, database: str) -> str:
    return urlunsplit(urlsplit(base)._replace(path="/" + database))


def admin_url() -> str:
    from django.conf import settings

    return db_url(settings.DATABASE_URL, "postgres")


def create_database(prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def drop_database(name: str) -> None:
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def scratch_pg() -> Iterator[str]:
    """The URL of a database of its own on the ``DATABASE_URL`` server, dropped at the end of the session."""
    name = create_database("wfe_nodes")
    try:
        yield db_url(admin_url(), name)
    finally:
        drop_database(name)


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of database ``shop`` on a MariaDB server of this session."""
    try:
        find_mariadb()
    except DevServiceError as exc:
        if os.environ.get("WORKFLOW_SKIP_MARIADB") == "1":
            pytest.skip(f"WORKFLOW_SKIP_MARIADB=1 and {exc}")
        pytest.fail(f"the mysql.* node tests need a MariaDB server (or WORKFLOW_SKIP_MARIADB=1): {exc}")
    server = MariaDBServer(tmp_path_factory.mktemp("mariadb"), free_port())
    server.start()
    try:
        server.ensure_database("shop")
        yield server.url("shop")
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------- HTTP


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpServer:
    """A local HTTP API: every request is recorded in ``seen``."""

    port: int
    seen: list[Seen] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _handler(state: HttpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        """/echo/...: 200 with the request as JSON; /status/<n>; /slow; /text; /redirect?to=<url>."""

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            state.seen.append(Seen(self.command, self.path, dict(self.headers), body))
            path = urlsplit(self.path).path
            if path.startswith("/status/"):
                return self._send(int(path.rsplit("/", 1)[1]), b'{"error":"as asked"}', "application/json")
            if path == "/slow":
                time.sleep(2)
            if path == "/redirect":
                target = urlsplit(self.path).query.removeprefix("to=")
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            if path == "/text":
                return self._send(200, "plain text ✓".encode(), "text/plain; charset=utf-8")
            echo = {"method": self.command, "path": self.path, "body": body.decode()}
            return self._send(200, json.dumps(echo).encode(), "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Set-Cookie", "session=secret")
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    return Handler


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    """An HTTP server on 127.0.0.1 in a thread, for one test."""
    state = HttpServer(port=0)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, name="test-http", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
