"""The integration nodes against real servers: db.* on PostgreSQL, mysql.* on MariaDB, http.request on a
local HTTP server, python.call; and one pipeline end to end through a cluster of its own.

Most tests run a node in-process (its class's ``run`` with a ``NodeContext``), with connections and
allow-lists set through Django's settings; the engine's own path from API to worker is covered by
``test_executions.py`` and, for these nodes, by the end-to-end test at the bottom.
"""

from __future__ import annotations

import csv
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pymysql
import pytest

from apps.workflows.errors import InvalidDefinition
from apps.workflows.nodes.base import NodeContext, NodeError, NodeImplementation, NodeResult
from apps.workflows.nodes.registry import candidates
from apps.workflows.nodes.sql import QueryError
from devservices import RedisServer
from tests.conftest import process_env
from tests.harness import Api, Cluster, free_port, migrate_with_token, wait_for
from tests.integration.conftest import HttpServer, create_database, db_url, drop_database
from tests.integration.test_executions import step, workflow
from tests.unit.test_nodes import check

EVIL = "'; DROP TABLE input; --"


def impl(type_name: str, category: str) -> NodeImplementation:
    [found] = [node for node in candidates(type_name) if node.category == category]
    return found


def problems(type_name: str, category: str, config: dict[str, Any]) -> dict[str, list[str]]:
    return check(impl(type_name, category), config)


def run(
    type_name: str,
    category: str,
    config: dict[str, Any],
    inputs: Sequence[Any] = (),
    *,
    execution: str = "exec-1",
    attempt: int = 1,
    log: list[str] | None = None,
) -> NodeResult:
    node = impl(type_name, category)
    assert check(node, config) == {}, check(node, config)
    ctx = NodeContext(
        execution, "wf", "n", attempt, node.with_defaults(config), log.append if log is not None else print
    )
    return node.run(ctx, list(inputs))


def records(type_name: str, category: str, config: dict[str, Any], inputs: Sequence[Any] = ()) -> list[Any]:
    return run(type_name, category, config, inputs).records


def fails(type_name: str, category: str, config: dict[str, Any], inputs: Sequence[Any] = ()) -> NodeError:
    with pytest.raises(NodeError) as caught:
        run(type_name, category, config, inputs)
    return caught.value


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


# --------------------------------------------------------------------------------------------- PostgreSQL


