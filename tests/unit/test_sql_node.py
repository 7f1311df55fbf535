"""``sql.query`` on DuckDB, and the placeholder rewriting every SQL node shares (``nodes/sql.py``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest
from prometheus_client import REGISTRY

from apps.workflows.engine.sqltext import Bound, Dialect, ParameterError, bind
from apps.workflows.nodes.base import NodeContext
from apps.workflows.nodes.registry import implementation
from apps.workflows.nodes.sql import QueryError
from tests.unit.test_nodes import check

NODE = implementation("transform", "sql.query")
EVIL = "'; DROP TABLE input; --"


def ctx(
    config: Mapping[str, Any],
    by_node: Mapping[str, Sequence[Any]] | None = None,
    log: list[str] | None = None,
    cancelled: Callable[[], bool] = lambda: False,
    node_id: str = "q",
) -> NodeContext:
    return NodeContext(
        execution_id="exec-1",
        workflow_id="wf-1",
        node_id=node_id,
        attempt=1,
        config=config,
        log=log.append if log is not None else lambda line: None,
        inputs_by_node=by_node or {},
        cancelled=cancelled,
    )


def query(config: dict[str, Any], inputs: Sequence[Any] = (), **kw: Any) -> list[Any]:
    assert check(NODE, config) == {}, check(NODE, config)
    return NODE.run(ctx(config, **kw), list(inputs)).records


def failure(config: dict[str, Any], inputs: Sequence[Any] = (), **kw: Any) -> QueryError:
    with pytest.raises(QueryError) as caught:
        NODE.run(ctx(config, **kw), list(inputs))
    return caught.value


# --- placeholders ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "sql", "parameters", "expected"),
    [
        (
            "duckdb",
            "SELECT * FROM t WHERE a = {{a}} AND b = :b",
            {"a": 1, "b": 2},
            Bound("SELECT * FROM t WHERE a = $1 AND b = $2", [1, 2]),
        ),
        ("postgres", "SELECT {{ a }}, {{a}}", {"a": "x"}, Bound("SELECT $1, $2", ["x", "x"])),
        ("duckdb", "SELECT ? + ?", [1, 2], Bound("SELECT $1 + $2", [1, 2])),
        ("mysql", "SELECT ? + :a", [1], Bound("SELECT %s + :a", [1])),
        ("mysql", "SELECT {{a}}", {"a": 1}, Bound("SELECT %s", [1])),
    ],
)
def test_it_rewrites_each_placeholder_form_to_the_drivers_own(
    dialect: Dialect, sql: str, parameters: Any, expected: Bound
) -> None:
    assert bind(sql, parameters, dialect) == expected


@pytest.mark.parametrize(
    ("dialect", "sql", "rewritten"),
    [
        ("duckdb", "SELECT ':a {{a}} ?', :a", "SELECT ':a {{a}} ?', $1"),
        ("duckdb", "SELECT 'it''s :a', :a", "SELECT 'it''s :a', $1"),
        ("duckdb", 'SELECT ":a" FROM t WHERE x = :a', 'SELECT ":a" FROM t WHERE x = $1'),
        ("duckdb", "SELECT :a -- :a {{a}}\n, 1", "SELECT $1 -- :a {{a}}\n, 1"),
        ("duckdb", "SELECT /* :a {{a}} */ :a", "SELECT /* :a {{a}} */ $1"),
        ("postgres", "SELECT /* outer /* :a */ {{a}} */ :a", "SELECT /* outer /* :a */ {{a}} */ $1"),
        ("postgres", "SELECT $$ :a $$, $tag$ {{a}} $tag$, :a", "SELECT $$ :a $$, $tag$ {{a}} $tag$, $1"),
        ("postgres", "SELECT E'it\\'s :a', :a", "SELECT E'it\\'s :a', $1"),
        ("postgres", "SELECT x::int, :a::text FROM t", "SELECT x::int, $1::text FROM t"),
        ("mysql", "SELECT 'it\\'s :a', `:a`, :a # :a", "SELECT 'it\\'s :a', `:a`, %s # :a"),
        ("mysql", "SELECT 1--1, :a -- :a", "SELECT 1--1, %s -- :a"),
        ("mysql", "SELECT :a WHERE n LIKE 'a%'", "SELECT %s WHERE n LIKE 'a%%'"),
    ],
)
def test_it_never_rewrites_inside_literals_identifiers_or_comments(
    dialect: Dialect, sql: str, rewritten: str
) -> None:
    assert bind(sql, {"a": 1}, dialect) == Bound(rewritten, [1])


def test_a_question_mark_is_sql_unless_the_parameters_are_an_array() -> None:
    # PostgreSQL's jsonb "?" operator with named parameters
    assert bind("SELECT doc ? 'k' FROM t WHERE id = :id", {"id": 7}, "postgres").text == (
        "SELECT doc ? 'k' FROM t WHERE id = $1"
    )


def test_a_colon_name_without_a_value_stays_sql() -> None:
    assert bind("SELECT x[a:b], :a", {"a": 1}, "duckdb") == Bound("SELECT x[a:b], $1", [1])


def test_a_placeholder_is_kept_apart_from_a_following_word() -> None:
    assert bind("SELECT {{n}}0", {"n": 1}, "duckdb").text == "SELECT $1 0"


def test_sql_without_placeholders_is_passed_unchanged() -> None:
    assert bind("SELECT '%', $1", None, "mysql") == Bound("SELECT '%', $1", [])


def test_objects_travel_as_json_text_and_arrays_as_arrays() -> None:
    assert bind("SELECT :o, :l", {"o": {"k": 1}, "l": [1, 2]}, "postgres").values == ['{"k":1}', [1, 2]]


@pytest.mark.parametrize(
    ("sql", "parameters", "message"),
    [
        ("SELECT {{x}}", {}, "Missing parameter: x"),
        ("SELECT {{x}}, ?", [1], "Missing parameter: x"),
        ("SELECT ?, ?", [1], "Parameter count mismatch: expected 2, got 1"),
        ("SELECT $1 + :a", {"a": 1}, "instead of $1"),
    ],
)
def test_it_refuses_what_it_cannot_bind(sql: str, parameters: Any, message: str) -> None:
    with pytest.raises(ParameterError, match=message.replace("$", r"\$")):
        bind(sql, parameters, "duckdb")


# --- sql.query -------------------------------------------------------------------------------------------

GROUP_BY = (
    "SELECT region, sum(amount) AS total FROM input WHERE amount >= MIN GROUP BY region ORDER BY region"
)
SALES = [
    {"region": "north", "amount": 10, "item": "a"},
    {"region": "south", "amount": 5, "item": "b"},
    {"region": "north", "amount": 7, "item": "c"},
    {"region": "north", "amount": 1, "item": "d"},
    {"region": "south", "amount": 30, "item": "e"},
]


@pytest.mark.parametrize(
    ("sql", "parameters"),
    [
        (
            GROUP_BY.replace("MIN", "{{min}}"),
            {"min": 5},
        ),
        (
            GROUP_BY.replace("MIN", ":min"),
            {"min": 5},
        ),
        (
            GROUP_BY.replace("MIN", "?"),
            [5],
        ),
    ],
)
def test_it_groups_the_input_records_with_a_bound_parameter(sql: str, parameters: Any) -> None:
    rows = query({"sql": sql, "parameters": parameters}, SALES)
    assert rows == [{"region": "north", "total": 17}, {"region": "south", "total": 35}]


@pytest.mark.parametrize("placeholder", ["{{name}}", ":name"])
def test_a_string_parameter_with_quotes_and_sql_keywords_is_data(placeholder: str) -> None:
    inputs = [{"name": EVIL, "n": 1}, {"name": "bob", "n": 2}]
    sql = f"SELECT n, name FROM input WHERE name = {placeholder}"
    assert query({"sql": sql, "parameters": {"name": EVIL}}, inputs) == [{"n": 1, "name": EVIL}]
    count = query({"sql": "SELECT count(*) AS c FROM input WHERE name <> ?", "parameters": [EVIL]}, inputs)
    assert count == [{"c": 1}]


def test_each_upstream_node_is_also_a_table_named_by_its_id() -> None:
    orders = [{"id": 1, "customer": 10, "total": 5.5}, {"id": 2, "customer": 11, "total": 3}]
    customers = [{"id": 10, "name": "ann"}, {"id": 11, "name": "bo"}]
    sql = (
        "SELECT c.name, o.total, (SELECT count(*) FROM input) AS all_rows FROM orders o "
        'JOIN "customer-list" c ON c.id = o.customer ORDER BY o.id'
    )
    by_node = {"orders": orders, "customer-list": customers}
    rows = query({"sql": sql}, [*orders, *customers], by_node=by_node)
    assert rows == [{"name": "ann", "total": 5.5, "all_rows": 4}, {"name": "bo", "total": 3.0, "all_rows": 4}]


def test_scalar_records_are_a_value_column_and_object_keys_are_unioned() -> None:
    assert query({"sql": "SELECT sum(value) AS s FROM input"}, [1, 2, 3]) == [{"s": 6}]
    rows = query({"sql": "SELECT * FROM input"}, [{"a": 1}, {"b": "x"}, 7])
    assert rows == [
        {"a": 1, "b": None, "value": None},
        {"a": None, "b": "x", "value": None},
        {"a": None, "b": None, "value": 7},
    ]


def test_nested_values_round_trip_as_json_and_can_be_queried() -> None:
    inputs = [{"id": 1, "tags": ["x", "y"], "meta": {"k": "v"}}, {"id": 2, "tags": [], "meta": None}]
    rows = query({"sql": "SELECT id, tags, meta, meta->>'k' AS k FROM input ORDER BY id"}, inputs)
    assert rows == [
        {"id": 1, "tags": ["x", "y"], "meta": {"k": "v"}, "k": "v"},
        {"id": 2, "tags": [], "meta": None, "k": None},
    ]


def test_mixed_types_in_a_column_become_text_and_numbers_widen() -> None:
    rows = query(
        {"sql": "SELECT typeof(a) AS ta, typeof(b) AS tb, a, b FROM input"},
        [{"a": 1, "b": 1}, {"a": "x", "b": 2.5}],
    )
    assert rows == [
        {"ta": "VARCHAR", "tb": "DOUBLE", "a": "1", "b": 1.0},
        {"ta": "VARCHAR", "tb": "DOUBLE", "a": "x", "b": 2.5},
    ]


def test_an_empty_input_is_an_empty_table() -> None:
    assert query({"sql": "SELECT count(*) AS n FROM input"}, []) == [{"n": 0}]


def test_result_values_become_json_friendly() -> None:
    sql = (
        "SELECT 1.50::DECIMAL(10,2) AS d, 3::DECIMAL(10,2) AS whole, DATE '2026-01-02' AS day, "
        "TIMESTAMP '2026-01-02 03:04:05' AS ts, INTERVAL 90 SECOND AS span, 'nan'::DOUBLE AS nan, "
        "[1, 2] AS list, {'k': 1} AS struct, 12345678901234567890::HUGEINT AS huge"
    )
    assert query({"sql": sql}) == [
        {
            "d": 1.5,
            "whole": 3,
            "day": "2026-01-02",
            "ts": "2026-01-02T03:04:05",
            "span": 90.0,
            "nan": None,
            "list": [1, 2],
            "struct": {"k": 1},
            "huge": 12345678901234567890,
        }
    ]


def test_a_slow_query_is_interrupted_at_its_timeout_and_may_be_retried() -> None:
    config = {
        "sql": "SELECT count(*) FROM range(100000000) a, range(100000) b WHERE a.range + b.range < 0",
        "timeout": 0.2,
    }
    started = time.monotonic()
    error = failure(config)
    assert time.monotonic() - started < 1.5
    assert error.error_type == "QUERY_TIMEOUT" and error.retryable and "timeout=0.2s" in str(error)


def test_a_cancelled_attempt_stops_its_query() -> None:
    config = {"sql": "SELECT count(*) FROM range(100000000) a, range(100000) b WHERE a.range + b.range < 0"}
    started = time.monotonic()
    error = failure(config, cancelled=lambda: True)
    assert time.monotonic() - started < 2.5
    assert error.error_type == "QUERY_CANCELLED" and not error.retryable


@pytest.mark.parametrize(
    ("sql", "error_type"),
    [
        ("SELECT nope FROM input", "INVALID_ARGUMENT"),
        ("SELECT * FROM missing_table", "INVALID_ARGUMENT"),
        ("SELECT CAST('x' AS INTEGER)", "DATA_FORMAT_ERROR"),
        ("SELECT * FROM read_csv('/etc/passwd')", "INVALID_ARGUMENT"),
        ("COPY input TO '/tmp/leak.csv'", "INVALID_ARGUMENT"),
        ("INSTALL httpfs", "INVALID_ARGUMENT"),
    ],
)
def test_query_errors_are_classified_and_not_retryable(sql: str, error_type: str) -> None:
    error = failure({"sql": sql}, [{"a": 1}])
    assert (error.error_type, error.retryable) == (error_type, False)


def test_the_query_cannot_turn_file_access_back_on() -> None:
    error = failure({"sql": "SET enable_external_access = true"})
    assert "locked" in str(error) and not error.retryable


def test_more_rows_than_max_rows_fails_the_node() -> None:
    assert len(query({"sql": "SELECT * FROM range(3)", "maxRows": 3})) == 3
    error = failure({"sql": "SELECT * FROM range(4)", "maxRows": 3})
    assert error.error_type == "TOO_MANY_ROWS" and not error.retryable


@pytest.mark.parametrize(
    ("config", "key", "message"),
    [
        ({"sql": "  "}, "sql", "SQL query cannot be empty"),
        ({"sql": "SELEC 1"}, "sql", "syntax error"),
        ({"sql": "SELECT 1; SELECT 2"}, "sql", "exactly one SQL statement"),
        ({"sql": "SELECT {{x}}"}, "parameters", "Missing parameter: x"),
        ({"sql": "SELECT ?", "parameters": [1, 2]}, "parameters", "expected 1, got 2"),
        ({"sql": "SELECT 1", "parameters": "x"}, "parameters", "Must be an object"),
        ({"sql": "SELECT 1", "timeout": "soon"}, "timeout", "positive duration"),
        ({"sql": "SELECT 1", "timeout": 0}, "timeout", "positive duration"),
        ({"sql": "SELECT 1", "maxRows": 0}, "maxRows", "at least 1"),
    ],
)
def test_bad_definitions_are_refused_when_the_workflow_is_defined(
    config: dict[str, Any], key: str, message: str
) -> None:
    problems = check(NODE, config)
    assert key in problems and message in problems[key][0], problems


def test_it_records_the_originals_metrics_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    def total(status: str) -> float:
        return (
            REGISTRY.get_sample_value("datafusion_query_total", {"node_id": "metrics-q", "status": status})
            or 0.0
        )

    lines: list[str] = []
    before_ok, before_errors = total("success"), total("error")
    with caplog.at_level(logging.INFO, logger="DataFusion"):
        query(
            {"sql": "SELECT * FROM input WHERE a > :a", "parameters": {"a": 0}},
            [{"a": 1}],
            node_id="metrics-q",
            log=lines,
        )
        failure({"sql": "SELECT nope FROM input"}, [{"a": 1}], node_id="metrics-q")
    assert (total("success"), total("error")) == (before_ok + 1, before_errors + 1)
    errors = REGISTRY.get_sample_value(
        "datafusion_query_errors_total", {"node_id": "metrics-q", "error_type": "INVALID_ARGUMENT"}
    )
    assert errors and errors >= 1
    events = [
        (record.getMessage(), record.__dict__) for record in caplog.records if record.name == "DataFusion"
    ]
    assert [name for name, _ in events] == ["query_start", "query_complete", "query_start", "query_failed"]
    (_, start), (_, complete), _, (_, failed) = events
    assert start["nodeId"] == "metrics-q" and start["parameters"] == {"a": "0"} and start["batchSize"] == 1
    assert (
        complete["rows"] == 1
        and complete["bytes"] > 0
        and complete["durationMs"] >= 1
        and "throughput" in complete
    )
    assert failed["errorType"] == "INVALID_ARGUMENT" and failed["stackTrace"] and "nope" in failed["error"]
    assert lines and lines[0].startswith("sql.query: 1 rows")
