"""File nodes stay inside their roots and away from the engine's own files; encodings are text codecs only;
expressions and durations have named limits (issue 10: sandboxes and clean errors)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.workflows.engine import dsl
from apps.workflows.engine.expressions import EvaluationError, ExpressionError, evaluate, parse
from apps.workflows.engine.validation import DefinitionInvalid, validate
from apps.workflows.nodes import sandbox
from apps.workflows.nodes.base import NodeContext, NodeError, NodeImplementation
from apps.workflows.nodes.registry import candidates
from apps.workflows.nodes.sandbox import current_sandbox
from tests.unit.test_nodes import check
from workflow_engine.tunables import load

ROOT = Path(__file__).resolve().parent.parent.parent


def impl(type_name: str, category: str) -> NodeImplementation:
    [found] = [node for node in candidates(type_name) if node.category == category]
    return found


def run(type_name: str, category: str, config: dict[str, Any], inputs: list[Any] | None = None) -> list[Any]:
    node = impl(type_name, category)
    ctx = NodeContext("e", "w", "n", 1, node.with_defaults(config))
    return node.run(ctx, inputs or []).records


@pytest.fixture
def data_dir(tmp_path: Path, settings: Any) -> Path:
    """A data directory like ./run's, with the admin password and an embedded server's files."""
    data = tmp_path / "data"
    (data / "dev" / "postgres").mkdir(parents=True)
    (data / "dev" / "postgres" / "pg_hba.conf").write_text("host all all 0.0.0.0/0 trust\n")
    (data / "admin-password").write_text("s3cret-admin\n")
    (data / "files").mkdir()
    settings.DATA_DIR = data
    return data


@pytest.fixture
def old_dev_roots(tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The roots the development profile had: <data dir>/files and a shared folder holding the data dir (as
    /tmp held it when the data directory was under /tmp)."""
    monkeypatch.setattr(sandbox, "allowed_roots", lambda: [data_dir / "files", tmp_path])
    return tmp_path