def pg(url: str, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(statement, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


@pytest.fixture
def warehouse(settings: Any, scratch_pg: str) -> str:
    """Connections ``warehouse`` (the scratch database), ``closed`` (nothing listens) and ``shop`` (MySQL)."""
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    settings.WORKFLOW_CONNECTIONS = {"warehouse": scratch_pg, "closed": closed, "shop": "mysql://u@h/db"}
    return scratch_pg


@pytest.fixture
def people(warehouse: str) -> str:
    table = unique("people")
    pg(warehouse, f"CREATE TABLE {table} (id int PRIMARY KEY, name text, score numeric(6,2), born date)")
    pg(
        warehouse,
        f"INSERT INTO {table} VALUES (1, 'ann', 1.5, '2000-01-02'), (2, 'bob', 2, NULL), (3, %s, 3, NULL)",
        [EVIL],
    )
    return table


@pytest.mark.parametrize(
    ("sql", "parameters"),
    [
        ("SELECT id, name FROM {t} WHERE score >= {{{{min}}}} AND name <> 'x:min' ORDER BY id", {"min": 2}),
        ("SELECT id, name FROM {t} WHERE score >= :min::numeric ORDER BY id -- :min", {"min": 2}),
        ("SELECT id, name FROM {t} WHERE score >= ? ORDER BY id", [2]),
    ],
)
def test_db_query_binds_each_placeholder_form(people: str, sql: str, parameters: Any) -> None:
    config = {"connection": "warehouse", "sql": sql.format(t=people), "parameters": parameters}
    assert records("db.query", "source", config) == [{"id": 2, "name": "bob"}, {"id": 3, "name": EVIL}]


def test_db_query_treats_a_string_with_quotes_and_keywords_as_data(people: str, warehouse: str) -> None:
    config = {
        "connection": "warehouse",
        "sql": f"SELECT id FROM {people} WHERE name = :n",
        "parameters": {"n": EVIL},
    }
    assert records("db.query", "source", config) == [{"id": 3}]
    assert pg(warehouse, f"SELECT count(*) FROM {people}") == [(3,)]


def test_db_query_converts_values_and_leaves_percent_signs_alone(people: str) -> None:
    sql = f"SELECT '100%' AS pct, score, born, :k::jsonb AS doc FROM {people} WHERE id = 1"
    config = {"connection": "warehouse", "sql": sql, "parameters": {"k": {"a": [1]}}}
    assert records("db.query", "source", config) == [
        {"pct": "100%", "score": 1.5, "born": "2000-01-02", "doc": {"a": [1]}}
    ]


def test_db_query_as_a_transform_runs_once_per_record_with_its_fields(people: str) -> None:
    config = {"connection": "warehouse", "sql": f"SELECT name FROM {people} WHERE id = {{{{id}}}}"}
    out = run("db.query", "transform", config, [{"id": 2}, {"id": 1}, {"id": 99}])
    assert out.records == [{"name": "bob"}, {"name": "ann"}] and out.records_processed == 3


def test_db_query_times_out_retryably(warehouse: str) -> None:
    started = time.monotonic()
    error = fails(
        "db.query", "source", {"connection": "warehouse", "sql": "SELECT pg_sleep(5)", "timeout": "300ms"}
    )
    assert isinstance(error, QueryError) and error.error_type == "QUERY_TIMEOUT" and error.retryable
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    ("connection", "sql", "error_type", "retryable"),
    [
        ("warehouse", "SELEC 1", "SQL_SYNTAX_ERROR", False),
        ("warehouse", "SELECT * FROM no_such_table", "INVALID_ARGUMENT", False),
        ("warehouse", "SELECT 1/0", "DATA_FORMAT_ERROR", False),
        ("closed", "SELECT 1", "CONNECTION_ERROR", True),
    ],
)
def test_db_query_errors_are_classified(
    warehouse: str, connection: str, sql: str, error_type: str, retryable: bool
) -> None:
    error = fails("db.query", "source", {"connection": connection, "sql": sql})
    assert isinstance(error, QueryError) and (error.error_type, error.retryable) == (error_type, retryable)
    assert "postgresql://" not in str(error)  # never the URL: it may hold a password


def test_db_query_fails_past_max_rows(warehouse: str) -> None:
    config = {"connection": "warehouse", "sql": "SELECT generate_series(1, 5) AS n", "maxRows": 4}
    error = fails("db.query", "source", config)
    assert isinstance(error, QueryError) and error.error_type == "TOO_MANY_ROWS"


@pytest.mark.parametrize(
    ("config", "key", "message"),
    [
        ({"connection": "nope", "sql": "SELECT 1"}, "connection", "known: closed, shop, warehouse"),
        ({"connection": "shop", "sql": "SELECT 1"}, "connection", "is a mysql database, not PostgreSQL"),
        ({"connection": "warehouse", "sql": "SELECT {{x}}"}, "parameters", "Missing parameter: x"),
        (
            {"connection": "warehouse", "sql": "SELECT 1", "password": "pw"},
            "password",
            "WORKFLOW_CONNECTION_",
        ),
        ({"connection": "warehouse", "sql": "SELECT 1", "timeout": "never"}, "timeout", "positive duration"),
    ],
)
def test_db_query_definitions_are_checked(
    warehouse: str, config: dict[str, Any], key: str, message: str
) -> None:
    found = problems("db.query", "source", config)
    assert key in found and message in found[key][0], found


def totals_table(url: str) -> str:
    table = unique("totals")
    pg(url, f"CREATE TABLE {table} (region text PRIMARY KEY, total bigint, extra jsonb)")
    return table


def test_db_write_upserts_on_a_declared_key_so_a_rerun_writes_nothing_twice(warehouse: str) -> None:
    table = totals_table(warehouse)
    config = {"connection": "warehouse", "table": table, "key": ["region"], "batchSize": 2}
    rows = [
        {"region": "n", "total": 1},
        {"region": "s", "total": 2},
        {"region": "e", "total": 3, "extra": {"a": 1}},
    ]
    assert run("db.write", "sink", config, rows).records_processed == 3
    rows[0]["total"] = 10
    rerun = run("db.write", "sink", config, rows, execution="exec-2")
    assert rerun.records == [] and rerun.records_processed == 3
    assert pg(warehouse, f"SELECT region, total, extra FROM {table} ORDER BY region") == [
        ("e", 3, {"a": 1}),
        ("n", 10, None),
        ("s", 2, None),
    ]


def test_db_write_without_a_key_upserts_on_the_idempotency_key_of_the_attempt(warehouse: str) -> None:
    table = unique("events")
    pg(warehouse, f"CREATE TABLE {table} (name text, _idempotency_key text UNIQUE)")
    config = {"connection": "warehouse", "table": table}
    for _ in range(2):  # the same attempt, run twice (at-least-once delivery)
        run("db.write", "sink", config, [{"name": "a"}, {"name": "b"}], execution="exec-9", attempt=2)
    assert pg(warehouse, f"SELECT name, _idempotency_key FROM {table} ORDER BY 2") == [
        ("a", "exec-9:n:2:0"),
        ("b", "exec-9:n:2:1"),
    ]


def test_db_write_is_one_transaction(warehouse: str) -> None:
    table = totals_table(warehouse)
    config = {"connection": "warehouse", "table": table, "mode": "insert", "batchSize": 1}
    rows = [
        {"region": "a", "total": 1},
        {"region": "b", "total": 2},
        {"region": "c", "total": "not a number"},
    ]
    error = fails("db.write", "sink", config, rows)
    assert isinstance(error, QueryError) and not error.retryable
    assert pg(warehouse, f"SELECT count(*) FROM {table}") == [(0,)]


def test_db_write_says_when_the_table_cannot_be_upserted_into(warehouse: str) -> None:
    table = unique("no_index")
    pg(warehouse, f"CREATE TABLE {table} (name text, _idempotency_key text)")
    error = fails("db.write", "sink", {"connection": "warehouse", "table": table}, [{"name": "a"}])
    assert isinstance(error, QueryError) and error.error_type == "INVALID_ARGUMENT" and not error.retryable
    assert "needs a unique index on (_idempotency_key)" in str(error)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [([{"region": "a"}, 5], "record 1 is not a non-empty object"), ([{"total": 1}], "no value for the key")],
)
def test_db_write_refuses_records_it_cannot_key(warehouse: str, inputs: list[Any], message: str) -> None:
    config = {"connection": "warehouse", "table": "t", "key": ["region"]}
    assert message in str(fails("db.write", "sink", config, inputs))


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"table": "a b"}, "table"),
        ({"table": "a.b.c"}, "table"),
        ({"table": "t", "mode": "merge"}, "mode"),
        ({"table": "t", "mode": "insert", "key": ["id"]}, "key"),
        ({"table": "t", "key": []}, "key"),
        ({"table": "t", "idempotencyColumn": "x;y"}, "idempotencyColumn"),
        ({"table": "t", "batchSize": 0}, "batchSize"),
        ({"table": "t", "host": "db.example.com", "username": "u"}, "host"),
    ],
)
def test_db_write_definitions_are_checked(warehouse: str, config: dict[str, Any], key: str) -> None:
    assert key in problems("db.write", "sink", {"connection": "warehouse", **config})


