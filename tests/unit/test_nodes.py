from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from apps.workflows.engine.dsl import Problems
from apps.workflows.engine.nodetypes.catalogue import catalogue
from apps.workflows.engine.paths import FilePathError, resolve_path
from apps.workflows.nodes import files, sandbox
from apps.workflows.nodes.base import NodeContext, NodeError, NodeImplementation, NodeResult
from apps.workflows.nodes.registry import candidates
from apps.workflows.nodes.sandbox import current_sandbox


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The only directory file nodes may use in these tests (instead of Django's settings)."""
    monkeypatch.setattr(sandbox, "allowed_roots", lambda: [tmp_path])
    return tmp_path


def check(impl: NodeImplementation, config: dict[str, Any]) -> Problems:
    """``config``'s problems, as validation finds them under this process' settings."""
    return impl.node_type.validate(config, current_sandbox())


def node(type_name: str, category: str | None = None) -> NodeImplementation:
    found = [impl for impl in candidates(type_name) if category in (None, impl.category)]
    assert len(found) == 1, found
    return found[0]


def run(
    type_name: str,
    config: dict[str, Any],
    inputs: Sequence[Any] = (),
    *,
    category: str | None = None,
    log: list[str] | None = None,
    attempt: int = 1,
) -> NodeResult:
    impl = node(type_name, category)
    assert check(impl, config) == {}, check(impl, config)
    ctx = NodeContext(
        execution_id="exec-1",
        workflow_id="wf-1",
        node_id="n1",
        attempt=attempt,
        config=config,
        log=(log.append if log is not None else lambda line: None),
    )
    return impl.run(ctx, list(inputs))


def records(type_name: str, config: dict[str, Any], inputs: Sequence[Any] = (), **kw: Any) -> list[Any]:
    return run(type_name, config, inputs, **kw).records


def problems(type_name: str, config: dict[str, Any], category: str | None = None) -> dict[str, list[str]]:
    return check(node(type_name, category), config)


# --- Catalogue -------------------------------------------------------------------------------------------


def test_it_lists_the_original_catalogue_by_category() -> None:
    listed = {category: {entry["type"] for entry in entries} for category, entries in catalogue().items()}
    original = {
        "source": {"file.csv", "file.text", "memory.collection", "random.numbers", "sequence.numbers"},
        "transform": {"batch", "distinct", "filter", "map"},
        "sink": {"aggregate.count", "console.log", "file.text"},
    }
    assert all(original[category] <= listed[category] for category in original), listed


@pytest.mark.parametrize(
    ("type_name", "category", "inline"),
    [
        ("memory.collection", "source", True),
        ("sequence.numbers", "source", True),
        ("random.numbers", "source", True),
        ("file.csv", "source", False),
        ("file.text", "source", False),
        ("filter", "transform", True),
        ("map", "transform", True),
        ("distinct", "transform", True),
        ("batch", "transform", True),
        ("console.log", "sink", True),
        ("file.text", "sink", False),
        ("aggregate.count", "sink", True),
    ],
)
def test_it_runs_inline_only_the_nodes_that_do_no_io(type_name: str, category: str, inline: bool) -> None:
    impl = node(type_name, category)
    assert impl.node_type.inline is inline
    assert impl.node_type.description.endswith(".") and impl.node_type.display_name


# --- Schema problems -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_name", "config", "expected"),
    [
        ("memory.collection", {}, {"data": ["This field is required."]}),
        ("memory.collection", {"data": 5}, {"data": ["Must be an array or a string"]}),
        ("memory.collection", {"data": {"a": 1}}, {"data": ["Must be an array or a string"]}),
        ("batch", {}, {"batchSize": ["This field is required."]}),
        ("batch", {"batchSize": "3"}, {"batchSize": ["Must be an integer, got a string."]}),
        ("batch", {"batchSize": 0}, {"batchSize": ["Must be at least 1."]}),
        ("filter", {"condition": 5}, {"condition": ["Must be a string, got an integer."]}),
        ("sequence.numbers", {"start": 1.5}, {"start": ["Must be an integer, got a number."]}),
        ("sequence.numbers", {"step": 0}, {"step": ["Must not be 0."]}),
        (
            "sequence.numbers",
            {"start": 1, "end": 5, "step": -1},
            {"step": ["Must be positive to count from 1 to 5."]},
        ),
        ("sequence.numbers", {"start": 5, "end": 1}, {"step": ["Must be negative to count from 5 to 1."]}),
        ("random.numbers", {"count": -1}, {"count": ["Must be between 0 and 1000000."]}),
        ("random.numbers", {"min": "abc"}, {"min": ["Must be a number or a numeric string, got a string."]}),
        ("random.numbers", {"min": 10, "max": "5"}, {"min": ["Must not be greater than max (5)."]}),
        ("random.numbers", {"min": 1.2, "max": 1.8}, {"min": ["There is no integer between min and max."]}),
        ("console.log", {"limit": -1}, {"limit": ["Must be at least 0."]}),
        ("console.log", {"limit": True}, {"limit": ["Must be an integer, got a boolean."]}),
        ("map", {}, {"expression": ["Give either expression or fields."]}),
        (
            "map",
            {"expression": "value", "fields": {"a": "1"}},
            {"expression": ["Give either expression or fields."]},
        ),
        ("map", {"fields": []}, {"fields": ["Must be an object, got an array."]}),
        ("map", {"fields": {}}, {"fields": ["Give at least one field."]}),
        (
            "distinct",
            {"key": "a >"},
            {"key": ["unexpected end of expression at position 3; expected a value"]},
        ),
    ],
)
def test_it_reports_config_problems_per_field(
    type_name: str, config: dict[str, Any], expected: dict[str, list[str]]
) -> None:
    assert problems(type_name, config) == expected


