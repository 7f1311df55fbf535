"""Sandboxes against real servers: ``db.query`` runs one read-only statement on a real PostgreSQL, and a
``sql.query`` over its DuckDB memory cap fails its node on a real worker, which lives on (issue 10)."""

from __future__ import annotations

import uuid
from typing import Any

import psutil
import pytest

from apps.workflows.nodes.base import NodeContext
from apps.workflows.nodes.sql import QueryError
from tests.harness import Api
from tests.integration.test_executions import run, step, workflow
from tests.integration.test_integration_nodes import impl, pg, problems

# --------------------------------------------------------------------------------------------- db.query


@pytest.fixture
def victims(settings: Any, scratch_pg: str) -> str:
    settings.WORKFLOW_CONNECTIONS = {"warehouse": scratch_pg}
    table = f"victims_{uuid.uuid4().hex[:8]}"
    pg(scratch_pg, f"CREATE TABLE {table} (id int PRIMARY KEY)")
    pg(scratch_pg, f"INSERT INTO {table} VALUES (1), (2)")
    return table


def run_unchecked(config: dict[str, Any], category: str = "source", inputs: list[Any] | None = None) -> Any:
    """Runs db.query without validating first, as a definition stored before the rules were would."""
    node = impl("db.query", category)
    ctx = NodeContext("exec-1", "wf", "n", 1, node.with_defaults(config))
    return node.run(ctx, inputs or [])


def rows_of(url: str, table: str) -> list[tuple[Any, ...]]:
    return pg(url, f"SELECT id FROM {table} ORDER BY id")


@pytest.mark.parametrize("category", ["source", "transform"])
def test_db_query_with_two_statements_is_refused_and_the_table_survives(
    victims: str, scratch_pg: str, category: str
) -> None:
    config = {"connection": "warehouse", "sql": f"SELECT 1; DROP TABLE {victims}"}
    assert problems("db.query", category, config) == {
        "sql": ["Give exactly one SQL statement, not 2: db.query only reads; writes go through db.write."]
    }
    with pytest.raises(QueryError, match="exactly one SQL statement") as caught:
        run_unchecked(config, category, [{"x": 1}])
    assert caught.value.retryable is False
    assert rows_of(scratch_pg, victims) == [(1,), (2,)]


@pytest.mark.parametrize(
    "sql",
    [
        "DROP TABLE {t}",
        "DELETE FROM {t}",
        "WITH gone AS (DELETE FROM {t} RETURNING id) SELECT * FROM gone",
        "DO $$ BEGIN EXECUTE 'DROP TABLE {t}'; END $$",
        "SELECT 1 FROM {t} FOR UPDATE",
    ],
)
def test_db_query_runs_in_a_read_only_transaction(victims: str, scratch_pg: str, sql: str) -> None:
    config = {"connection": "warehouse", "sql": sql.format(t=victims)}
    assert problems("db.query", "source", config) == {}  # one statement: only the server can tell
    with pytest.raises(QueryError, match="read-only transaction") as caught:
        run_unchecked(config)
    assert (caught.value.error_type, caught.value.retryable) == ("INVALID_ARGUMENT", False)
    assert rows_of(scratch_pg, victims) == [(1,), (2,)]


def test_a_statement_hidden_from_the_check_is_still_refused_by_the_server(
    victims: str, scratch_pg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Were the statement counter fooled, the extended protocol would still refuse a second statement.
    from apps.workflows.nodes import databases

    monkeypatch.setattr(databases, "statement_count", lambda sql, dialect: 1)
    with pytest.raises(QueryError, match="cannot insert multiple commands"):
        run_unchecked({"connection": "warehouse", "sql": f"SELECT 1; DROP TABLE {victims}"})
    assert rows_of(scratch_pg, victims) == [(1,), (2,)]


def test_db_query_still_reads(victims: str) -> None:
    config = {"connection": "warehouse", "sql": f"SELECT id FROM {victims} WHERE id > ? ORDER BY id;"}
    assert run_unchecked({**config, "parameters": [0]}).records == [{"id": 1}, {"id": 2}]
    assert run_unchecked({"connection": "warehouse", "sql": "SELECT 'a;b' AS t -- ; DROP"}).records == [
        {"t": "a;b"}
    ]


def test_db_write_still_writes(victims: str, scratch_pg: str) -> None:
    node = impl("db.write", "sink")
    config = {"connection": "warehouse", "table": victims, "key": ["id"]}
    node.run(NodeContext("exec-1", "wf", "n", 1, node.with_defaults(config)), [{"id": 3}])
    assert rows_of(scratch_pg, victims) == [(1,), (2,), (3,)]


# --------------------------------------------------------------------------------------------- DuckDB caps

MEMORY_BOMB = "SELECT length(string_agg(repeat('x', 1000000), '')) AS n FROM range(10000)"


def test_a_duckdb_query_over_its_memory_cap_fails_cleanly_in_process() -> None:
    node = impl("sql.query", "transform")
    ctx = NodeContext("exec-1", "wf", "n", 1, node.with_defaults({"sql": MEMORY_BOMB}))
    with pytest.raises(QueryError) as caught:
        node.run(ctx, [])
    error = caught.value
    assert (error.error_type, error.retryable) == ("OUT_OF_MEMORY", False)
    assert "more than the 256 MiB a sql.query may use (WORKFLOW_SQL_MEMORY_LIMIT_MB)" in str(error)


def test_duckdb_settings_cannot_be_raised_by_the_query() -> None:
    node = impl("sql.query", "transform")
    for sql in ("SET memory_limit = '10GB'", "SET threads = 8", "SELECT current_setting('threads') AS t"):
        ctx = NodeContext("exec-1", "wf", "n", 1, node.with_defaults({"sql": sql}))
        try:
            assert node.run(ctx, []).records == [{"t": 1}]
        except QueryError as exc:
            assert "configuration has been locked" in str(exc)


def worker_processes(node: dict[str, Any]) -> list[psutil.Process]:
    return [p for p in node["proc"].descendants() if "worker" in " ".join(p.cmdline())]


def test_a_memory_bomb_on_a_real_worker_fails_its_node_and_the_worker_lives(
    node: dict[str, Any], api: Api, uid: str
) -> None:
    workers = worker_processes(node)
    assert workers, "no Celery worker among the node's processes"
    body = workflow(
        f"bomb-{uid}",
        [
            step("nums", "sequence.numbers", "source", start=1, end=2),
            step("bomb", "sql.query", "transform", sql=MEMORY_BOMB),
            step("count", "aggregate.count", "sink"),
        ],
        [("nums", "bomb"), ("bomb", "count")],
    )
    execution = run(api, body)
    assert execution["status"] == "failed", execution
    [bomb] = [n for n in execution["nodes"] if n["nodeId"] == "bomb"]
    assert "OUT_OF_MEMORY" in str(bomb), bomb
    assert node["proc"].alive()
    assert all(p.is_running() for p in workers)
    # DuckDB stopped at its cap: no worker process grew anywhere near the 10 GB the query asked for.
    assert max(p.memory_info().rss for p in worker_processes(node)) < 1.5 * 1024**3
    after = run(
        api,
        workflow(
            f"after-{uid}",
            [step("s", "sequence.numbers", "source", end=3), step("k", "aggregate.count", "sink")],
            [("s", "k")],
        ),
    )
    assert after["status"] == "completed", after
