"""``sql.query``: SQL over upstream records on DuckDB, and what every SQL node shares when it runs.

DuckDB replaces the original's DataFusion service (origin-product.md §9): each run opens a fresh in-memory
database, loads the upstream records as tables (``input``: all of them, concatenated; and one table per
upstream node, named by its id) and runs the query. The database cannot read or write files, install or
load extensions, or change that configuration, because the SQL comes from an API client.

The description and the config checks are pure (``engine/nodetypes/sql.py``), and so is the SQL text
(``engine/sqltext.py``: binding, statement counting); ``duckdb_statement_problem`` is the parser validation is
given through the sandbox. Shared with ``databases.py``:

- ``QueryError``: failures classified as the original's taxonomy (``errorType``, retryable or not).
- ``json_value`` for result values, ``fetch_limited``.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import logging
import math
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Histogram

from apps.workflows.engine.nodetypes import sql
from apps.workflows.engine.nodetypes.sql import timeout_seconds
from apps.workflows.engine.sqltext import ParameterError, bind
from apps.workflows.nodes.base import NodeContext, NodeError, NodeImplementation, NodeResult, implements
from workflow_engine.tunables import engine_settings

if TYPE_CHECKING:  # imported lazily at run time: a gateway that never runs SQL need not load DuckDB
    import duckdb

# --------------------------------------------------------------------------------------------- errors


class QueryError(NodeError):
    """A query that failed, with the original's ``errorType`` (origin-product.md §9.3) and retryability."""

    def __init__(self, node: str, error_type: str, detail: str, *, retryable: bool) -> None:
        super().__init__(f"{node}: {error_type}: {detail}", retryable=retryable)
        self.node, self.error_type, self.detail = node, error_type, detail


def fetch_limited(
    fetchmany: Callable[[int], Sequence[Any]],
    fetchall: Callable[[], Sequence[Any]],
    limit: int | None,
    node: str,
) -> list[Any]:
    """All rows, or a ``QueryError`` past ``limit`` rows (the node fails rather than truncate silently)."""
    if limit is None:
        return list(fetchall())
    rows = list(fetchmany(limit + 1))
    if len(rows) > limit:
        raise QueryError(
            node, "TOO_MANY_ROWS", f"the query returned more than maxRows={limit} rows", retryable=False
        )
    return rows


# --------------------------------------------------------------------------------------------- values