# --------------------------------------------------------------------------------------------- MariaDB


def maria(url: str, statement: str) -> list[tuple[Any, ...]]:
    split = urlsplit(url)
    conn = pymysql.connect(
        host=split.hostname, port=split.port, user="root", database="shop", autocommit=True
    )
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            return list(cur.fetchall())
    finally:
        conn.close()


@pytest.fixture
def shop(settings: Any, mariadb: str) -> str:
    closed = f"mysql://root@127.0.0.1:{free_port()}/shop"
    settings.WORKFLOW_CONNECTIONS = {"shop": mariadb, "closed": closed, "warehouse": "postgresql://h/db"}
    return mariadb


@pytest.fixture
def products(shop: str) -> str:
    table = unique("products")
    maria(
        shop, f"CREATE TABLE {table} (sku varchar(20) PRIMARY KEY, name text, price decimal(8,2), meta json)"
    )
    return table


def test_mysql_write_then_query_round_trips_and_a_rerun_upserts(shop: str, products: str) -> None:
    config = {"connection": "shop", "table": products, "key": ["sku"]}
    rows: list[dict[str, Any]] = [
        {"sku": "a", "name": "Ann's 100% tea", "price": 1.5, "meta": {"t": [1]}},
        {"sku": "b", "name": EVIL},
    ]
    run("mysql.write", "sink", config, rows)
    rows[0]["price"] = 2
    run("mysql.write", "sink", config, rows, execution="exec-2")
    sql = f"SELECT sku, name, price, meta FROM {products} WHERE name = {{{{n}}}} OR sku = 'a' ORDER BY sku"
    assert records(
        "mysql.query", "source", {"connection": "shop", "sql": sql, "parameters": {"n": EVIL}}
    ) == [
        {"sku": "a", "name": "Ann's 100% tea", "price": 2, "meta": '{"t":[1]}'},
        {"sku": "b", "name": EVIL, "price": None, "meta": None},
    ]
    assert maria(shop, f"SELECT count(*) FROM {products}") == [(2,)]


