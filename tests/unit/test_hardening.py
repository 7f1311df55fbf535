"""Production hardening (issue 15, item 8): ``check --deploy`` clean with the documented settings, HSTS and
Secure cookies on HTTPS, the placeholder and short ``SECRET_KEY`` refused at start, dev untouched.

Each case runs Django in a subprocess with the environment an operator would give it, since settings are read
once per process.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy.units import read_env_file

ROOT = Path(__file__).resolve().parent.parent.parent
ENV_EXAMPLE = ROOT / "deploy" / "systemd" / "env.example"


def production_env(**overrides: str) -> dict[str, str]:
    """deploy/systemd/env.example (the documented production settings) with this test's services and a real
    key; nothing of the test session's own environment but PATH and the services."""
    env = read_env_file(ENV_EXAMPLE.read_text())
    env.update(
        {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DATABASE_URL": os.environ["DATABASE_URL"],
            "REDIS_URL": os.environ["REDIS_URL"],
            "SECRET_KEY": secrets.token_urlsafe(64),
            "WORKFLOW_DATA_DIR": os.environ.get("WORKFLOW_DATA_DIR", "/tmp"),
            "WORKFLOW_FILE_ROOTS": "",
            "DJANGO_SETTINGS_MODULE": "workflow_engine.settings",
        }
    )
    env.update(overrides)
    return env


def python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_is_clean_in_production_with_the_documented_settings() -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "identified no issues" in done.stdout, done.stdout + done.stderr


def test_check_deploy_still_warns_when_hsts_is_turned_off() -> None:
    """The check above can fail: the settings it relies on are the ones the environment sets."""
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(SECURE_HSTS_SECONDS="0"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "security.W004" in done.stdout + done.stderr


def _shipped_placeholders() -> list[str]:
    compose = yaml.safe_load((ROOT / "deploy" / "docker" / "docker-compose.yml").read_text())
    secret = yaml.safe_load((ROOT / "deploy" / "k8s" / "secret.example.yaml").read_text())
    keys = {
        read_env_file(ENV_EXAMPLE.read_text())["SECRET_KEY"],
        secret["stringData"]["SECRET_KEY"],
        *(
            str(service["environment"]["SECRET_KEY"])
            for service in compose["services"].values()
            if isinstance(service.get("environment"), dict) and service["environment"].get("SECRET_KEY")
        ),
    }
    # docker-compose.yml takes the key from the shell (${SECRET_KEY:?...}): no literal to refuse there
    keys = {key for key in keys if not key.startswith("${")}
    return sorted(keys)


@pytest.mark.parametrize("key", [*_shipped_placeholders(), "change-me", "django-insecure-" + "a1b2" * 12])
def test_production_refuses_a_placeholder_secret_key_saying_how_to_make_one(key: str) -> None:
    done = python("import workflow_engine.settings", production_env(SECRET_KEY=key))
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "SECRET_KEY is a placeholder" in last and "secrets.token_urlsafe" in last, done.stderr
    assert key not in last  # the message names the variable, never the value


def test_production_refuses_a_short_secret_key() -> None:
    done = python("import workflow_engine.settings", production_env(SECRET_KEY="s3cr3t-but-far-too-short"))
    assert done.returncode != 0 and "SECRET_KEY has 24 characters" in done.stderr, done.stderr


def test_the_example_keys_of_the_deploy_files_are_all_refused() -> None:
    """Every SECRET_KEY a deploy file ships is a placeholder production refuses (none is a usable secret)."""
    from workflow_engine.env import PLACEHOLDER_SECRETS

    assert set(_shipped_placeholders()) <= set(PLACEHOLDER_SECRETS)


HEADERS = """
import django
django.setup()
from django.test import Client
client = Client(HTTP_HOST="localhost")
for path, secure in (("/health/live", True), ("/health/live", False), ("/api/v1/cluster/stats", False)):
    response = client.get(path, secure=secure)
    print(path, secure, response.status_code, response.headers.get("Strict-Transport-Security"),
          response.headers.get("Location"))
"""


def test_https_answers_carry_hsts_and_plain_http_is_served_for_nginx_and_probes() -> None:
    done = python(HEADERS, production_env())
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "/health/live True 200 max-age=31536000; includeSubDomains; preload None", done.stdout
    assert lines[1] == "/health/live False 200 None None", done.stdout  # no HSTS over plain HTTP
    assert lines[2].startswith("/api/v1/cluster/stats False 401 None"), done.stdout  # not redirected


def test_secure_ssl_redirect_sends_plain_http_to_https_but_not_the_health_checks() -> None:
    done = python(HEADERS, production_env(SECURE_SSL_REDIRECT="true"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1] == "/health/live False 200 None None", done.stdout
    assert lines[2] == "/api/v1/cluster/stats False 301 None https://localhost/api/v1/cluster/stats"


def test_session_and_csrf_cookies_are_secure_in_production_and_each_can_be_set() -> None:
    code = "from workflow_engine import settings as s; print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE)"
    assert python(code, production_env()).stdout.split() == ["True", "True"]
    assert python(code, production_env(CSRF_COOKIE_SECURE="false")).stdout.split() == ["True", "False"]


def test_the_dev_profile_starts_with_no_configuration_and_no_hsts() -> None:
    code = (
        "from workflow_engine import settings as s; "
        "print(s.PROFILE, s.SECURE_HSTS_SECONDS, s.SESSION_COOKIE_SECURE, s.SECURE_SSL_REDIRECT)"
    )
    bare = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    done = python(code, bare)
    assert done.stdout.split() == ["dev", "0", "False", "False"], done.stderr