def json_value(value: Any) -> Any:
    """A database value as JSON: decimals as numbers, times as ISO 8601 text, bytes as base64."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None  # JSON has no NaN or infinity
    if isinstance(value, decimal.Decimal):
        return _decimal(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_value(v) for v in value]
    return str(value)  # UUIDs, network addresses, ranges...


def _decimal(value: decimal.Decimal) -> int | float | None:
    if not value.is_finite():
        return None
    return int(value) if value == value.to_integral_value() else float(value)


# --------------------------------------------------------------------------------------------- metrics, logs

# The original's names and buckets (origin-product.md §7.1). Counters and histograms only: they need no
# multiprocess_mode, so they aggregate across worker processes.
datafusion_query_duration_seconds = Histogram(
    "datafusion_query_duration_seconds",
    "sql.query duration, by node and outcome (success, error, timeout).",
    ["node_id", "status"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60),
)
datafusion_query_total = Counter(
    "datafusion_query_total", "sql.query runs by node and outcome.", ["node_id", "status"]
)
datafusion_query_errors_total = Counter(
    "datafusion_query_errors_total", "sql.query failures by node and errorType.", ["node_id", "error_type"]
)
datafusion_query_rows = Histogram(
    "datafusion_query_rows",
    "Rows returned by sql.query.",
    ["node_id"],
    buckets=(1, 10, 100, 1e3, 1e4, 1e5, 1e6),
)

# The original's StructuredLogger name and events (origin-product.md §7.2).
query_log = logging.getLogger("DataFusion")
_LOGGED_SQL = 500


def _now_ms() -> int:
    return int(time.time() * 1000)


def _log_start(ctx: NodeContext, config: Mapping[str, Any], input_rows: int) -> None:
    parameters = config.get("parameters") or {}
    items = parameters.items() if isinstance(parameters, dict) else enumerate(parameters)
    query_log.info(
        "query_start",
        extra={
            "event": "query_start",
            "timestamp": _now_ms(),
            "nodeId": ctx.node_id,
            "executionId": ctx.execution_id,
            "sql": config["sql"][:_LOGGED_SQL],
            "batchSize": input_rows,  # the whole input is one batch
            "parameters": {str(k): str(v) for k, v in items},
        },
    )


def _record_success(ctx: NodeContext, config: Mapping[str, Any], rows: list[Any], seconds: float) -> None:
    datafusion_query_duration_seconds.labels(ctx.node_id, "success").observe(seconds)
    datafusion_query_total.labels(ctx.node_id, "success").inc()
    datafusion_query_rows.labels(ctx.node_id).observe(len(rows))
    duration_ms = max(int(seconds * 1000), 1)
    size = len(json.dumps(rows, separators=(",", ":")))
    query_log.info(
        "query_complete",
        extra={
            "event": "query_complete",
            "timestamp": _now_ms(),
            "nodeId": ctx.node_id,
            "executionId": ctx.execution_id,
            "sql": config["sql"][:_LOGGED_SQL],
            "durationMs": duration_ms,
            "rows": len(rows),
            "bytes": size,
            "throughput": len(rows) * 1000 / duration_ms,
        },
    )
    ctx.log(f"sql.query: {len(rows)} rows ({size} bytes) in {duration_ms} ms")


def _record_failure(ctx: NodeContext, config: Mapping[str, Any], error: QueryError, seconds: float) -> None:
    status = "timeout" if error.error_type == "QUERY_TIMEOUT" else "error"
    datafusion_query_duration_seconds.labels(ctx.node_id, status).observe(seconds)
    datafusion_query_total.labels(ctx.node_id, status).inc()
    datafusion_query_errors_total.labels(ctx.node_id, error.error_type).inc()
    # WARNING, not the original's ERROR: a failing query is the workflow author's to fix, not an operator's.
    query_log.warning(
        "query_failed",
        extra={
            "event": "query_failed",
            "timestamp": _now_ms(),
            "nodeId": ctx.node_id,
            "executionId": ctx.execution_id,
            "sql": config["sql"][:_LOGGED_SQL],
            "durationMs": int(seconds * 1000),
            "error": error.detail,
            "errorType": error.error_type,
            "retryable": error.retryable,
            "stackTrace": _stack(error.__cause__),
        },
    )
    ctx.log(f"sql.query failed after {int(seconds * 1000)} ms: {error}")


def _stack(exc: BaseException | None) -> str | None:
    if exc is None or exc.__traceback__ is None:
        return None
    return "".join(traceback.format_tb(exc.__traceback__)[-10:])[:1000]


# --------------------------------------------------------------------------------------------- DuckDB

# No files, no extensions, and no way for the query to turn either back on.
_DUCKDB_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "lock_configuration": True,
}


def _capped_config() -> dict[str, str | bool | int | float | list[str]]:
    """The sandbox, plus this worker's caps for one query: memory, threads, and no spilling to disk (the
    worker's disk is not the query's). lock_configuration keeps the query from raising them."""
    return {
        **_DUCKDB_CONFIG,
        "memory_limit": f"{engine_settings.sql_memory_limit_mb}MB",
        "threads": engine_settings.sql_threads,
        "max_temp_directory_size": "0B",
    }


class Deadline:
    """Interrupts a running query once ``seconds`` have passed, or as soon as the attempt is cancelled.

    ``interrupt`` only stops a query that is already running, so it is repeated until the caller leaves the
    block: a timer that fires between two statements still stops the next one.
    """

    POLL_SECONDS = 0.05
    CANCEL_POLL_SECONDS = 0.5  # ctx.cancelled() asks Redis: poll it less often

    def __init__(self, interrupt: Callable[[], None], seconds: float, cancelled: Callable[[], bool]) -> None:
        self._interrupt, self._seconds, self._cancelled = interrupt, seconds, cancelled
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="sql-deadline", daemon=True)
        self.reason: str | None = None  # "timeout" or "cancelled" once it fired

    def __enter__(self) -> Deadline:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        deadline = time.monotonic() + self._seconds
        while self.reason is None:
            if self._done.wait(max(min(deadline - time.monotonic(), self.CANCEL_POLL_SECONDS), 0)):
                return
            if time.monotonic() >= deadline:
                self.reason = "timeout"
            elif self._cancelled():
                self.reason = "cancelled"
        while True:
            self._interrupt()
            if self._done.wait(self.POLL_SECONDS):
                return


def _duckdb_failures() -> tuple[tuple[type[Exception], str, bool], ...]:
    """DuckDB exception classes, most specific first, as (class, errorType, retryable)."""
    import duckdb

    return (
        (duckdb.ParserException, "SQL_SYNTAX_ERROR", False),
        (duckdb.SyntaxException, "SQL_SYNTAX_ERROR", False),
        (duckdb.DataError, "DATA_FORMAT_ERROR", False),  # conversion, out of range, type mismatch
        # the cap is per query, so a retry would hit it again
        (duckdb.OutOfMemoryException, "OUT_OF_MEMORY", False),
        (duckdb.IOException, "IO_ERROR", True),
        (duckdb.InterruptException, "QUERY_INTERRUPTED", True),
        (duckdb.InternalError, "INVALID_STATE", False),
        (duckdb.ProgrammingError, "INVALID_ARGUMENT", False),  # unknown table or column, bad input
        (duckdb.PermissionException, "INVALID_ARGUMENT", False),  # file access, extensions
        (duckdb.IntegrityError, "INVALID_ARGUMENT", False),
        (duckdb.NotSupportedError, "INVALID_ARGUMENT", False),
    )


def _duckdb_error(exc: Exception, deadline: Deadline, timeout: float) -> QueryError:
    detail = str(exc).strip()
    if deadline.reason == "timeout":
        return QueryError(
            "sql.query", "QUERY_TIMEOUT", f"the query ran past timeout={timeout:g}s", retryable=True
        )
    if deadline.reason == "cancelled":
        return QueryError("sql.query", "QUERY_CANCELLED", "the attempt was cancelled", retryable=False)
    for cls, error_type, retryable in _duckdb_failures():
        if isinstance(exc, cls):
            if error_type == "OUT_OF_MEMORY":
                detail = _memory_detail(detail)
            return QueryError("sql.query", error_type, detail, retryable=retryable)
    return QueryError("sql.query", "UNKNOWN_ERROR", detail, retryable=False)


def _memory_detail(detail: str) -> str:
    # DuckDB's own text goes on to suggest "SET memory_limit", which the locked configuration refuses.
    first = detail.splitlines()[0] if detail else "out of memory"
    return (
        f"the query needs more than the {engine_settings.sql_memory_limit_mb} MiB a sql.query may use "
        f"(WORKFLOW_SQL_MEMORY_LIMIT_MB): {first}"
    )


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _as_row(record: Any) -> Mapping[str, Any]:
    return record if isinstance(record, dict) else {"value": record}


def _columns(records: Sequence[Any]) -> dict[str, list[Any]]:
    """Column name -> values: the union of the records' keys, in first-seen order."""
    rows = [_as_row(record) for record in records]
    names = list(dict.fromkeys(key for row in rows for key in row)) or ["value"]
    return {name: [row.get(name) for row in rows] for name in names}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if -(2**63) <= value < 2**63 else "hugeint"
    if isinstance(value, float):
        return "float"
    return "str" if isinstance(value, str) else "json"