def test_mysql_query_binds_positional_parameters_and_runs_per_record(shop: str, products: str) -> None:
    maria(shop, f"INSERT INTO {products} (sku, name) VALUES ('a', 'apple'), ('b', 'bean')")
    sql = f"SELECT name FROM {products} WHERE sku = ? AND name LIKE 'a%'"
    assert records("mysql.query", "source", {"connection": "shop", "sql": sql, "parameters": ["a"]}) == [
        {"name": "apple"}
    ]
    per_record = {"connection": "shop", "sql": f"SELECT name FROM {products} WHERE sku = :sku"}
    assert records("mysql.query", "transform", per_record, [{"sku": "b"}, {"sku": "a"}]) == [
        {"name": "bean"},
        {"name": "apple"},
    ]


def test_mysql_write_without_a_key_uses_the_idempotency_column(shop: str) -> None:
    table = unique("events")
    maria(shop, f"CREATE TABLE {table} (name text, _idempotency_key varchar(200) UNIQUE)")
    for _ in range(2):
        run("mysql.write", "sink", {"connection": "shop", "table": table}, [{"name": "a"}, {"name": "b"}])
    assert maria(shop, f"SELECT name, _idempotency_key FROM {table} ORDER BY 2") == [
        ("a", "exec-1:n:1:0"),
        ("b", "exec-1:n:1:1"),
    ]


@pytest.mark.parametrize(
    ("connection", "sql", "timeout", "error_type", "retryable"),
    [
        ("shop", "SELEC 1", "30s", "SQL_SYNTAX_ERROR", False),
        ("shop", "SELECT nope FROM dual", "30s", "INVALID_ARGUMENT", False),
        ("shop", "SELECT SLEEP(5)", "300ms", "QUERY_TIMEOUT", True),
        ("closed", "SELECT 1", "30s", "CONNECTION_ERROR", True),
    ],
)
def test_mysql_errors_are_classified(
    shop: str, connection: str, sql: str, timeout: str, error_type: str, retryable: bool
) -> None:
    started = time.monotonic()
    error = fails("mysql.query", "source", {"connection": connection, "sql": sql, "timeout": timeout})
    assert isinstance(error, QueryError) and (error.error_type, error.retryable) == (error_type, retryable)
    assert time.monotonic() - started < 4


def test_mysql_nodes_refuse_credentials_in_the_definition(shop: str) -> None:
    config = {
        "connection": "shop",
        "sql": "SELECT 1",
        "host": "db",
        "port": 3306,
        "username": "u",
        "password": "p",
    }
    found = problems("mysql.query", "source", config)
    assert set(found) == {"host", "port", "username", "password"}
    assert "configure the environment variable WORKFLOW_CONNECTION_<NAME>" in found["password"][0]
    assert (
        "not MySQL/MariaDB"
        in problems("mysql.write", "sink", {"connection": "warehouse", "table": "t"})["connection"][0]
    )