def test_it_names_the_position_of_a_filter_condition_that_does_not_parse() -> None:
    assert problems("filter", {"condition": "age > )"}) == {
        "condition": ["unexpected ')' at position 6; expected a value"]
    }


def test_it_names_the_map_field_whose_expression_does_not_parse() -> None:
    found = problems("map", {"fields": {"ok": "age + 1", "bad": "age +", "odd": 5}})
    assert found == {
        "fields": [
            "bad: unexpected end of expression at position 5; expected a value",
            "odd: must be an expression in a string, got a number 5.",
        ]
    }


@pytest.mark.parametrize("expression", ["toUpperCase", "toLowerCase", "trim", "prefix:>> "])
def test_it_accepts_the_original_map_keywords(expression: str) -> None:
    assert problems("map", {"expression": expression}) == {}


# --- Sources ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ([1, "a", {"b": [True, None]}, None], [1, "a", {"b": [True, None]}, None]),
        ("one record", ["one record"]),
        ([], []),
    ],
)
def test_it_emits_memory_data_as_json_values(data: Any, expected: list[Any]) -> None:
    assert records("memory.collection", {"data": data}) == expected


def test_it_does_not_let_records_alias_the_memory_config() -> None:
    config = {"data": [{"a": 1}]}
    records("memory.collection", config)[0]["a"] = 2
    assert config == {"data": [{"a": 1}]}


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"start": 1, "end": 5}, [1, 2, 3, 4, 5]),
        ({"start": 5, "end": 1, "step": -2}, [5, 3, 1]),
        ({"start": 0, "end": 10, "step": 4}, [0, 4, 8]),
        ({"start": 3, "end": 3}, [3]),
        ({}, list(range(1, 101))),
    ],
)
def test_it_counts_a_sequence_from_start_to_end_inclusive(
    config: dict[str, Any], expected: list[int]
) -> None:
    assert records("sequence.numbers", config) == expected


def test_it_draws_random_integers_within_bounds() -> None:
    drawn = records("random.numbers", {"count": 1000, "min": "3", "max": 7.5})
    assert len(drawn) == 1000
    assert set(drawn) == {3, 4, 5, 6, 7}
    assert all(type(n) is int for n in drawn)


def test_it_draws_the_same_numbers_for_the_same_seed_across_attempts() -> None:
    first = records("random.numbers", {"seed": 7}, attempt=1)
    assert first == records("random.numbers", {"seed": 7}, attempt=2)
    assert first != records("random.numbers", {"seed": 8}, attempt=1)


def test_it_draws_the_same_numbers_when_the_same_attempt_runs_again_without_a_seed() -> None:
    first = records("random.numbers", {}, attempt=1)
    assert first == records("random.numbers", {}, attempt=1)
    assert first != records("random.numbers", {}, attempt=2)


