"""``sql.query``: SQL over upstream records on DuckDB, and what every SQL node shares.

DuckDB replaces the original's DataFusion service (origin-product.md §9): each run opens a fresh in-memory
database, loads the upstream records as tables (``input``: all of them, concatenated; and one table per
upstream node, named by its id) and runs the query. The database cannot read or write files, install or
load extensions, or change that configuration, because the SQL comes from an API client.

Shared with ``databases.py``:

- ``bind``: parameters are always passed to the driver, never spliced into the text. The SQL is tokenized so
  that ``{{name}}``, ``:name`` and ``?`` are rewritten to the driver's placeholders only outside string
  literals, quoted identifiers and comments; ``::casts`` are left alone.
- ``QueryError``: failures classified as the original's taxonomy (``errorType``, retryable or not).
- ``timeout_problems``/``max_rows_problems``, ``json_value`` for result values, ``fetch_limited``.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import logging
import math
import re
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from prometheus_client import Counter, Histogram

from apps.workflows.engine.policies import duration_ms, duration_problem
from apps.workflows.nodes.base import ConfigField, NodeContext, NodeError, NodeResult, NodeType, register

if TYPE_CHECKING:  # imported lazily at run time: a gateway that never runs SQL need not load DuckDB
    import duckdb

Dialect = Literal["duckdb", "postgres", "mysql"]

# --------------------------------------------------------------------------------------------- errors


class QueryError(NodeError):
    """A query that failed, with the original's ``errorType`` (origin-product.md §9.3) and retryability."""

    def __init__(self, node: str, error_type: str, detail: str, *, retryable: bool) -> None:
        super().__init__(f"{node}: {error_type}: {detail}", retryable=retryable)
        self.node, self.error_type, self.detail = node, error_type, detail


class ParameterError(ValueError):
    """A placeholder without a value, or a count mismatch: the definition must change."""


# --------------------------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Bound:
    """SQL text whose placeholders are the driver's own, and the values to pass with it, in order."""

    text: str
    values: list[Any]


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACES = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_DOLLAR_QUOTE = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")
_NATIVE = re.compile(r"\$\d+")


def tokens(sql: str, dialect: Dialect) -> Iterator[tuple[str, str]]:
    """``(kind, text)`` pieces of ``sql``, which join back to it.

    Kinds: ``sql`` (plain text), ``quoted`` (a string literal, quoted identifier or comment: never
    rewritten), ``named`` (``{{name}}``), ``colon`` (``:name``), ``positional`` (``?``), ``native``
    (``$1``, PostgreSQL's and DuckDB's own placeholders).
    """
    start = i = 0
    while i < len(sql):
        kind, end = _quoted_at(sql, i, dialect) or _placeholder_at(sql, i, dialect) or (None, i)
        if kind is None:
            i += 1
            continue
        if start < i:
            yield "sql", sql[start:i]
        yield kind, sql[i:end]
        start = i = end
    if start < len(sql):
        yield "sql", sql[start:]


def _is_word(char: str) -> bool:
    return char.isalnum() or char in "_$"


def _quoted_at(sql: str, i: int, dialect: Dialect) -> tuple[str, int] | None:
    char, pair = sql[i], sql[i : i + 2]
    if char == "'":
        # MySQL escapes with backslashes by default; PostgreSQL and DuckDB only in E'...' strings.
        return "quoted", _string_end(sql, i, "'", backslash=dialect == "mysql" or _is_escape_string(sql, i))
    if char == '"' or (char == "`" and dialect == "mysql"):
        return "quoted", _string_end(sql, i, char, backslash=dialect == "mysql" and char == '"')
    if (pair == "--" and _dash_comment(sql, i, dialect)) or (char == "#" and dialect == "mysql"):
        end = sql.find("\n", i)
        return "quoted", len(sql) if end < 0 else end
    if pair == "/*":
        return "quoted", _block_comment_end(sql, i, nested=dialect == "postgres")
    if char == "$" and dialect != "mysql" and (i == 0 or not _is_word(sql[i - 1])):
        match = _DOLLAR_QUOTE.match(sql, i)
        if match:
            close = sql.find(match.group(), match.end())
            return "quoted", len(sql) if close < 0 else close + len(match.group())
    return None


def _is_escape_string(sql: str, i: int) -> bool:
    return i > 0 and sql[i - 1] in "eE" and (i == 1 or not _is_word(sql[i - 2]))