# JSON types found in a column -> its DuckDB type. Anything else (mixed) is VARCHAR: strings as they are, the
# other values as JSON text.
_COLUMN_TYPES: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({"bool"}), "BOOLEAN"),
    (frozenset({"int"}), "BIGINT"),
    (frozenset({"int", "hugeint"}), "HUGEINT"),
    (frozenset({"int", "float"}), "DOUBLE"),
    (frozenset({"int", "hugeint", "float"}), "DOUBLE"),
    (frozenset({"hugeint", "float"}), "DOUBLE"),
    (frozenset({"float"}), "DOUBLE"),
    (frozenset({"str"}), "VARCHAR"),
    (frozenset({"json"}), "JSON"),
)


def _column_type(values: Sequence[Any]) -> str:
    kinds = frozenset(_kind(value) for value in values if value is not None)
    if kinds == {"hugeint"}:
        return "HUGEINT"
    return next((sql_type for found, sql_type in _COLUMN_TYPES if found == kinds), "VARCHAR")


def _column_values(values: list[Any], sql_type: str) -> list[Any]:
    if sql_type == "DOUBLE":
        return [None if v is None else float(v) for v in values]
    if sql_type in ("JSON", "VARCHAR"):
        return [
            v if v is None or isinstance(v, str) else json.dumps(v, separators=(",", ":")) for v in values
        ]
    return values


