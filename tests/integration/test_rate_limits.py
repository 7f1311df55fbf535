"""Rate limits (workflow_engine/api/throttles.py) against the real Redis: per token, per anonymous IP, and
failed token authentications per IP, answering 429 with Retry-After in the API's error shape."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.conftest import process_env
from tests.harness import Cluster, free_port, wait_for
from workflow_engine.env import env_rate

ROUTE = "/api/v1/workflows/node-types"  # any authenticated route
DAY = 86400


@pytest.fixture(autouse=True)
def _same_window() -> None:
    """Limits here are per day; a test starting right before midnight (UTC) could see its window roll."""
    left = DAY - time.time() % DAY
    if left < 20:
        time.sleep(left + 0.5)


@pytest.fixture
def limits(settings: Any) -> Iterator[Any]:
    """Low limits for this test; a new client IP and new users keep other tests' counters apart."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "3/day", "anon": "2/day", "auth_failures": "3/day"},
    }
    yield settings


def new_ip() -> str:
    raw = uuid.uuid4().bytes
    return f"10.{raw[0]}.{raw[1]}.{raw[2] or 1}"


def token_client(ip: str, key: str | None = None) -> APIClient:
    if key is None:
        user = get_user_model().objects.create_user(
            f"rate-{uuid.uuid4().hex[:10]}", is_staff=True, is_superuser=True
        )
        key = Token.objects.create(user=user).key
    client = APIClient(REMOTE_ADDR=ip)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def assert_throttled(response: Any, json: bool = True) -> None:
    assert response.status_code == 429, response.content
    assert 0 < int(response["Retry-After"]) <= DAY
    if not json:  # the Swagger page renders HTML
        return
    body = response.json()
    assert body["error"] == "throttled"
    assert body["message"]
    assert body["details"] == {}


@pytest.mark.django_db
def test_it_limits_requests_per_token_and_keeps_tokens_apart(limits: Any) -> None:
    ip = new_ip()
    first, second = token_client(ip), token_client(ip)
    assert [first.get(ROUTE).status_code for _ in range(3)] == [200, 200, 200]
    assert_throttled(first.get(ROUTE))
    assert second.get(ROUTE).status_code == 200  # same address, another token: its own budget


@pytest.mark.django_db
def test_it_limits_anonymous_requests_per_ip(limits: Any) -> None:
    ip = new_ip()
    anonymous = APIClient(REMOTE_ADDR=ip)
    assert [anonymous.get("/api/docs/").status_code for _ in range(2)] == [200, 200]
    assert_throttled(anonymous.get("/api/docs/"), json=False)
    assert APIClient(REMOTE_ADDR=new_ip()).get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_it_throttles_token_guessing_per_ip_even_for_a_right_guess(limits: Any) -> None:
    ip = new_ip()
    guesser = token_client(ip, key="0" * 40)
    assert [guesser.get(ROUTE).status_code for _ in range(3)] == [401, 401, 401]
    assert_throttled(guesser.get(ROUTE))
    valid = token_client(ip)  # a right token from the guessing address gets no answer either
    assert_throttled(valid.get(ROUTE))
    assert token_client(new_ip(), key="1" * 40).get(ROUTE).status_code == 401
    assert token_client(new_ip()).get(ROUTE).status_code == 200


@pytest.mark.django_db
def test_it_ignores_a_client_written_x_forwarded_for_without_trusted_proxies(limits: Any) -> None:
    ip = new_ip()
    for n in range(3):
        spoofed = token_client(ip, key="2" * 40)
        assert spoofed.get(ROUTE, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}").status_code == 401
    assert_throttled(token_client(ip, key="2" * 40).get(ROUTE, HTTP_X_FORWARDED_FOR="192.0.2.99"))


@pytest.mark.django_db
def test_it_takes_the_address_a_trusted_proxy_added(limits: Any) -> None:
    limits.REST_FRAMEWORK = {**limits.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy, client, other = new_ip(), new_ip(), new_ip()
    guesser = token_client(proxy, key="3" * 40)
    for n in range(3):  # what the client wrote first is not trusted; nginx's last entry is
        assert guesser.get(ROUTE, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}, {client}").status_code == 401
    assert_throttled(guesser.get(ROUTE, HTTP_X_FORWARDED_FOR=client))
    assert guesser.get(ROUTE, HTTP_X_FORWARDED_FOR=other).status_code == 401


@pytest.mark.django_db
def test_it_never_throttles_the_health_probes(limits: Any) -> None:
    limits.REST_FRAMEWORK = {
        **limits.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "1/day", "anon": "1/day", "auth_failures": "1/day"},
    }
    probe = APIClient(REMOTE_ADDR=new_ip())
    assert {probe.get("/health/live").status_code for _ in range(5)} == {200}
    assert {probe.get("/health").status_code for _ in range(5)} == {200}


@pytest.mark.django_db
def test_a_limit_turned_off_does_not_throttle(limits: Any) -> None:
    limits.REST_FRAMEWORK = {
        **limits.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": None, "anon": None, "auth_failures": None},
    }
    client = token_client(new_ip())
    assert {client.get(ROUTE).status_code for _ in range(5)} == {200}


@pytest.mark.parametrize(
    ("raw", "rate"),
    [("600/min", "600/min"), ("5/S", "5/s"), ("10/hour", "10/hour"), ("off", None), ("0", None)],
)
def test_it_reads_a_rate_from_the_environment(monkeypatch: pytest.MonkeyPatch, raw: str, rate: str) -> None:
    monkeypatch.setenv("WORKFLOW_RATE_LIMIT_USER", raw)
    assert env_rate("WORKFLOW_RATE_LIMIT_USER", "1/s") == rate


@pytest.mark.parametrize("raw", ["600", "600/fortnight", "-1/min", "0/min", "ten/min", "600/min/2"])
def test_it_refuses_a_malformed_rate_naming_the_variable(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("WORKFLOW_RATE_LIMIT_USER", raw)
    with pytest.raises(ImproperlyConfigured, match="WORKFLOW_RATE_LIMIT_USER"):
        env_rate("WORKFLOW_RATE_LIMIT_USER", "1/s")


def test_a_started_gateway_takes_its_limits_from_the_environment(tmp_path: Path) -> None:
    env = process_env(tmp_path)
    env["WORKFLOW_RATE_LIMIT_AUTH_FAILURES"] = "2/day"
    cluster = Cluster(tmp_path, env)
    port = free_port()
    cluster.start_gateway(port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for("the gateway", lambda: status(base, "/health/live") == 200, timeout=60)
        # every client here is 127.0.0.1: the last bad tokens of a run before may still count
        answers = [status(base, ROUTE, token=uuid.uuid4().hex) for _ in range(3)]
        assert answers[-1] == 429
        assert set(answers) <= {401, 429}
        assert status(base, "/health/live") == 200
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.stop()


def status(base: str, path: str, token: str | None = None) -> int:
    request = urllib.request.Request(base + path)
    if token:
        request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        if exc.code == 429:
            assert 0 < int(exc.headers["Retry-After"]) <= DAY
        return exc.code