# --------------------------------------------------------------------------------------------- HTTP


@pytest.fixture
def api_host(settings: Any, http_server: HttpServer) -> HttpServer:
    settings.WORKFLOW_HTTP_ALLOWED_HOSTS = [f"127.0.0.1:{http_server.port}", "*.allowed.test"]
    return http_server


def test_http_request_calls_once_per_record_with_templates(api_host: HttpServer) -> None:
    config = {"url": f"{api_host.base}/echo/{{{{name}}}}?q={{{{n}}}}", "headers": {"X-Name": "{{name}}"}}
    out = records("http.request", "transform", config, [{"name": "a b/c", "n": 1}, {"name": "d", "n": 2}])
    assert [r["body"]["path"] for r in out] == ["/echo/a%20b%2Fc?q=1", "/echo/d?q=2"]
    assert out[0]["status"] == 200 and out[0]["headers"]["content-type"] == "application/json"
    assert "set-cookie" not in {k.lower() for k in out[0]["headers"]}
    assert [seen.headers["X-Name"] for seen in api_host.seen] == ["a b/c", "d"]
    assert all("Idempotency-Key" not in seen.headers for seen in api_host.seen)  # GET is safe


def test_unsafe_methods_send_an_idempotency_key_per_record(api_host: HttpServer) -> None:
    config = {"url": f"{api_host.base}/echo", "method": "POST"}
    run("http.request", "transform", config, [{"a": 1}, {"a": 2}], execution="exec-7", attempt=3)
    assert [seen.headers["Idempotency-Key"] for seen in api_host.seen] == ["exec-7:n:3:0", "exec-7:n:3:1"]
    assert [seen.body for seen in api_host.seen] == [b'{"a":1}', b'{"a":2}']  # the record, as JSON


def test_body_templates_fill_text_and_json(api_host: HttpServer) -> None:
    text = {"url": f"{api_host.base}/echo", "method": "PUT", "body": "hello {{name}}"}
    json_body = {
        "url": f"{api_host.base}/echo",
        "method": "PATCH",
        "body": {"who": "{{name}}", "tags": "{{tags}}"},
    }
    records("http.request", "transform", text, [{"name": "ann"}])
    records("http.request", "transform", json_body, [{"name": "ann", "tags": ["x"]}])
    assert [seen.body for seen in api_host.seen] == [b"hello ann", b'{"who":"ann","tags":["x"]}']
    assert api_host.seen[1].headers["Content-Type"] == "application/json"


def test_one_request_for_all_records_and_text_bodies(api_host: HttpServer) -> None:
    config = {"url": f"{api_host.base}/echo", "method": "POST", "perRecord": False}
    [response] = records("http.request", "transform", config, [1, 2])
    assert (
        response["body"]["body"] == "[1,2]" and api_host.seen[0].headers["Idempotency-Key"] == "exec-1:n:1:0"
    )
    [text] = records("http.request", "source", {"url": f"{api_host.base}/text"})
    assert text["body"] == "plain text ✓"


@pytest.mark.parametrize(
    ("path", "expect", "retryable"),
    [
        ("/status/500", None, True),
        ("/status/503", None, True),
        ("/status/429", None, True),
        ("/status/404", None, False),
    ],
)
def test_unexpected_statuses_fail_retryably_only_when_the_server_may_recover(
    api_host: HttpServer, path: str, expect: Any, retryable: bool
) -> None:
    error = fails("http.request", "source", {"url": api_host.base + path})
    assert error.retryable is retryable and f"answered {path.rsplit('/', 1)[1]}" in str(error)


def test_expected_statuses_are_configurable(api_host: HttpServer) -> None:
    [response] = records(
        "http.request", "source", {"url": f"{api_host.base}/status/404", "expectStatus": [404, "2xx"]}
    )
    assert response["status"] == 404 and response["body"] == {"error": "as asked"}