def load_table(con: duckdb.DuckDBPyConnection, name: str, records: Sequence[Any]) -> None:
    """Create table ``name`` from ``records`` in one statement, the values bound as one array per column."""
    columns = _columns(records)
    types = {column: _column_type(values) for column, values in columns.items()}
    select = ", ".join(
        f"unnest(${i}::{types[column]}[]) AS {_quote(column)}" for i, column in enumerate(columns, start=1)
    )
    values = [_column_values(columns[column], types[column]) for column in columns]
    con.execute(f"CREATE TABLE {_quote(name)} AS SELECT {select}", values)


def _load_inputs(
    con: duckdb.DuckDBPyConnection, inputs: Sequence[Any], by_node: Mapping[str, Sequence[Any]]
) -> None:
    load_table(con, "input", inputs)
    for node_id, records in by_node.items():
        if node_id != "input":  # "input" always means all the inputs
            load_table(con, node_id, records)


def _result_rows(cursor: duckdb.DuckDBPyConnection, max_rows: int | None) -> list[dict[str, Any]]:
    if cursor.description is None:  # a statement without a result
        return []
    names = [column[0] for column in cursor.description]
    # JSON columns come back as text: parse them, so nested values round-trip.
    is_json = [str(column[1]) == "JSON" for column in cursor.description]
    rows = fetch_limited(cursor.fetchmany, cursor.fetchall, max_rows, "sql.query")
    return [
        {
            name: _from_json(v) if parse else json_value(v)
            for name, v, parse in zip(names, row, is_json, strict=True)
        }
        for row in rows
    ]


def _from_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else json_value(value)


def run_duckdb(ctx: NodeContext, config: Mapping[str, Any], inputs: Sequence[Any]) -> list[dict[str, Any]]:
    """The query's rows over ``inputs``, in a fresh in-memory database, within ``timeout``."""
    import duckdb

    try:
        bound = bind(config["sql"], config.get("parameters"), "duckdb")
    except ParameterError as exc:
        raise QueryError("sql.query", "INVALID_ARGUMENT", str(exc), retryable=False) from exc
    timeout = timeout_seconds(config["timeout"])
    con = duckdb.connect(":memory:", config=_capped_config())
    try:
        with Deadline(con.interrupt, timeout, ctx.cancelled) as deadline:
            try:
                _load_inputs(con, inputs, ctx.inputs_by_node)
                cursor = con.execute(bound.text, bound.values or None)
                return _result_rows(cursor, config.get("maxRows"))
            except duckdb.Error as exc:
                raise _duckdb_error(exc, deadline, timeout) from exc
    finally:
        con.close()


def duckdb_statement_problem(text: str) -> str | None:
    """DuckDB's parser on a bound statement, without running it (``Sandbox.sql_parser``): its syntax error,
    or a count other than one statement; None when it is one statement that parses."""
    import duckdb

    con = duckdb.connect(":memory:", config=_DUCKDB_CONFIG)
    try:
        statements = con.extract_statements(text)
    except duckdb.Error as exc:
        return str(exc).strip()
    finally:
        con.close()
    if len(statements) != 1:
        return f"Give exactly one SQL statement, not {len(statements)}."
    return None


@implements(sql.SqlQuery)
class SqlQuery(NodeImplementation):
    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        config = self.with_defaults(ctx.config)
        _log_start(ctx, config, len(inputs))
        started = time.perf_counter()
        try:
            rows = run_duckdb(ctx, config, inputs)
        except QueryError as exc:
            _record_failure(ctx, config, exc, time.perf_counter() - started)
            raise
        _record_success(ctx, config, rows, time.perf_counter() - started)
        return NodeResult(records=rows, records_processed=len(inputs))
