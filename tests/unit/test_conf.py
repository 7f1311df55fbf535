"""Configuration is validated at start, with messages that name the key and what it accepts; each tunable is
declared once (workflow_engine/tunables.py) and the docs' table is generated from it."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from workflow_engine import env, tunables
from workflow_engine.tunables import EngineSettings, engine_settings, load

ROOT = Path(__file__).resolve().parent.parent.parent


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
        ({"max-node-output-bytes": 300 * 1024 * 1024}, "max-node-output-bytes .* must be between 1 and"),
    ],
)
def test_bad_engine_settings_fail_at_start_naming_the_key(raw: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=fragment):
        load(raw)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        load({"number-of-shards": 5, "keep-n-snapshots": 0, "sql-thread": 2, "apply-timeout": "soon"})
    message = str(caught.value)
    for fragment in ("'sql-thread'", "number-of-shards", "keep-n-snapshots", "apply-timeout"):
        assert fragment in message


def test_both_timing_rules_and_the_checks_of_upper_layers_are_reported_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tunables, "_checks", list(tunables._checks))
    tunables.register_check(lambda loaded: [f"a rule of an app saw {loaded.sql_threads} threads"])
    with pytest.raises(ImproperlyConfigured) as caught:
        load({"heartbeat-interval": "1s", "liveness-ttl": "1s", "sql-threads": 3})
    assert "at least twice heartbeat-interval" in str(caught.value)
    assert "a rule of an app saw 3 threads" in str(caught.value)


def test_the_settings_object_is_typed_and_reloads_under_override_settings(settings: Any) -> None:
    assert isinstance(tunables.reload(), EngineSettings)
    with override_settings(WORKFLOW_ENGINE={**settings.WORKFLOW_ENGINE, "number-of-shards": 12}):
        assert engine_settings.number_of_shards == 12
    assert engine_settings.number_of_shards == load(settings.WORKFLOW_ENGINE).number_of_shards


def test_each_fields_type_is_what_its_kind_parses_to() -> None:
    types = {"int": int, "duration": float, "paths": list[Path]}
    hints = typing.get_type_hints(EngineSettings)
    assert {t.attr: hints[t.attr] for t in tunables.TUNABLES} == {
        t.attr: types[t.spec.kind] for t in tunables.TUNABLES
    }
    assert [f.name for f in dataclasses.fields(EngineSettings)] == [t.attr for t in tunables.TUNABLES]


def test_each_tunable_is_read_from_its_own_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    values = {"int": "64", "duration": "750ms", "paths": f"{tmp_path / 'a'},{tmp_path / 'b'}"}
    for t in tunables.TUNABLES:
        monkeypatch.setenv(t.env, values[t.spec.kind])
    raw = tunables.from_environment(profile="production", data_dir=tmp_path)
    assert raw == {
        t.key: int(values[t.spec.kind])
        if t.spec.kind == "int"
        else values[t.spec.kind]
        if t.spec.kind == "duration"
        else [str(tmp_path / "a"), str(tmp_path / "b")]
        for t in tunables.TUNABLES
    }


def test_the_environments_defaults_are_the_specs_and_the_dev_profiles(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for t in tunables.TUNABLES:
        monkeypatch.delenv(t.env, raising=False)
    production = tunables.from_environment(profile="production", data_dir=tmp_path)
    dev = tunables.from_environment(profile="dev", data_dir=tmp_path)
    assert (production["snapshot-every"], dev["snapshot-every"]) == (100, 50)
    assert production["file-roots"] == dev["file-roots"] == [str(tmp_path / "files")]
    assert load(production, data_dir=tmp_path) == load({}, data_dir=tmp_path)


# --- the table in docs/configuration.md ---------------------------------------------------------------------


def test_the_table_in_the_docs_is_the_one_the_tunables_generate() -> None:
    documented = tunables.documented_table(tunables.DOCS.read_text())
    assert documented == tunables.markdown_table(), (
        "docs/configuration.md differs from workflow_engine/tunables.py: "
        "run `python -m workflow_engine.tunables --write-docs`"
    )


def test_the_table_check_sees_a_changed_default_and_a_new_tunable(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = tunables.DOCS.read_text()
    edited = doc.replace(
        "| `keep-n-snapshots` | `WORKFLOW_KEEP_N_SNAPSHOTS` | 2 |",
        "| `keep-n-snapshots` | `WORKFLOW_KEEP_N_SNAPSHOTS` | 3 |",
    )
    assert edited != doc
    assert tunables.documented_table(edited) != tunables.markdown_table()
    new = tunables.Tunable("max_widgets", tunables.Spec("int", 7, "Widgets.", low=1, high=9))
    monkeypatch.setattr(tunables, "TUNABLES", (*tunables.TUNABLES, new))
    assert tunables.documented_table(doc) != tunables.markdown_table()
    row = "| `max-widgets` | `WORKFLOW_MAX_WIDGETS` | 7 | 1–9 | Widgets. |"  # noqa: RUF001
    assert row in tunables.with_table(doc)
    assert tunables.documented_table(tunables.with_table(doc)) == tunables.markdown_table()


def test_the_command_prints_the_table() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "workflow_engine.tunables", "--markdown"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == tunables.markdown_table()


def test_a_process_refuses_bad_tunables_and_a_bad_file_root_at_start() -> None:
    env = {**os.environ, "WORKFLOW_LIVENESS_TTL": "1s", "WORKFLOW_FILE_ROOTS": str(ROOT / "apps")}
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "ImproperlyConfigured: WORKFLOW_ENGINE: liveness-ttl must be at least twice" in done.stderr
    assert "file-roots (WORKFLOW_FILE_ROOTS): " in done.stderr and "project's source directory" in done.stderr


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