def test_timeouts_and_refused_connections_are_retryable(api_host: HttpServer, settings: Any) -> None:
    started = time.monotonic()
    error = fails("http.request", "source", {"url": f"{api_host.base}/slow", "timeout": "300ms"})
    assert error.retryable and "timed out" in str(error) and time.monotonic() - started < 1.5
    closed = free_port()
    settings.WORKFLOW_HTTP_ALLOWED_HOSTS = [f"127.0.0.1:{closed}"]
    assert fails("http.request", "source", {"url": f"http://127.0.0.1:{closed}/"}).retryable


def test_redirects_are_followed_only_to_allowed_hosts(api_host: HttpServer) -> None:
    inside = f"{api_host.base}/redirect?to={api_host.base}/echo/landed"
    [response] = records("http.request", "source", {"url": inside})
    assert response["body"]["path"] == "/echo/landed"
    outside = f"{api_host.base}/redirect?to=http://example.com/"
    error = fails("http.request", "source", {"url": outside})
    assert "refused a redirect to example.com" in str(error) and not error.retryable


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://example.com/x", "Host example.com is not allowed"),
        ("http://127.0.0.1:1/x", "Host 127.0.0.1:1 is not allowed"),
        ("http://{{host}}/x", "not the host"),
        ("ftp://api.allowed.test/x", "http:// or https://"),
        ("http://allowed.test/", "Host allowed.test is not allowed"),
    ],
)
def test_hosts_outside_the_allow_list_are_refused_at_validation(
    api_host: HttpServer, url: str, message: str
) -> None:
    found = problems("http.request", "source", {"url": url})
    assert message in found["url"][0], found
    assert problems("http.request", "source", {"url": "https://api.allowed.test/{{x}}"}) == {}


@pytest.mark.django_db
def test_a_workflow_calling_a_host_outside_the_allow_list_is_a_400(api_host: HttpServer) -> None:
    from apps.workflows.services import definitions

    body = workflow(
        unique("http"),
        [
            step("src", "memory.collection", "source", data=[1]),
            step("call", "http.request", "transform", url="https://evil.example.org/steal"),
            step("out", "console.log", "sink"),
        ],
        [("src", "call"), ("call", "out")],
    )
    with pytest.raises(InvalidDefinition) as caught:
        definitions.create(body)
    assert caught.value.status == 400
    assert "evil.example.org is not allowed" in caught.value.details["nodes[1].config.url"][0]


# --------------------------------------------------------------------------------------------- python.call

CALLABLES = __name__


def double_all(records: list[Any], factor: int = 2) -> list[Any]:
    return [record * factor for record in records]


def explode(record: Any, ctx: NodeContext) -> Any:
    """Per record: a list gives several records, None none; ``ctx`` is passed because it is declared."""
    if record == 0:
        return None
    return [f"{ctx.idempotency_key}:{record}"] * record


def total(records: list[Any]) -> int:
    return sum(records)


class Flaky(Exception):
    retryable = True


def flaky(records: list[Any]) -> None:
    raise Flaky("try again")


def broken(records: list[Any]) -> None:
    raise ValueError("bad input")


def not_json(records: list[Any]) -> object:
    return object()


@pytest.fixture
def registered(settings: Any) -> None:
    names = ("double_all", "explode", "total", "flaky", "broken", "not_json")
    settings.WORKFLOW_PYTHON_CALLABLES = [f"{CALLABLES}.{name}" for name in names]


def test_python_call_passes_the_records_and_kwargs(registered: None) -> None:
    config = {"callable": f"{CALLABLES}.double_all", "kwargs": {"factor": 3}}
    assert records("python.call", "transform", config, [1, 2]) == [3, 6]
    assert records("python.call", "sink", {"callable": f"{CALLABLES}.total"}, [1, 2, 3]) == [6]


def test_python_call_per_record_concatenates_the_results(registered: None) -> None:
    config = {"callable": f"{CALLABLES}.explode", "perRecord": True}
    assert records("python.call", "transform", config, [2, 0, 1]) == ["exec-1:n:1:2"] * 2 + ["exec-1:n:1:1"]


