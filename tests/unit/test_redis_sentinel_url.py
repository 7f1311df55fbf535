"""``REDIS_URL`` in the ``sentinel://`` form (issue 16): parsed once, translated for each client."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import kombu
import pytest
from django.core.exceptions import ImproperlyConfigured

from workflow_engine import env

ROOT = Path(__file__).resolve().parents[2]
URL = "sentinel://:s%40cret@sentinel-a:26380,sentinel-b,[::1]:26381/3?service_name=mymaster"


def test_a_sentinel_url_names_every_sentinel_the_master_and_its_credentials() -> None:
    config = env.parse_sentinel_url(URL + "&sentinel_password=own")
    assert config.sentinels == (("sentinel-a", 26380), ("sentinel-b", 26379), ("::1", 26381))
    assert (config.service_name, config.db, config.username, config.password) == (
        "mymaster",
        3,
        None,
        "s@cret",
    )
    assert config.sentinel_password == "own"
    assert env.check_redis_url(URL) == URL


def test_a_sentinel_url_becomes_kombus_list_of_sentinel_urls_with_the_master_name_as_an_option() -> None:
    config = env.parse_sentinel_url(URL + "&sentinel_password=own")
    broker = config.kombu_url()
    assert broker == (
        "sentinel://:s%40cret@sentinel-a:26380/3;sentinel://:s%40cret@sentinel-b:26379/3;"
        "sentinel://:s%40cret@[::1]:26381/3"
    )
    assert config.kombu_options() == {"master_name": "mymaster", "sentinel_kwargs": {"password": "own"}}
    connection = kombu.Connection(broker, transport_options=config.kombu_options())
    assert connection.transport_cls == "sentinel"
    assert (connection.hostname, connection.port, connection.virtual_host) == ("sentinel-a", 26380, "3")
    assert connection.password == "s@cret"
    assert len(connection.alt) == 3


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("sentinel://h1:26379,h2:26379/0", "needs the master's name"),
        ("sentinel://h1:26379/0?service_name=", "needs the master's name"),
        ("sentinel://h1:26379,,h2/0?service_name=m", "a sentinel address is empty"),
        ("sentinel:///0?service_name=m", "a sentinel address is empty"),
        ("sentinel://h1:port/0?service_name=m", "the port 'port' is not a number"),
        ("sentinel://h1:70000/0?service_name=m", "the port '70000' is not a number"),
        ("sentinel://h1/zero?service_name=m", "the database 'zero' is not a whole number"),
        ("sentinel://h1/0?service_name=m&master=x", "unknown parameter(s) master"),
        ("sentinel://h1/0?service_name", "the query string is malformed"),
        ("redis://h1:port/0", "the port 'port' is not a number"),
        ("http://h1/0", "expected redis://"),
    ],
)
def test_a_malformed_redis_url_is_refused_naming_the_variable_and_the_problem(url: str, problem: str) -> None:
    with pytest.raises(ImproperlyConfigured) as refused:
        env.check_redis_url(url.replace("h1", ":hunter2@h1", 1) if "h1" in url else url)
    message = str(refused.value)
    assert message.startswith("REDIS_URL="), message
    assert problem in message, message
    assert "hunter2" not in message, "the password is masked"


def _settings(redis_url: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.CELERY_BROKER_URL); print(s.CELERY_BROKER_TRANSPORT_OPTIONS['master_name']); "
        "print(s.CACHES['throttle']['OPTIONS']['pool_class'])"
    )
    environ = {**os.environ, "REDIS_URL": redis_url, "DJANGO_SETTINGS_MODULE": "workflow_engine.settings"}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120
    )


def test_settings_accept_a_sentinel_url_for_the_broker_and_the_rate_limit_cache() -> None:
    loaded = _settings("sentinel://127.0.0.1:26379,127.0.0.1:26380/2?service_name=wf")
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split() == [
        "sentinel://127.0.0.1:26379/2;sentinel://127.0.0.1:26380/2",
        "wf",
        "workflow_engine.redis_client.SentinelPool",
    ]


def test_settings_refuse_a_sentinel_url_without_a_master_name_at_start() -> None:
    loaded = _settings("sentinel://127.0.0.1:26379/0")
    assert loaded.returncode != 0
    assert "REDIS_URL='sentinel://127.0.0.1:26379/0': a sentinel URL needs the master's name" in loaded.stderr
