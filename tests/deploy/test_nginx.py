"""deploy/nginx and deploy/docker/nginx.conf with a real nginx: ``nginx -t``, and the production site in front
of two real gateways (against the session database), one of them killed with SIGKILL while a client keeps
asking; rate limits; Server-Sent Events passed on unbuffered.

Each test gets an nginx of its own (a temporary prefix; the config copied with the gateways' addresses, local
ports and a self-signed certificate substituted), so the limit_req zones start empty. Needs Debian's nginx
(./test installs nginx-light as root) and openssl for the certificate; skipped, saying so, without them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_token, process_env
from tests.harness import ORIGINAL_MINIMAL, ROOT, Cluster, Proc, free_port, wait_for

NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
OPENSSL = shutil.which("openssl")
SITE = ROOT / "deploy" / "nginx" / "workflow-engine.conf"
DOCKER_SITE = ROOT / "deploy" / "docker" / "nginx.conf"

pytestmark = [
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (Debian: apt-get install nginx-light)"),
    pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed (the test site's TLS certificate)"),
]


# --------------------------------------------------------------------------------------------- nginx


@dataclass
class Nginx:
    prefix: Path
    https: int
    http: int
    cafile: Path
    popen: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.https}"

    def request(
        self, method: str, path: str, body: Any = None, token: str | None = None, timeout: float = 20
    ) -> tuple[int, str]:
        request = urllib.request.Request(
            self.base + path, data=None if body is None else json.dumps(body).encode(), method=method
        )
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Token {token}")
        context = ssl.create_default_context(cafile=str(self.cafile))
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the site's ssl_certificate, and the client's trust)."""
    crt, key = directory / "site.crt", directory / "site.key"
    subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    files = ["-keyout", str(key), "-out", str(crt)]
    subprocess.run(
        [
            OPENSSL or "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            *subject,
            *files,
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return crt, key


def localized(source: Path, upstreams: dict[str, str], http: int, https: int, crt: Path, key: Path) -> str:
    """The config with each ``host:port`` of ``upstreams`` replaced, listening on local ports, and the test
    certificate; fails when a substitution finds nothing (the shipped file changed shape)."""
    text = source.read_text()
    replacements = {
        **{f"server {name} ": f"server {address} " for name, address in upstreams.items()},
        "listen 80;": f"listen 127.0.0.1:{http};",
        "listen 443 ssl;": f"listen 127.0.0.1:{https} ssl;",
        "/etc/nginx/tls/workflow.example.com.crt": str(crt),
        "/etc/nginx/tls/workflow.example.com.key": str(key),
    }
    for old, new in replacements.items():
        if old.startswith("server ") or old.startswith("listen 80"):
            assert old in text, f"{source.name}: expected {old!r}"
        text = text.replace(old, new)
    return text


def main_config(prefix: Path, site: Path) -> Path:
    """nginx.conf around the site, as Debian's includes conf.d/*.conf inside ``http {}``, every path in
    ``prefix`` (root: the workers stay root, since the temporary prefix is private to this user)."""
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = prefix / "nginx.conf"
    conf.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"worker_processes 1;\npid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'} info;\n"
        + "events { worker_connections 512; }\n"
        + f"http {{\n    access_log {prefix / 'access.log'};\n{temp}\n    include {site};\n}}\n"
    )
    return conf


def nginx_test(conf: Path, prefix: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NGINX or "nginx", "-t", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
        capture_output=True,
        text=True,
        timeout=30,
    )


def prepare(tmp_path: Path, source: Path, upstreams: dict[str, str]) -> tuple[Nginx, Path]:
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    crt, key = certificate(prefix)
    web = Nginx(prefix, https=free_port(), http=free_port(), cafile=crt)
    site = prefix / "site.conf"
    site.write_text(localized(source, upstreams, web.http, web.https, crt, key))
    return web, main_config(prefix, site)


@pytest.fixture
def start_nginx(tmp_path: Path) -> Iterator[Any]:
    started: list[Nginx] = []

    def start(upstreams: dict[str, str]) -> Nginx:
        web, conf = prepare(tmp_path, SITE, upstreams)
        checked = nginx_test(conf, web.prefix)
        assert checked.returncode == 0, checked.stderr
        argv = [NGINX or "nginx", "-p", str(web.prefix), "-c", str(conf), "-e", str(web.prefix / "error.log")]
        web.popen = subprocess.Popen([*argv, "-g", "daemon off;"], stderr=subprocess.STDOUT)
        started.append(web)
        wait_for("nginx to listen", lambda: _listening(web.https), timeout=15)
        return web

    yield start
    for web in started:
        assert web.popen is not None
        web.popen.send_signal(signal.SIGQUIT)  # graceful: open streams end, workers exit
        try:
            web.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            web.popen.kill()
            web.popen.wait(timeout=10)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


# --------------------------------------------------------------------------------------------- gateways


@dataclass
class Gateways:
    cluster: Cluster
    ports: list[int]
    procs: list[Proc]
    token: str

    def upstreams(self) -> dict[str, str]:
        return {"node2:8080": f"127.0.0.1:{self.ports[0]}", "node3:8080": f"127.0.0.1:{self.ports[1]}"}

    def start(self, index: int) -> None:
        self.procs[index] = self.cluster.start_gateway(self.ports[index], name=f"gateway-{index}")

    def wait_ready(self, index: int) -> None:
        url = f"http://127.0.0.1:{self.ports[index]}/health/ready"
        wait_for(f"gateway {index}", lambda: urllib.request.urlopen(url, timeout=5).status == 200, timeout=60)


@pytest.fixture(scope="module")
def gateways(
    tmp_path_factory: pytest.TempPathFactory, django_db_setup: None, django_db_blocker: Any
) -> Iterator[Gateways]:
    """Two real gateways (gunicorn, the production command line) on the session database."""
    workdir = tmp_path_factory.mktemp("nginx-gateways")
    cluster = Cluster(workdir, process_env(workdir))
    with django_db_blocker.unblock():
        token = make_token("nginx")
    pair = Gateways(cluster, [free_port(), free_port()], [], token)
    pair.procs = [cluster.start_gateway(port, name=f"gateway-{i}") for i, port in enumerate(pair.ports)]
    try:
        for index in range(2):
            pair.wait_ready(index)
        yield pair
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.stop()


# --------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize(
    ("source", "upstreams"),
    [
        (SITE, {"node2:8080": "127.0.0.1:9", "node3:8080": "127.0.0.1:9"}),
        (DOCKER_SITE, {"gateway:8080": "127.0.0.1:9"}),
    ],
    ids=["production-site", "docker-compose"],
)
def test_nginx_accepts_the_shipped_configs(tmp_path: Path, source: Path, upstreams: dict[str, str]) -> None:
    web, conf = prepare(tmp_path, source, upstreams)
    checked = nginx_test(conf, web.prefix)
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr and "test is successful" in checked.stderr