@pytest.mark.parametrize(
    ("name", "retryable", "message"),
    [
        ("flaky", True, "Flaky: try again"),
        ("broken", False, "ValueError: bad input"),
        ("not_json", False, "not JSON"),
    ],
)
def test_python_call_failures(registered: None, name: str, retryable: bool, message: str) -> None:
    error = fails("python.call", "transform", {"callable": f"{CALLABLES}.{name}"}, [1])
    assert error.retryable is retryable and message in str(error)


def test_python_call_refuses_callables_that_are_not_registered(registered: None) -> None:
    found = problems("python.call", "transform", {"callable": "os.system"})
    assert "'os.system' is not a registered callable" in found["callable"][0]
    assert f"{CALLABLES}.double_all" in found["callable"][0]


# --------------------------------------------------------------------------------------------- end to end


@pytest.fixture
def own_cluster(tmp_path: Path, scratch_pg: str) -> Iterator[tuple[Api, Cluster]]:
    """gateway + coordinator + worker (``run_node``) on a fresh engine database and a Redis of their own,
    with the ``warehouse`` connection in their environment."""
    from django.conf import settings

    name = create_database("wfe_nodes_e2e")
    engine_url, token = db_url(settings.DATABASE_URL, name), uuid.uuid4().hex
    redis = RedisServer(tmp_path / "redis", free_port())
    redis.start()
    cluster: Cluster | None = None
    try:
        migrate_with_token(engine_url, token, "nodes")
        env = process_env(tmp_path)
        env.update(DATABASE_URL=engine_url, REDIS_URL=redis.url(), WORKFLOW_CONNECTION_WAREHOUSE=scratch_pg)
        cluster = Cluster(tmp_path, env)
        http = free_port()
        cluster.start_node(http, free_port())
        api = Api(f"http://127.0.0.1:{http}", token)
        wait_for("the gateway", lambda: api.get("/health/ready")[0] == 200, timeout=90)
        owned = "SELECT count(*) FROM cluster_shardlease WHERE owner IS NOT NULL"
        wait_for("a worker to own shards", lambda: pg(engine_url, owned)[0][0] > 0, timeout=90)
        yield api, cluster
    except BaseException:
        if cluster is not None:
            print(cluster.logs())
        raise
    finally:
        if cluster is not None:
            cluster.stop()
        redis.stop()
        drop_database(name)


def test_csv_to_sql_group_by_to_db_write_gives_exactly_the_rows_and_a_rerun_adds_none(
    own_cluster: tuple[Api, Cluster], scratch_pg: str, tmp_path: Path
) -> None:
    api, cluster = own_cluster
    source, table = tmp_path / "sales.csv", unique("region_totals")
    with source.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["region", "amount"])
        writer.writerows([("north", 10), ("south", 3), ("north", 7), ("west", 4), ("south", 30), ("west", 5)])
    pg(
        scratch_pg,
        f"CREATE TABLE {table} (region text PRIMARY KEY, total bigint NOT NULL, n bigint NOT NULL)",
    )
    sql = (
        "SELECT region, sum(amount) AS total, count(*) AS n FROM input "
        "WHERE amount >= {{min}} GROUP BY region"
    )
    body = workflow(
        unique("sales"),
        [
            step("read", "file.csv", "source", path=str(source)),
            step("totals", "sql.query", "transform", sql=sql, parameters={"min": 5}),
            step("save", "db.write", "sink", connection="warehouse", table=table, key=["region"]),
        ],
        [("read", "totals"), ("totals", "save")],
    )
    assert api.post("/api/v1/workflows", body)[0] == 201
    expected = [("north", 17, 2), ("south", 30, 1), ("west", 5, 1)]
    for _ in range(2):  # the second execution is a rerun: same version, new execution, new idempotency keys
        status, started = api.post(f"/api/v1/workflows/{body['id']}/execute")
        assert status == 200, started
        execution = api.wait_finished(started["executionId"], timeout=90)
        assert execution["status"] == "completed", (execution, cluster.logs())
        assert pg(scratch_pg, f"SELECT region, total, n FROM {table} ORDER BY region") == expected
    nodes = {n["nodeId"]: n["recordsProcessed"] for n in execution["nodes"]}
    assert nodes == {"read": 6, "totals": 6, "save": 3}