def write_csv(path: Path, rows: list[list[Any]], delimiter: str = ",") -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, delimiter=delimiter).writerows(rows)


def test_it_reads_ten_thousand_csv_rows_with_quoted_delimiters_and_newlines(root: Path) -> None:
    rows = [[i, f"name {i}, junior", f'says "hi"\nline two of {i}', i * 0.5] for i in range(10_000)]
    write_csv(root / "big.csv", [["id", "name", "note", "half"], *rows])
    log: list[str] = []
    result = run("file.csv", {"path": "big.csv"}, log=log)
    assert result.records_processed == 10_000
    assert result.records[0] == {
        "id": 0,
        "name": "name 0, junior",
        "note": 'says "hi"\nline two of 0',
        "half": 0.0,
    }
    assert result.records[9_999]["note"] == 'says "hi"\nline two of 9999'
    assert [r["id"] for r in result.records] == list(range(10_000))
    assert log == [f"read 10000 rows from {root / 'big.csv'}"]


def test_it_reads_csv_rows_as_arrays_without_a_header(root: Path) -> None:
    write_csv(root / "plain.csv", [["a", "1"], ["b", "2.5"]], delimiter=";")
    config = {"path": str(root / "plain.csv"), "header": False, "delimiter": ";"}
    assert records("file.csv", config) == [["a", 1], ["b", 2.5]]


@pytest.mark.parametrize(
    ("cell", "inferred"),
    [("42", 42), ("-7", -7), ("4.5", 4.5), ("0.25", 0.25), ("", ""), ("007", "007"), ("1e5", "1e5"),
     ("nan", "nan"), (" 1", " 1"), ("1_000", "1_000"), ("abc", "abc")],
)  # fmt: skip
def test_it_infers_only_plain_numbers_from_csv_text(root: Path, cell: str, inferred: Any) -> None:
    write_csv(root / "one.csv", [["x"], [cell]])
    assert records("file.csv", {"path": "one.csv"}) == [{"x": inferred}]
    assert records("file.csv", {"path": "one.csv", "inferTypes": False}) == [{"x": cell}]


def test_it_skips_empty_csv_lines_unless_told_to_keep_them(root: Path) -> None:
    (root / "gaps.csv").write_text("a,b\n\n1,2\n\n")
    assert records("file.csv", {"path": "gaps.csv"}) == [{"a": 1, "b": 2}]
    kept = records("file.csv", {"path": "gaps.csv", "skipEmptyLines": False})
    assert kept == [{"a": "", "b": ""}, {"a": 1, "b": 2}, {"a": "", "b": ""}]


def test_it_names_the_line_of_a_csv_row_with_the_wrong_number_of_fields(root: Path) -> None:
    (root / "bad.csv").write_text('a,b\n"multi\nline",1\n2,3\n4,5,6\n')
    with pytest.raises(NodeError, match=r"^file\.csv: line 5: expected 2 fields as in the header, got 3$"):
        run("file.csv", {"path": "bad.csv"})


def test_it_names_the_line_of_an_unterminated_quote(root: Path) -> None:
    (root / "open.csv").write_text('a,b\n1,2\n3,"never closed\n')
    with pytest.raises(NodeError, match=r"^file\.csv: line 3: unexpected end of data"):
        run("file.csv", {"path": "open.csv"})


def test_it_fails_without_retry_when_the_csv_file_does_not_exist(root: Path) -> None:
    with pytest.raises(NodeError) as caught:
        run("file.csv", {"path": "missing.csv"})
    assert str(caught.value) == f"file.csv: no such file: {root / 'missing.csv'}"
    assert caught.value.retryable is False


@pytest.mark.parametrize(
    ("config", "field", "message"),
    [
        (
            {"path": "a.csv", "delimiter": ";;"},
            "delimiter",
            "Must be exactly one character, not a line break.",
        ),
        ({"path": "a.csv", "quotechar": ""}, "quotechar", "Must be exactly one character, not a line break."),
        ({"path": "a.csv", "quotechar": ","}, "quotechar", "Must differ from the delimiter."),
        ({"path": "a.csv", "encoding": "klingon"}, "encoding", "Unknown encoding 'klingon'."),
        ({"path": "a.csv", "header": "yes"}, "header", "Must be a boolean, got a string."),
    ],
)
def test_it_checks_csv_options(root: Path, config: dict[str, Any], field: str, message: str) -> None:
    assert problems("file.csv", config) == {field: [message]}


