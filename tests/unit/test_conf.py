"""Configuration is validated at start, with messages that name the key and what it accepts."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.workflows.conf import load
from workflow_engine import env


def test_the_defaults_are_the_original_products() -> None:
    s = load({})
    assert (s.number_of_shards, s.snapshot_every, s.keep_n_snapshots) == (100, 100, 2)
    assert s.passivate_idle_entity_after == 120.0 and s.rebalance_interval == 10.0


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"number-of-shard": 5}, "unknown key 'number-of-shard'"),
        (
            {"number-of-shards": 5},
            r"number-of-shards \(WORKFLOW_NUMBER_OF_SHARDS\)=5 must be between 10 and 1000",
        ),
        ({"snapshot-every": 20000}, "snapshot-every .*=20000 must be between 10 and 10000"),
        (
            {"keep-n-snapshots": "two"},
            r"keep-n-snapshots \(WORKFLOW_KEEP_N_SNAPSHOTS\)='two' must be a whole number",
        ),
        ({"rebalance-interval": "soon"}, "expected a duration"),
        ({"heartbeat-interval": "3s", "liveness-ttl": "4s"}, "at least twice heartbeat-interval"),
    ],
)
def test_bad_engine_settings_fail_at_start_naming_the_key(raw: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=fragment):
        load(raw)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("30s", 30), ("5m", 300), ("1h", 3600), ("1d", 86400), ("2", 2), (1.5, 1.5)],
)
def test_durations_use_the_original_grammar(text: Any, seconds: float) -> None:
    assert env.parse_duration(text) == seconds


def test_environment_readers_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_INT", "ten")
    with pytest.raises(ImproperlyConfigured, match="X_INT='ten': expected a whole number"):
        env.env_int("X_INT", 1)
    monkeypatch.setenv("X_BOOL", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_BOOL='maybe'"):
        env.env_bool("X_BOOL", False)
    monkeypatch.setenv("X_PORT", "70000")
    with pytest.raises(ImproperlyConfigured, match="between 1 and 65535"):
        env.env_int("X_PORT", 1, low=1, high=65535)


def test_secrets_can_come_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    (tmp_path / "secret").write_text("s3cret\n")
    monkeypatch.setenv("MY_SECRET_FILE", str(tmp_path / "secret"))
    assert env.env_secret("MY_SECRET") == "s3cret"
    monkeypatch.setenv("MY_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="MY_SECRET_FILE"):
        env.env_secret("MY_SECRET")


@pytest.mark.parametrize("url", ["mysql://x/db", "postgresql://host:port/db", "postgresql://host/"])
def test_a_bad_database_url_is_refused(url: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        env.database_from_url(url)


def test_a_database_url_becomes_django_settings() -> None:
    db = env.database_from_url("postgresql://u:p%40ss@db.example:6543/wf?sslmode=require")
    assert db["OPTIONS"] == {"sslmode": "require"}
    assert (db["USER"], db["PASSWORD"], db["HOST"], db["PORT"], db["NAME"]) == (
        "u",
        "p@ss",
        "db.example",
        "6543",
        "wf",
    )
