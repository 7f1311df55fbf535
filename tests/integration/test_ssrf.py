"""http.request against request forgery, with real HTTP servers on loopback (issue 10, requirement 1).

Two servers play the parts: ``api``, whose port is in ``WORKFLOW_HTTP_ALLOWED_HOSTS``, and ``attacker``, whose
port is not. Every test asserts what the attacker's server *received*: a refusal after the request was sent is
too late. The first tests run the node in this process; the last ones go through a real gateway and worker.
tests/unit/test_url_policy.py holds the full table of URL tricks.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest

from apps.workflows.nodes import http
from apps.workflows.nodes.base import NodeContext, NodeImplementation
from devservices import RedisServer
from tests.conftest import process_env
from tests.harness import Api, Cluster, free_port, migrate_with_token, wait_for
from tests.integration.conftest import create_database, db_url, drop_database
from tests.integration.test_executions import step, workflow
from tests.integration.test_integration_nodes import fails, impl, problems, records, run

BACKSLASH = "http://127.0.0.1:{attacker}\\@127.0.0.1:{api}/x"


@dataclass
class Server:
    """A recording HTTP server: ``/echo`` answers 200 with the request; ``/go`` redirects to ``location``
    with ``status``; anything else is a 404. ``seen`` holds (method, path, headers) of every request."""

    host: str
    port: int = 0
    location: str = "/echo"
    status: int = 302
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"


def _handler(state: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            state.seen.append((self.command, self.path, dict(self.headers)))
            if self.path.startswith("/go"):
                self.send_response(state.status)
                self.send_header("Location", state.location)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            echo = {"method": self.command, "path": self.path, "host": self.headers["Host"], "body": body}
            raw = json.dumps(echo).encode()
            self.send_response(200 if self.path.startswith("/echo") else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = do_PUT = _answer

    return Handler


@contextmanager
def serve(host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None) -> Iterator[Server]:
    state = Server(host, port)
    server = ThreadingHTTPServer((host, port), _handler(state))
    server.daemon_threads = True
    if tls is not None:
        tls.sni_callback = lambda sock, name, ctx: state.sni.append(name)  # type: ignore[assignment,misc]
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    state.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, name=f"ssrf-{host}", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def api() -> Iterator[Server]:
    with serve() as server:
        yield server


@pytest.fixture
def attacker() -> Iterator[Server]:
    with serve() as server:
        yield server


@pytest.fixture
def allowed(settings: Any, api: Server) -> Server:
    settings.WORKFLOW_HTTP_ALLOWED_HOSTS = [f"127.0.0.1:{api.port}"]
    return api


# --------------------------------------------------------------------------------------------- in process


def test_the_issues_backslash_url_is_refused_when_defined_and_when_run_and_reaches_no_server(
    allowed: Server, attacker: Server
) -> None:
    url = BACKSLASH.format(attacker=attacker.port, api=allowed.port)
    assert "backslash" in problems("http.request", "source", {"url": url})["url"][0]
    with pytest.raises(http.NodeError, match=r"refused http://127\.0\.0\.1:\d+\\@.*backslash") as caught:
        node = impl("http.request", "source")
        node.run(_context(node, {"url": url}), [])  # as if stored before this check existed
    assert not caught.value.retryable
    assert attacker.seen == [] and allowed.seen == []


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        (
            "http://127.0.0.1:{attacker}/steal",
            "Host 127.0.0.1:{attacker} is not allowed: 127.0.0.1 is loopback",
        ),
        ("http://127.0.0.1:{attacker}\\@127.0.0.1:{api}/steal", "backslash"),
        ("//127.0.0.1:{attacker}/steal", "Host 127.0.0.1:{attacker} is not allowed"),
        ("http://localhost:{attacker}/steal", "Host localhost:{attacker} is not allowed"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is link-local"),
        ("http://[::ffff:127.0.0.1]:{attacker}/", "IPv4 address written as IPv6"),
        ("http://2130706433:{attacker}/", "not a plain dotted IPv4 address"),
        ("file:///etc/passwd", "http:// or https://"),
    ],
)
def test_a_redirect_out_of_the_allow_list_fails_the_node_and_its_target_receives_nothing(
    allowed: Server, attacker: Server, location: str, reason: str
) -> None:
    allowed.location = location.format(attacker=attacker.port, api=allowed.port)
    error = fails("http.request", "source", {"url": f"{allowed.base}/go"})
    assert "refused a redirect to" in str(error) and reason.format(attacker=attacker.port) in str(error)
    assert not error.retryable
    assert attacker.seen == [] and [path for _, path, _ in allowed.seen] == ["/go"]


def test_a_name_on_the_allow_list_that_resolves_to_loopback_is_refused_unless_its_address_is_listed(
    settings: Any, api: Server
) -> None:
    settings.WORKFLOW_HTTP_ALLOWED_HOSTS = [f"localhost:{api.port}"]
    error = fails("http.request", "source", {"url": f"http://localhost:{api.port}/echo"})
    assert "localhost resolves to 127.0.0.1, which is loopback and not in WORKFLOW_HTTP_ALLOWED_HOSTS" in str(
        error
    )
    assert api.seen == []
    # listed with its addresses, it works, and the server sees the name it was called by
    settings.WORKFLOW_HTTP_ALLOWED_HOSTS += [f"127.0.0.1:{api.port}", f"[::1]:{api.port}"]
    [response] = records("http.request", "source", {"url": f"http://localhost:{api.port}/echo"})
    assert response["body"]["host"] == f"localhost:{api.port}"


def test_it_connects_to_the_address_it_checked_and_never_asks_dns_again(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the first answer is checked, a later one would point elsewhere. The name exists only
    in the injected resolver, so a client that resolved it again could not even connect."""
    with serve("127.0.0.1") as good, serve("127.0.0.2", good.port) as evil:
        answers = iter([["127.0.0.1"], ["127.0.0.2"]])
        asked: list[str] = []
        monkeypatch.setattr(http, "resolver", lambda host, port: asked.append(host) or next(answers))
        settings.WORKFLOW_HTTP_ALLOWED_HOSTS = [f"rebind.test:{good.port}", f"127.0.0.1:{good.port}"]
        [response] = records("http.request", "source", {"url": f"http://rebind.test:{good.port}/echo"})
        assert response["body"]["host"] == f"rebind.test:{good.port}"
        assert asked == ["rebind.test"] and evil.seen == [] and len(good.seen) == 1