def test_it_reads_a_text_file_one_record_per_line(root: Path) -> None:
    (root / "lines.txt").write_bytes(b"first\r\n\nthird\n")
    assert records("file.text", {"path": "lines.txt"}, category="source") == ["first", "", "third"]
    config = {"path": "lines.txt", "skipEmptyLines": True}
    assert records("file.text", config, category="source") == ["first", "third"]


def test_it_keeps_a_last_line_without_a_newline(root: Path) -> None:
    (root / "tail.txt").write_text("a\nb")
    assert records("file.text", {"path": "tail.txt"}, category="source") == ["a", "b"]


# --- File path policy ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_name", "category"), [("file.csv", "source"), ("file.text", "source"), ("file.text", "sink")]
)
def test_it_rejects_paths_outside_the_allowed_roots_at_definition_time(
    root: Path, type_name: str, category: str
) -> None:
    found = problems(type_name, {"path": "/etc/passwd"}, category)
    assert found == {
        "path": [f"path /etc/passwd is outside the allowed file roots ({root}); set WORKFLOW_FILE_ROOTS"]
    }


@pytest.mark.parametrize("path", ["../escape.txt", "sub/../../escape.txt", "link/secret.txt"])
def test_it_rejects_paths_that_leave_the_roots_through_dots_or_symlinks(root: Path, path: str) -> None:
    (root / "link").symlink_to("/etc")
    with pytest.raises(FilePathError, match="outside the allowed file roots"):
        resolve_path(path, [root], [])