def test_every_request_answers_200_while_one_gateway_is_killed(gateways: Gateways, start_nginx: Any) -> None:
    web = start_nginx(gateways.upstreams())
    answers: list[tuple[int, str]] = []
    try:
        for index in range(120):
            if index == 30:
                gateways.procs[1].kill()  # SIGKILL to gunicorn's whole process group, as a machine dies
            answers.append(web.request("GET", "/api/v1/workflows?limit=1", token=gateways.token))
            time.sleep(0.04)  # ~15 requests/s: under the per-address limit (20 r/s), so only failover is seen
    finally:
        gateways.start(1)
        gateways.wait_ready(1)
    failed = [(i, status, body[:200]) for i, (status, body) in enumerate(answers) if status != 200]
    assert not failed, f"{failed}\n{web.error_log()}"
    # nginx did meet the dead gateway, and went on to the live one
    assert re.search(
        r"connect\(\) failed \(111: Connection refused\)|upstream prematurely closed", web.error_log()
    )


def test_nginx_answers_json_503_when_no_gateway_is_up(tmp_path: Path, start_nginx: Any) -> None:
    closed = f"127.0.0.1:{free_port()}"
    web = start_nginx({"node2:8080": closed, "node3:8080": closed})
    status, body = web.request("GET", "/api/v1/workflows")
    assert status == 503
    assert json.loads(body)["error"] == "service_unavailable"


def test_sign_in_is_limited_per_address_with_a_json_429(gateways: Gateways, start_nginx: Any) -> None:
    web = start_nginx(gateways.upstreams())
    answers = [
        web.request(
            "POST", "/api/v1/auth/login", {"username": f"nobody-{uuid.uuid4().hex[:8]}", "password": "x"}
        )
        for _ in range(12)
    ]
    from_nginx = [body for status, body in answers if status == 429 and "nginx limit_req" in body]
    # one at the rate plus a burst of 5 reach the gateways (which refuse the wrong password); the rest not
    assert len(from_nginx) == 6, answers
    assert json.loads(from_nginx[0])["error"] == "throttled"
    assert all(status != 429 for status, _ in answers[:6]), answers


def test_a_flood_from_one_address_is_refused_but_health_probes_are_not(
    gateways: Gateways, start_nginx: Any
) -> None:
    web = start_nginx(gateways.upstreams())

    def get(path: str) -> tuple[int, str]:
        return web.request("GET", path, token=gateways.token)

    with ThreadPoolExecutor(8) as pool:
        flood = list(pool.map(get, ["/api/v1/workflows?limit=1"] * 120))
        probes = list(pool.map(get, ["/health/live"] * 120))
    assert any(status == 429 and "nginx limit_req" in body for status, body in flood)
    assert {status for status, _ in flood} <= {200, 429}
    assert {status for status, _ in probes} == {200}


def test_server_sent_events_pass_through_nginx_unbuffered(gateways: Gateways, start_nginx: Any) -> None:
    web = start_nginx(gateways.upstreams())
    workflow_id = f"nginx-sse-{uuid.uuid4().hex[:8]}"
    status, body = web.request(
        "POST", "/api/v1/workflows", {**ORIGINAL_MINIMAL, "id": workflow_id}, gateways.token
    )
    assert status == 201, body
    request = urllib.request.Request(
        f"{web.base}/api/v1/workflows/{workflow_id}/executions/stream?timeout=20"
    )
    request.add_header("Authorization", f"Token {gateways.token}")
    started = time.monotonic()
    context = ssl.create_default_context(cafile=str(web.cafile))
    # buffered, the first bytes would come when the stream ends (20 s); unbuffered, at once
    with urllib.request.urlopen(request, timeout=5, context=context) as response:
        assert response.headers.get_content_type() == "text/event-stream"
        first = response.readline()
    assert first.startswith(b"retry:"), first
    assert time.monotonic() - started < 5