# --- file roots ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["dev", "test", "production"])
def test_no_profile_has_a_shared_folder_among_its_default_file_roots(profile: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "WORKFLOW_FILE_ROOTS"}
    env.update(WORKFLOW_PROFILE=profile, WORKFLOW_DATA_DIR=str(tmp_path), SECRET_KEY="k" * 50)
    code = "from django.conf import settings; print(settings.WORKFLOW_ENGINE['file-roots'])"
    done = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        env={**env, "DJANGO_SETTINGS_MODULE": "workflow_engine.settings"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == repr([str(tmp_path / "files")])


@pytest.mark.parametrize(
    ("root", "fragment"),
    [
        (lambda tmp, data: tmp, r"contains .*data/dev, the engine's data directory"),
        (lambda tmp, data: data, r"contains .*data/dev, the engine's data directory"),
        (lambda tmp, data: data / "dev" / "postgres", r"is inside .*data/dev"),
        (lambda tmp, data: Path(sys.prefix), r"is inside .*, the Python environment"),
        (lambda tmp, data: Path(sysconfig.get_paths()["purelib"]), r"the Python environment"),
        (lambda tmp, data: Path("/"), r"contains"),
        (lambda tmp, data: ROOT, r"the project's source directory|the Python environment"),
        (lambda tmp, data: ROOT / "apps", r"is inside .*, the project's source directory"),
    ],
)
def test_a_file_root_holding_the_engines_own_files_is_refused_at_start(
    data_dir: Path, tmp_path: Path, root: Any, fragment: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match="WORKFLOW_FILE_ROOTS") as caught:
        load({"file-roots": [str(root(tmp_path, data_dir))]})
    assert caught.match(fragment)


def test_a_secret_file_is_never_inside_a_root(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "shared" / "db-url"
    secret.parent.mkdir()
    secret.write_text("postgresql://u:p@h/db\n")
    monkeypatch.setenv("WORKFLOW_CONNECTION_WAREHOUSE_FILE", str(secret))
    with pytest.raises(ImproperlyConfigured, match=r"WORKFLOW_CONNECTION_WAREHOUSE_FILE"):
        load({"file-roots": [str(tmp_path / "shared")]})


def test_the_data_directorys_files_folder_is_a_valid_root_even_inside_the_project(settings: Any) -> None:
    settings.DATA_DIR = ROOT / ".data"
    loaded = load({"file-roots": [str(ROOT / ".data" / "files")]})
    assert loaded.file_roots == [(ROOT / ".data" / "files").resolve()]


@pytest.mark.parametrize(
    "path",
    [
        lambda data: str(data / "admin-password"),
        lambda data: "../admin-password",  # relative: from the first root, <data>/files
        lambda data: str(data / "dev" / "postgres" / "pg_hba.conf"),
        lambda data: "../dev/postgres/pg_hba.conf",
    ],
)
def test_a_text_source_cannot_read_the_engines_own_files(
    old_dev_roots: Path, data_dir: Path, path: Any
) -> None:
    config = {"path": path(data_dir)}
    found = check(impl("file.text", "source"), config)
    assert list(found) == ["path"] and "the engine's data directory" in found["path"][0], found
    with pytest.raises(NodeError, match="inside the engine's data directory, which file nodes may never use"):
        run("file.text", "source", config)


def test_a_text_sink_cannot_write_a_pth_file_into_the_virtual_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = Path(sysconfig.get_paths()["purelib"]) / "evil_from_test_sandboxes.pth"
    monkeypatch.setattr(sandbox, "allowed_roots", lambda: [Path("/")])
    config = {"path": str(target)}
    try:
        found = check(impl("file.text", "sink"), config)
        assert "the Python environment" in found["path"][0], found
        with pytest.raises(NodeError, match="inside the Python environment"):
            run("file.text", "sink", config, ["# harmless: a comment line in a .pth file"])
        assert not target.exists()
    finally:
        target.unlink(missing_ok=True)


@pytest.mark.parametrize("path", ["../../x.txt", "sub/../../../x.txt", "../files/../../x.txt"])
def test_relative_paths_cannot_climb_out_of_the_first_root(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    monkeypatch.setattr(sandbox, "allowed_roots", lambda: [data_dir / "files"])
    assert "outside the allowed file roots" in check(impl("file.text", "sink"), {"path": path})["path"][0]
    with pytest.raises(NodeError, match="outside the allowed file roots"):
        run("file.text", "sink", {"path": path}, ["x"])


def test_a_link_inside_a_root_that_points_outside_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    (root / "innocent.txt").symlink_to(outside / "secret.txt")
    (root / "dir").symlink_to(outside)
    monkeypatch.setattr(sandbox, "allowed_roots", lambda: [root])
    for path, category in [("innocent.txt", "source"), ("dir/secret.txt", "source"), ("dir/new.txt", "sink")]:
        with pytest.raises(NodeError, match="outside the allowed file roots"):
            run("file.text", category, {"path": path}, ["x"])
    assert (outside / "secret.txt").read_text() == "secret\n"
    assert not (outside / "new.txt").exists()


def test_a_sink_never_writes_through_a_link_even_to_a_file_inside_the_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "real.txt").write_text("kept\n")
    (tmp_path / "alias.txt").symlink_to(tmp_path / "real.txt")
    monkeypatch.setattr(sandbox, "allowed_roots", lambda: [tmp_path])
    found = check(impl("file.text", "sink"), {"path": "alias.txt"})
    assert found == {
        "path": ["path alias.txt is a symbolic link; a sink writes only to a file, not through a link"]
    }
    with pytest.raises(NodeError, match="symbolic link"):
        run("file.text", "sink", {"path": "alias.txt"}, ["overwritten"])
    assert (tmp_path / "real.txt").read_text() == "kept\n"
    assert (tmp_path / "alias.txt").is_symlink()


def test_reads_and_writes_inside_a_root_still_work(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "allowed_roots", lambda: [data_dir / "files"])
    run("file.text", "sink", {"path": "out/lines.txt"}, ["a", {"b": 1}])
    assert (data_dir / "files" / "out" / "lines.txt").read_text() == 'a\n{"b":1}\n'
    assert run("file.text", "source", {"path": str(data_dir / "files" / "out" / "lines.txt")}) == [
        "a",
        '{"b":1}',
    ]


@pytest.mark.parametrize("path", ["a\x00b.txt", "."])
def test_odd_paths_are_clean_validation_problems(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    monkeypatch.setattr(sandbox, "allowed_roots", lambda: [data_dir / "files"])
    assert list(check(impl("file.text", "sink"), {"path": path})) == ["path"]


# --- encodings -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encoding", ["zlib_codec", "base64_codec", "rot13", "hex_codec", "uu_codec", "bz2_codec", "quopri_codec"]
)
@pytest.mark.parametrize(
    ("type_name", "category"), [("file.csv", "source"), ("file.text", "source"), ("file.text", "sink")]
)
def test_an_encoding_that_is_not_a_text_codec_is_refused_at_validation(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, encoding: str, type_name: str, category: str
) -> None:
    monkeypatch.setattr(sandbox, "allowed_roots", lambda: [data_dir / "files"])
    found = check(impl(type_name, category), {"path": "x.txt", "encoding": encoding})
    assert found == {
        "encoding": [f"{encoding!r} is not a text encoding; use one such as utf-8, latin-1 or cp1252."]
    }


@pytest.mark.parametrize("encoding", ["utf\x00", "no-such-codec"])
def test_an_unknown_encoding_is_a_clean_problem(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, encoding: str
) -> None:
    monkeypatch.setattr(sandbox, "allowed_roots", lambda: [data_dir / "files"])
    assert list(check(impl("file.text", "source"), {"path": "x.txt", "encoding": encoding})) == ["encoding"]


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1", "cp1252", "utf-16"])
def test_text_encodings_are_accepted(data_dir: Path, monkeypatch: pytest.MonkeyPatch, encoding: str) -> None:
    monkeypatch.setattr(sandbox, "allowed_roots", lambda: [data_dir / "files"])
    assert check(impl("file.text", "source"), {"path": "x.txt", "encoding": encoding}) == {}


# --- expression limits -----------------------------------------------------------------------------------

BIG = 10**300


@pytest.mark.parametrize(
    ("expression", "record", "message"),
    [
        ("round(x, 1000000000)", {"x": 1.5}, "round(): ndigits must be between -100 and 100, got 1000000000"),
        (
            "round(x, -1000000000)",
            {"x": 1.5},
            "round(): ndigits must be between -100 and 100, got -1000000000",
        ),
        ("round(value, -100)", int("9" * 4300), "round(): the result has more than 4300 digits"),
        ("int(value)", "7" * 5000, "int(): at most 4300 digits, got 5000"),
        ("int(value)", "0" * 4300 + "7", "int(): at most 4300 digits, got 4301"),
        (
            " * ".join(["value"] * 15),
            BIG,
            "'*': the result has more than 4300 digits",
        ),
        ("value * value / 3", BIG, "'/' overflowed"),
        ("value * value + 0.5", BIG, "'+' overflowed"),
        ("float(value * value)", BIG, "float(): a number 1000000000"),
        (
            "value + value",
            "x" * 6_000_000,
            "'+': the text would have 12000000 characters, more than 10000000",
        ),
        ("concat(value, value)", "x" * 6_000_000, "concat(): the text would have 12000000 characters"),
        (
            "concat(value, value)",
            [0] * 600_000,
            "concat(): the array would have 1200000 items, more than 1000000",
        ),
    ],
)
def test_expressions_past_their_limits_fail_with_a_named_error(
    expression: str, record: Any, message: str
) -> None:
    with pytest.raises(EvaluationError) as caught:
        evaluate(parse(expression), record)
    assert str(caught.value).startswith(message), str(caught.value)


def test_a_map_past_an_expression_limit_fails_its_node_naming_the_record() -> None:
    with pytest.raises(NodeError, match=r"^map: record 1: round\(\): ndigits must be between -100 and 100"):
        run("map", "transform", {"expression": "round(1.5, digits)"}, [{"digits": 1}, {"digits": 10**9}])


@pytest.mark.parametrize(
    "text",
    [
        "1" + " + 1" * 30_000,
        "1" + " + 1" * 3000,
        "(" * 1000 + "1" + ")" * 1000,
        "-" * 500 + "1",
        "not " * 500 + "true",
    ],
)
def test_long_and_deep_expressions_are_refused_when_parsed(text: str) -> None:
    with pytest.raises(ExpressionError, match=r"too long|too deeply nested|too many nested"):
        parse(text)


@pytest.mark.parametrize(
    ("expression", "record", "result"),
    [
        ("round(2.345, 2)", None, 2.35),
        ("round(1234, -2)", None, 1200),
        ("int(value)", "9" * 4300, int("9" * 4300)),
    ],
)
def test_within_the_limits_expressions_still_compute(expression: str, record: Any, result: Any) -> None:
    assert evaluate(parse(expression), record) == result


# --- durations -------------------------------------------------------------------------------------------


def definition(node_extra: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    nodes = [
        {"id": "s", "nodeType": "sequence.numbers", "config": {}},
        {"id": "k", "nodeType": "console.log", "config": {}, **(node_extra or {})},
    ]
    return {
        "id": "w",
        "name": "w",
        "nodes": nodes,
        "edges": [{"id": "e", "source": "s", "target": "k"}],
        **top,
    }


def problems_of(body: dict[str, Any]) -> dict[str, list[str]]:
    with pytest.raises(DefinitionInvalid) as caught:
        validate(body, current_sandbox())
    return caught.value.problems


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (definition({"timeout": "100d"}), "nodes[1].timeout"),
        (definition({"timeout": 1e300}), "nodes[1].timeout"),
        (definition(settings={"timeout": "100d"}), "settings.timeout"),
        (definition({"retry": {"maxAttempts": 3, "maxInterval": "100d"}}), "nodes[1].retry.maxInterval"),
    ],
)
def test_a_duration_past_its_maximum_is_refused_naming_the_field_and_the_maximum(
    body: dict[str, Any], field: str
) -> None:
    found = problems_of(body)
    assert field in found, found
    assert found[field] == [f"Must be at most 30d; got {dsl_value(body, field)!r}."]


def dsl_value(body: dict[str, Any], field: str) -> Any:
    if field.startswith("settings"):
        return body["settings"]["timeout"]
    node = body["nodes"][1]
    return node["retry"]["maxInterval"] if "retry" in field else node["timeout"]


@pytest.mark.parametrize(
    ("type_name", "category", "config", "key", "maximum"),
    [
        ("delay", "transform", {"duration": "100d"}, "duration", "30d"),
        ("wait.signal", "transform", {"name": "go", "timeout": "100d"}, "timeout", "30d"),
        ("approval", "transform", {"timeout": "100d"}, "timeout", "30d"),
        ("sql.query", "transform", {"sql": "SELECT 1", "timeout": "2h"}, "timeout", "1h"),
    ],
)
def test_node_durations_have_a_maximum(
    type_name: str, category: str, config: dict[str, Any], key: str, maximum: str
) -> None:
    found = check(impl(type_name, category), config)
    assert found == {key: [f"Must be at most {maximum}; got {config[key]!r}."]}


def test_durations_within_the_maximum_are_accepted() -> None:
    assert validate(definition({"timeout": "30d"}, settings={"timeout": "7d"}), current_sandbox())
    assert check(impl("sql.query", "transform"), {"sql": "SELECT 1", "timeout": "1h"}) == {}
    assert dsl.parse(definition({"timeout": "1h"}))[0] is not None