def test_it_resolves_relative_paths_against_the_first_root(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    assert resolve_path("data/x.csv", [first, second], []) == first / "data" / "x.csv"
    assert resolve_path(str(second / "y.csv"), [first, second], []) == second / "y.csv"


def test_it_checks_the_path_again_when_a_file_node_runs(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (root / "a.txt").write_text("x\n")
    impl = node("file.text", "source")
    ctx = NodeContext("e", "w", "n", 1, {"path": str(root / "a.txt")})
    monkeypatch.setattr(sandbox, "allowed_roots", lambda: [root / "elsewhere"])
    with pytest.raises(NodeError, match="outside the allowed file roots") as caught:
        impl.run(ctx, [])
    assert caught.value.retryable is False


# --- Transforms ------------------------------------------------------------------------------------------

PEOPLE = [
    {"name": "Ada", "age": 36, "city": "London", "tags": ["math"], "address": {"zip": "N1"}},
    {"name": "Alan", "age": 41, "city": "Manchester", "tags": ["math", "running"], "address": {"zip": "M1"}},
    {"name": "Grace", "age": 29, "city": "New York", "tags": ["navy"], "address": {"zip": "10001"}},
]


@pytest.mark.parametrize(
    ("condition", "names"),
    [
        ("age > 30", ["Ada", "Alan"]),
        ("age > 30 and city == 'London'", ["Ada"]),
        ("age < 30 or city contains 'chest'", ["Alan", "Grace"]),
        ("not (tags contains 'math')", ["Grace"]),
        ("address.zip startsWith 'N' || address.zip == '10001'", ["Ada", "Grace"]),
        ("name in ['Grace', 'Ada'] && !(age >= 40)", ["Ada", "Grace"]),
        ("len(tags) > 1", ["Alan"]),
        ("false", []),
    ],
)
def test_it_keeps_the_records_whose_condition_is_true(condition: str, names: list[str]) -> None:
    result = run("filter", {"condition": condition}, PEOPLE)
    assert [person["name"] for person in result.records] == names
    assert result.records_processed == 3


@pytest.mark.parametrize(
    ("condition", "kept"),
    [
        ("> 50", ["60", "75,b", 51]),
        ("< 50", ["40", "12,a"]),
        (">= 60", ["60", "75,b"]),
        ("contains ','", ["12,a", "75,b"]),
        ("contains '5'", ["75,b", 51]),
        ("startsWith '6'", ["60"]),
    ],
)
def test_it_filters_with_the_original_products_conditions(condition: str, kept: list[Any]) -> None:
    assert records("filter", {"condition": condition}, ["60", "40", "12,a", "75,b", 51]) == kept


@pytest.mark.parametrize(
    ("condition", "inputs", "message"),
    [
        (
            "age > 30",
            [{"age": 40}, {"name": "x"}],
            'filter: record 1: record {"name":"x"} has no field \'age\'',
        ),
        (
            "age > 30",
            [{"age": "forty"}],
            'filter: record 0: cannot compare a string "forty" with a number 30',
        ),
        ("age", [{"age": 40}], "filter: record 0: the condition gave a number 40, not true or false"),
        ("> 50", ["sixty"], 'filter: record 0: cannot compare a string "sixty"'),
    ],
)
def test_it_fails_without_retry_on_a_record_it_cannot_evaluate(
    condition: str, inputs: list[Any], message: str
) -> None:
    with pytest.raises(NodeError) as caught:
        run("filter", {"condition": condition}, inputs)
    assert str(caught.value).startswith(message)
    assert caught.value.retryable is False


@pytest.mark.parametrize(
    ("expression", "inputs", "expected"),
    [
        ("toUpperCase", ["abc", "Déjà"], ["ABC", "DÉJÀ"]),
        ("toLowerCase", ["ABC"], ["abc"]),
        ("trim", ["  a b  "], ["a b"]),
        ("prefix:id-", ["7", 7, {"a": 1}], ["id-7", "id-7", 'id-{"a":1}']),
        ("prefix:", ["x"], ["x"]),
        ("age * 2", [{"age": 3}], [6]),
        ("upper(name) + '!'", [{"name": "ada"}], ["ADA!"]),
        ("[value, value * value]", [2, 3], [[2, 4], [3, 9]]),
    ],
)
def test_it_maps_records_with_keywords_and_expressions(
    expression: str, inputs: list[Any], expected: list[Any]
) -> None:
    assert records("map", {"expression": expression}, inputs) == expected


def test_it_refuses_string_keywords_on_records_that_are_not_strings() -> None:
    with pytest.raises(
        NodeError, match=r"^map: record 1: toUpperCase needs a string record, got a number 5$"
    ):
        run("map", {"expression": "toUpperCase"}, ["a", 5])


def test_it_sets_fields_from_expressions_and_keeps_the_other_keys() -> None:
    config = {"fields": {"name": "upper(name)", "senior": "age >= 40"}}
    assert records("map", config, PEOPLE[:2])[1] == {**PEOPLE[1], "name": "ALAN", "senior": True}


def test_it_builds_new_objects_from_fields_when_told_not_to_keep() -> None:
    config = {"fields": {"who": "name", "zip": "address.zip"}, "keep": False}
    assert records("map", config, PEOPLE[:1]) == [{"who": "Ada", "zip": "N1"}]


def test_it_evaluates_every_field_against_the_incoming_record() -> None:
    config = {"fields": {"a": "b", "b": "a"}}
    assert records("map", config, [{"a": 1, "b": 2}]) == [{"a": 2, "b": 1}]


def test_it_builds_objects_from_records_that_are_not_objects() -> None:
    assert records("map", {"fields": {"n": "value", "double": "value * 2"}}, [4]) == [{"n": 4, "double": 8}]


def test_it_names_the_record_a_map_expression_fails_on() -> None:
    with pytest.raises(NodeError, match=r"^map: record 2: record 3 has no field 'age'$"):
        run("map", {"expression": "age"}, [{"age": 1}, {"age": 2}, 3])


def test_it_drops_repeated_records_whatever_the_order_of_their_keys() -> None:
    inputs = [{"a": 1, "b": 2}, {"b": 2, "a": 1}, "x", "x", 1, [1], [1], None, None]
    assert records("distinct", {}, inputs) == [{"a": 1, "b": 2}, "x", 1, [1], None]


def test_it_keeps_the_first_record_for_each_distinct_key() -> None:
    kept = records("distinct", {"key": "lower(city)"}, [{"city": "Paris", "n": 1}, {"city": "PARIS", "n": 2}])
    assert kept == [{"city": "Paris", "n": 1}]


def test_it_reports_the_processed_count_of_distinct_as_its_input_count() -> None:
    assert run("distinct", {}, [1, 1, 1]).records_processed == 3


@pytest.mark.parametrize(
    ("size", "inputs", "expected"),
    [
        (3, list(range(1, 8)), [[1, 2, 3], [4, 5, 6], [7]]),
        (2, ["a", "b"], [["a", "b"]]),
        (5, [1], [[1]]),
        (1, [{"a": 1}, 2], [[{"a": 1}], [2]]),
        (4, [], []),
    ],
)
def test_it_groups_consecutive_records_into_batches(
    size: int, inputs: list[Any], expected: list[Any]
) -> None:
    result = run("batch", {"batchSize": size}, inputs)
    assert result.records == expected
    assert result.records_processed == len(inputs)


# --- Sinks -----------------------------------------------------------------------------------------------


def test_it_logs_records_up_to_the_limit_and_counts_the_rest() -> None:
    log: list[str] = []
    result = run("console.log", {"limit": 2}, ["plain", {"a": [1, None]}, 3, 4], log=log)
    assert log == ["plain", '{"a":[1,null]}', "... 2 more records not shown"]
    assert result == NodeResult(records=[], records_processed=4)


@pytest.mark.parametrize(
    ("limit", "count", "lines"),
    [(0, 3, ["... 3 more records not shown"]), (5, 2, ["0", "1"]), (2, 2, ["0", "1"])],
)
def test_it_only_mentions_hidden_records_when_there_are_some(
    limit: int, count: int, lines: list[str]
) -> None:
    log: list[str] = []
    run("console.log", {"limit": limit}, list(map(str, range(count))), log=log)
    assert log == lines


def test_it_logs_a_hundred_records_by_default() -> None:
    log: list[str] = []
    run("console.log", {}, list(range(150)), log=log)
    assert len(log) == 101 and log[-1] == "... 50 more records not shown"


def test_it_writes_one_line_per_record_to_a_text_file(root: Path) -> None:
    log: list[str] = []
    result = run(
        "file.text", {"path": "out/result.txt"}, ["a", 1, {"k": "é"}, None], category="sink", log=log
    )
    target = root / "out" / "result.txt"
    assert target.read_text(encoding="utf-8") == 'a\n1\n{"k":"é"}\nnull\n'
    assert result == NodeResult(records=[], records_processed=4)
    assert log == [f"wrote 4 lines to {target}"]


def test_it_writes_the_same_file_once_when_the_same_attempt_runs_twice(root: Path) -> None:
    for _ in range(2):
        run("file.text", {"path": "twice.txt"}, ["x", "y"], category="sink")
    assert (root / "twice.txt").read_text() == "x\ny\n"
    assert sorted(p.name for p in root.iterdir()) == ["twice.txt"]


def test_it_replaces_the_file_through_a_temporary_file_named_after_the_attempt(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    replaced: list[tuple[str, str, str]] = []
    real_replace = files.os.replace

    def spy(source: str, target: str) -> None:
        replaced.append((Path(source).name, Path(target).name, Path(source).read_text()))
        real_replace(source, target)

    monkeypatch.setattr(files.os, "replace", spy)
    run("file.text", {"path": "spied.txt"}, ["x"], category="sink")
    [(temporary, target, content)] = replaced
    assert temporary.startswith(".spied.txt.exec-1_n1_1.") and temporary.endswith(".tmp")
    assert (target, content) == ("spied.txt", "x\n")


def test_it_leaves_the_previous_file_intact_when_a_write_fails(root: Path) -> None:
    (root / "keep.txt").write_text("old\n")
    with pytest.raises(NodeError, match="cannot be written as ascii") as caught:
        run("file.text", {"path": "keep.txt", "encoding": "ascii"}, ["fine", "café"], category="sink")
    assert caught.value.retryable is False
    assert (root / "keep.txt").read_text() == "old\n"
    assert sorted(p.name for p in root.iterdir()) == ["keep.txt"]


def test_it_counts_its_input_records(root: Path) -> None:
    log: list[str] = []
    result = run("aggregate.count", {}, ["a", "b", {"c": 1}], log=log)
    assert result == NodeResult(records=[3], records_processed=3)
    assert log == ["count: 3"]


def test_it_round_trips_records_through_a_text_file(root: Path) -> None:
    lines = [json.dumps({"n": n}) for n in range(3)]
    run("file.text", {"path": "trip.txt"}, lines, category="sink")
    assert records("file.text", {"path": "trip.txt"}, category="source") == lines