def test_redirects_are_bounded_and_each_hop_is_checked_again(allowed: Server) -> None:
    allowed.location = "/go"
    error = fails("http.request", "source", {"url": f"{allowed.base}/go"})
    assert "more than 5 redirects" in str(error) and len(allowed.seen) == 6


def test_credentials_stay_with_their_origin_and_a_303_becomes_a_get(
    settings: Any, allowed: Server, attacker: Server
) -> None:
    settings.WORKFLOW_HTTP_ALLOWED_HOSTS = [f"127.0.0.1:{allowed.port}", f"127.0.0.1:{attacker.port}"]
    allowed.location, allowed.status = f"{attacker.base}/echo", 303
    config = {"url": f"{allowed.base}/go", "method": "POST", "headers": {"Authorization": "Bearer s3cret"}}
    [response] = records("http.request", "transform", config, [{"a": 1}])
    assert response["body"]["method"] == "GET" and response["body"]["body"] == ""
    assert allowed.seen[0][2]["Authorization"] == "Bearer s3cret" and "Idempotency-Key" in allowed.seen[0][2]
    assert "Authorization" not in attacker.seen[0][2]


def test_a_307_keeps_the_method_the_body_and_the_idempotency_key(allowed: Server) -> None:
    allowed.location, allowed.status = "/echo/landed", 307
    run(
        "http.request",
        "transform",
        {"url": f"{allowed.base}/go", "method": "PUT"},
        [{"a": 1}],
        execution="e9",
    )
    [(_, _, first), (method, path, second)] = allowed.seen
    assert (method, path) == ("PUT", "/echo/landed")
    assert first["Idempotency-Key"] == second["Idempotency-Key"] == "e9:n:1:0"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_tls_to_a_pinned_address_still_verifies_the_certificate_for_the_name(
    settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=api.tls.test", "-addext", "subjectAltName=DNS:api.tls.test",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    monkeypatch.setattr(http, "resolver", lambda host, port: ["127.0.0.1"])
    with serve(tls=tls) as server:
        settings.WORKFLOW_HTTP_ALLOWED_HOSTS = ["*.tls.test", f"127.0.0.1:{server.port}"]
        client = http._Client()
        client.session.verify = str(cert)
        request = {"headers": {}, "data": None, "timeout": 5.0}
        _, body = client.fetch("GET", f"https://api.tls.test:{server.port}/echo", request, "")
        assert body["host"] == f"api.tls.test:{server.port}" and server.sni == ["api.tls.test"]
        with pytest.raises(http.NodeError, match="certificate"):  # same address, a name the cert lacks
            client.fetch("GET", f"https://other.tls.test:{server.port}/echo", request, "")
        client.close()


def _context(node: NodeImplementation, config: dict[str, Any]) -> NodeContext:
    return NodeContext("exec-1", "wf", "n", 1, node.with_defaults(config), print)


# --------------------------------------------------------------------------------------------- a real worker


@dataclass
class Stack:
    api: Api
    engine_url: str
    good: Server
    attacker: Server


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """gateway + coordinator + worker on a database and Redis of their own. The allow-list holds the ``good``
    server's address and port, and the attacker's port only under the name ``localhost``."""
    from django.conf import settings

    tmp = tmp_path_factory.mktemp("ssrf")
    name = create_database("wfe_ssrf")
    engine_url, token = db_url(settings.DATABASE_URL, name), uuid.uuid4().hex
    redis = RedisServer(tmp / "redis", free_port())
    redis.start()
    cluster: Cluster | None = None
    with serve() as good, serve() as attacker:
        try:
            migrate_with_token(engine_url, token, "ssrf")
            env = process_env(tmp)
            env.update(
                DATABASE_URL=engine_url,
                REDIS_URL=redis.url(),
                WORKFLOW_HTTP_ALLOWED_HOSTS=f"127.0.0.1:{good.port},localhost:{attacker.port}",
            )
            cluster = Cluster(tmp, env)
            port = free_port()
            cluster.start_node(port, free_port())
            client = Api(f"http://127.0.0.1:{port}", token)
            wait_for("the gateway", lambda: client.get("/health/ready")[0] == 200, timeout=90)
            owned = "SELECT count(*) FROM cluster_shardlease WHERE owner IS NOT NULL"
            wait_for("a worker to own shards", lambda: _sql(engine_url, owned)[0][0] > 0, timeout=90)
            yield Stack(client, engine_url, good, attacker)
        except BaseException:
            if cluster is not None:
                print(cluster.logs())
            raise
        finally:
            if cluster is not None:
                cluster.stop()
            redis.stop()
            drop_database(name)


def _sql(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(statement, params).fetchall()  # type: ignore[arg-type]


def _calling(url: str) -> dict[str, Any]:
    return workflow(
        f"ssrf-{uuid.uuid4().hex[:8]}",
        [step("call", "http.request", "source", url=url), step("out", "console.log", "sink")],
        [("call", "out")],
    )


def _execute(stack: Stack, wf_id: str) -> dict[str, Any]:
    status, started = stack.api.post(f"/api/v1/workflows/{wf_id}/execute")
    assert status == 200, started
    return stack.api.wait_finished(started["executionId"], timeout=90)


def test_through_the_api_the_backslash_url_is_a_draft_naming_the_field_that_cannot_run(stack: Stack) -> None:
    url = BACKSLASH.format(attacker=stack.attacker.port, api=stack.good.port)
    status, body = stack.api.post("/api/v1/workflows", _calling(url))
    assert status == 201 and body["valid"] is False, body
    assert "backslash" in body["problems"]["nodes[0].config.url"][0]
    status, refused = stack.api.post(f"/api/v1/workflows/{body['workflowId']}/execute")
    assert status == 400 and refused["details"] == body["problems"], refused
    assert stack.attacker.seen == []


def test_a_worker_refuses_an_allowed_name_that_resolves_to_loopback_and_the_port_receives_nothing(
    stack: Stack,
) -> None:
    """``localhost:<attacker>`` is listed by name, so the definition is accepted (names are resolved only when
    the request is made); the worker resolves it, finds loopback that no IP entry lists, and refuses."""
    body = _calling(f"http://localhost:{stack.attacker.port}/steal")
    assert stack.api.post("/api/v1/workflows", body)[0] == 201
    execution = _execute(stack, body["id"])
    assert execution["status"] == "failed" and execution["failedNodeId"] == "call", execution
    assert (
        f"refused http://localhost:{stack.attacker.port}/steal: localhost resolves to 127.0.0.1, which is "
        "loopback and not in WORKFLOW_HTTP_ALLOWED_HOSTS" in execution["error"]
    )
    assert stack.attacker.seen == []


def test_a_worker_refuses_a_redirect_to_an_unlisted_port_and_that_port_receives_nothing(stack: Stack) -> None:
    stack.good.seen.clear()
    stack.good.location = f"{stack.attacker.base}/steal"
    body = _calling(f"{stack.good.base}/go")
    assert stack.api.post("/api/v1/workflows", body)[0] == 201
    execution = _execute(stack, body["id"])
    assert execution["status"] == "failed", execution
    assert f"refused a redirect to 127.0.0.1:{stack.attacker.port}" in execution["error"]
    assert stack.attacker.seen == [] and [path for _, path, _ in stack.good.seen] == ["/go"]