def _dash_comment(sql: str, i: int, dialect: Dialect) -> bool:
    # MySQL only starts a comment at "-- " (so that 1--1 stays arithmetic).
    return dialect != "mysql" or i + 2 >= len(sql) or sql[i + 2].isspace()


def _string_end(sql: str, i: int, quote: str, *, backslash: bool) -> int:
    """Index just past the literal opened at ``i``; a doubled quote is part of it. Unterminated: the end."""
    j = i + 1
    while j < len(sql):
        escaped = backslash and sql[j] == "\\"
        if escaped or (sql[j] == quote and sql[j + 1 : j + 2] == quote):
            j += 2
        elif sql[j] == quote:
            return j + 1
        else:
            j += 1
    return len(sql)


def _block_comment_end(sql: str, i: int, *, nested: bool) -> int:
    """PostgreSQL nests ``/* */`` comments; DuckDB and MySQL end them at the first ``*/``."""
    depth, j = 0, i
    while j < len(sql):
        if sql.startswith("/*", j) and (nested or depth == 0):
            depth, j = depth + 1, j + 2
        elif sql.startswith("*/", j):
            depth, j = depth - 1, j + 2
            if depth == 0:
                return j
        else:
            j += 1
    return len(sql)


def _placeholder_at(sql: str, i: int, dialect: Dialect) -> tuple[str, int] | None:
    char = sql[i]
    if char == "{" and (braces := _BRACES.match(sql, i)):
        return "named", braces.end()
    # Not after a word or a colon: "::int" is a cast and "x[1:n]" a slice.
    if char == ":" and (i == 0 or not (_is_word(sql[i - 1]) or sql[i - 1] == ":")):
        name = _NAME.match(sql, i + 1)
        return ("colon", name.end()) if name else None
    if char == "?":
        return "positional", i + 1
    if char == "$" and dialect != "mysql" and (native := _NATIVE.match(sql, i)):
        return "native", native.end()
    return None


def bind(sql: str, parameters: Any, dialect: Dialect) -> Bound:
    """``sql`` with placeholders rewritten to the driver's (``$n``; ``%s`` for MySQL), and their values.

    ``parameters`` is an object for ``{{name}}`` and ``:name``, or an array for ``?``. ``{{name}}`` must have
    a value; ``:name`` is a placeholder only when ``parameters`` names it (so ``x[a:b]`` and MySQL's ``:=``
    stay SQL); ``?`` only when ``parameters`` is an array (so PostgreSQL's jsonb ``?`` stays an operator).
    Raises ``ParameterError``.
    """
    pieces = list(tokens(sql, dialect))
    named: Mapping[str, Any] = parameters if isinstance(parameters, Mapping) else {}
    positional = list(parameters) if isinstance(parameters, list) else None
    if positional is not None:
        expected = sum(1 for kind, _ in pieces if kind == "positional")
        if expected != len(positional):
            raise ParameterError(f"Parameter count mismatch: expected {expected}, got {len(positional)}")
    values: list[Any] = []
    out: list[str] = []
    for kind, text in pieces:
        value = _value_of(kind, text, named, positional, len(values))
        if value is not _NOT_A_PLACEHOLDER:
            values.append(_driver_value(value))
            out.append(_mark(dialect, len(values)))
            continue
        if kind == "native" and parameters:
            raise ParameterError(f"Use {{{{name}}}}, :name or ? instead of {text} when passing parameters")
        # PyMySQL formats the whole text with %, literals and comments included.
        out.append(_separated(out, text.replace("%", "%%") if dialect == "mysql" else text, dialect))
    return Bound("".join(out), values) if values else Bound(sql, [])


_NOT_A_PLACEHOLDER = object()


def _value_of(
    kind: str, text: str, named: Mapping[str, Any], positional: list[Any] | None, taken: int
) -> Any:
    if kind == "named":
        name = text.strip("{} \t\r\n")
        if name not in named:
            raise ParameterError(f"Missing parameter: {name}")
        return named[name]
    if kind == "colon" and text[1:] in named:
        return named[text[1:]]
    if kind == "positional" and positional is not None:
        # With an array there are no named values, so every value taken so far was a "?".
        return positional[taken]
    return _NOT_A_PLACEHOLDER


def _mark(dialect: Dialect, number: int) -> str:
    return "%s" if dialect == "mysql" else f"${number}"


def _separated(out: list[str], text: str, dialect: Dialect) -> str:
    # "{{n}}0" must not become "$10": keep a placeholder apart from a word that follows it.
    follows_mark = bool(out) and dialect != "mysql" and re.fullmatch(r"\$\d+", out[-1]) is not None
    return " " + text if follows_mark and text[:1] and _is_word(text[0]) else text


def _driver_value(value: Any) -> Any:
    """Objects travel as JSON text; arrays stay arrays (``= ANY(?)``, ``IN ?`` in MySQL)."""
    return json.dumps(value, separators=(",", ":")) if isinstance(value, dict) else value


def statement_count(sql: str, dialect: Dialect) -> int:
    """How many statements ``sql`` holds: ``;`` outside literals and comments separates them, and a part with
    nothing but blanks and comments is not one (so a trailing ``;`` is fine)."""
    count, filled = 0, False
    for kind, text in tokens(sql, dialect):
        if kind != "sql":
            filled = filled or not text.startswith(("--", "/*", "#"))
            continue
        for index, part in enumerate(text.split(";")):
            if index:  # a ";" ended the statement before this part
                count, filled = count + filled, False
            filled = filled or bool(part.strip())
    return count + filled


def parameter_problems(sql: str, parameters: Any, dialect: Dialect) -> dict[str, list[str]]:
    """``check`` helper: what binding ``parameters`` into ``sql`` would refuse."""
    if parameters is not None and not isinstance(parameters, (dict, list)):
        return {"parameters": ["Must be an object (for {{name}} and :name) or an array (for ?)."]}
    try:
        bind(sql, parameters, dialect)
    except ParameterError as exc:
        return {"parameters": [str(exc)]}
    return {}


# --------------------------------------------------------------------------------------------- config helpers


# The longest statement timeout of sql.query, db.* and mysql.* (docs/security.md): a query is not a job queue.
MAX_QUERY_TIMEOUT_MS = 3_600_000


def timeout_seconds(value: Any) -> float:
    """Seconds from a validated ``timeout`` (``"30s"``, ``"500ms"``, ``5``)."""
    return (duration_ms(value, MAX_QUERY_TIMEOUT_MS) or 0) / 1000


def timeout_problems(config: Mapping[str, Any], key: str = "timeout") -> dict[str, list[str]]:
    if problem := duration_problem(config[key], maximum_ms=MAX_QUERY_TIMEOUT_MS):
        return {key: [problem]}
    return {}


def max_rows_problems(config: Mapping[str, Any]) -> dict[str, list[str]]:
    if config.get("maxRows") is not None and config["maxRows"] < 1:
        return {"maxRows": ["Must be at least 1."]}
    return {}


def sql_problems(config: Mapping[str, Any]) -> dict[str, list[str]]:
    return {"sql": ["SQL query cannot be empty"]} if not config["sql"].strip() else {}


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
    from apps.workflows.conf import engine_settings

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
    from apps.workflows.conf import engine_settings

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


def _statement_problems(sql: str, parameters: Any) -> dict[str, list[str]]:
    """Parse (without running) the statement, so a syntax error is a 400 when the workflow is defined."""
    import duckdb

    con = duckdb.connect(":memory:", config=_DUCKDB_CONFIG)
    try:
        statements = con.extract_statements(bind(sql, parameters, "duckdb").text)
    except duckdb.Error as exc:
        return {"sql": [str(exc).strip()]}
    finally:
        con.close()
    if len(statements) != 1:
        return {"sql": [f"Give exactly one SQL statement, not {len(statements)}."]}
    return {}


@register
class SqlQuery(NodeType):
    type_name = "sql.query"
    category = "transform"
    display_name = "SQL query"
    description = (
        "Runs one SQL statement (DuckDB) over the upstream records: table input holds all of them, and each "
        "upstream node's records are also a table named by its id. Object fields become columns; other "
        "records a column named value. Parameters are bound, never spliced: {{name}} or :name with an "
        "object, ? with an array. Each result row becomes an object record."
    )
    icon = "database-zap"
    fields = (
        ConfigField("sql", "string", "SQL", required=True),
        ConfigField("parameters", "any", "Parameters (object for {{name}}/:name, array for ?)"),
        ConfigField("timeout", "any", "Timeout (30s, 500ms, or seconds)", default="30s"),
        ConfigField("maxRows", "integer", "Most rows the query may return (optional)"),
    )

    def check(self, config: Mapping[str, Any]) -> dict[str, list[str]]:
        problems = {**sql_problems(config), **timeout_problems(config), **max_rows_problems(config)}
        if problems:
            return problems
        return parameter_problems(config["sql"], config.get("parameters"), "duckdb") or _statement_problems(
            config["sql"], config.get("parameters")
        )

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
