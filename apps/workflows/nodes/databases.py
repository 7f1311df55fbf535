"""Nodes on external databases through named connections: ``db.query``/``db.write`` on PostgreSQL (psycopg)
and the original's ``mysql.query``/``mysql.write`` on MySQL or MariaDB (PyMySQL). Their descriptions and
definition-time checks are in ``engine/nodetypes/databases.py``; this module runs them.

A definition names a connection; its URL, credentials included, comes from the environment
(``WORKFLOW_CONNECTION_<NAME>``, or ``_FILE``, read into ``settings.WORKFLOW_CONNECTIONS``) and never appears
in a definition, an error or a log line. Each run opens one connection (a short connect timeout, so an
unreachable server fails the attempt quickly and it is retried) and closes it at the end.

Queries bind their parameters through the driver (``sql.bind``: ``{{name}}``, ``:name``, ``?``). As a
transform, a query runs once per input record, whose fields fill the placeholders ``parameters`` does not.

A query is exactly one statement, run in a read-only transaction on a read-only session: ``SELECT 1; DROP
TABLE t`` is refused when the workflow is defined, and again by the server (PostgreSQL's extended protocol,
a prepared statement, takes one statement only; PyMySQL never asks for multi-statements), and any write the
one statement attempts fails (``cannot execute DROP TABLE in a read-only transaction``). Writes go through
``db.write``/``mysql.write``. Give query connections a role that may only read, too: a read-only transaction
does not stop functions that open connections of their own (dblink).

Writes happen in one transaction, so a failed or crashed attempt leaves nothing half-written. ``upsert`` (the
default) makes a re-run write nothing twice: rows are keyed by the declared ``key`` columns or, without one,
by an idempotency column holding ``<execution>:<node>:<attempt>:<record index>``, which needs a unique index
(``CREATE UNIQUE INDEX ON t (_idempotency_key)``). The idempotency key changes with the attempt and the
execution, so a retry after an attempt that committed and then died, or a rerun, writes its rows again: only a
declared key deduplicates across attempts and executions.

URLs: PostgreSQL takes any libpq URL (``postgresql://user:password@host:5432/db?sslmode=require``); MySQL
``mysql://user:password@host:3306/database`` (query parameters are ignored).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, cast
from urllib.parse import unquote, urlsplit

from apps.workflows.engine.nodetypes import databases
from apps.workflows.engine.nodetypes.databases import DatabaseNodeType, one_statement
from apps.workflows.engine.nodetypes.sql import timeout_seconds
from apps.workflows.engine.sqltext import Bound, Dialect, ParameterError, bind, statement_count
from apps.workflows.nodes.base import NodeContext, NodeImplementation, NodeResult, implements
from apps.workflows.nodes.sandbox import connection_urls
from apps.workflows.nodes.sql import QueryError, fetch_limited, json_value

T = TypeVar("T")

CONNECT_TIMEOUT = 5  # seconds: fail the attempt (and retry it) rather than hang on an unreachable server

# --------------------------------------------------------------------------------------------- connections


def connection_url(node: str, name: str) -> str:
    url = connection_urls().get(name.lower())
    if url is None:  # the environment changed since the workflow was defined
        raise QueryError(node, "CONFIGURATION_ERROR", f"unknown connection {name!r}", retryable=False)
    return url


# --------------------------------------------------------------------------------------------- drivers


@contextlib.contextmanager
def _closed_on_error(conn: Any) -> Iterator[None]:
    """Close a connection whose set-up failed: the caller never gets it, so nothing else would."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            conn.close()
        raise


class Driver:
    """What a node needs from a database client; one subclass per server family (its dialect)."""

    def connect(
        self, url: str, timeout: float, app: str, *, read_only: bool = False
    ) -> contextlib.AbstractContextManager[Any]:
        """A connection with a statement timeout; ``read_only``: every transaction of it is read-only."""
        raise NotImplementedError

    def fetch(self, conn: Any, bound: Bound, limit: int | None, node: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def write(self, conn: Any, table: str, batches: Iterator[Batch], conflict: list[str] | None) -> None:
        """All ``batches`` in one transaction: an upsert on ``conflict`` columns, or plain inserts."""
        raise NotImplementedError

    def error_types(self) -> tuple[type[Exception], ...]:
        raise NotImplementedError

    def failure(self, node: str, exc: Exception) -> QueryError:
        raise NotImplementedError


# Consecutive rows with the same columns: (columns, rows of values).
Batch = tuple[list[str], list[list[Any]]]

# SQLSTATE (or its class, the first two characters) -> (errorType, retryable); the most specific first.
_PG_STATES: tuple[tuple[str, str, bool], ...] = (
    ("57014", "QUERY_TIMEOUT", True),  # statement_timeout
    ("25006", "INVALID_ARGUMENT", False),  # a write in db.query's read-only transaction: use db.write
    ("53300", "CONNECTION_POOL_EXHAUSTED", True),  # too many connections
    ("55P03", "TRANSACTION_CONFLICT", True),  # lock not available
    ("42601", "SQL_SYNTAX_ERROR", False),
    ("08", "CONNECTION_ERROR", True),
    ("40", "TRANSACTION_CONFLICT", True),  # serialization failure, deadlock
    ("53", "SERVICE_UNAVAILABLE", True),  # out of disk, memory
    ("57", "SERVICE_UNAVAILABLE", True),  # shutting down, starting up
    ("58", "IO_ERROR", True),
    ("22", "DATA_FORMAT_ERROR", False),
    ("23", "CONSTRAINT_VIOLATION", False),
    ("42", "INVALID_ARGUMENT", False),  # unknown table or column, no permission, no unique index to upsert on
    ("28", "CONFIGURATION_ERROR", False),  # authentication
    ("3D", "CONFIGURATION_ERROR", False),  # unknown database
)


class Postgres(Driver):
    def connect(
        self, url: str, timeout: float, app: str, *, read_only: bool = False
    ) -> contextlib.AbstractContextManager[Any]:
        import psycopg

        # RawCursor: $n placeholders, so a % in the SQL text is never taken for one.
        conn = psycopg.connect(
            url,
            connect_timeout=CONNECT_TIMEOUT,
            autocommit=True,
            application_name=app[:63],
            cursor_factory=psycopg.RawCursor,
        )
        with _closed_on_error(conn):
            conn.execute("SELECT set_config('statement_timeout', $1, false)", [str(int(timeout * 1000))])
            if read_only:
                conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        return conn

    def fetch(self, conn: Any, bound: Bound, limit: int | None, node: str) -> list[dict[str, Any]]:
        # READ ONLY for this transaction as well as the session: the statement cannot turn either off first.
        # prepare=True: the extended protocol, even without parameters, which refuses a second statement (the
        # simple protocol, psycopg's choice without parameters, would run "SELECT 1; DROP TABLE t" whole).
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SET TRANSACTION READ ONLY")
            cur.execute(bound.text, bound.values or None, prepare=True)
            if cur.description is None:  # a statement without a result
                return []
            names = [column.name for column in cur.description]
            rows = fetch_limited(cur.fetchmany, cur.fetchall, limit, node)
        return [{name: json_value(v) for name, v in zip(names, row, strict=True)} for row in rows]

    def write(self, conn: Any, table: str, batches: Iterator[Batch], conflict: list[str] | None) -> None:
        from psycopg.types.json import Jsonb

        def value(v: Any) -> Any:
            return Jsonb(v) if isinstance(v, (dict, list)) else v

        with conn.transaction(), conn.cursor() as cur:
            for columns, rows in batches:
                statement = _pg_insert(table, columns, conflict)
                cur.executemany(statement, [[value(v) for v in row] for row in rows])

    def error_types(self) -> tuple[type[Exception], ...]:
        import psycopg

        return (psycopg.Error,)

    def failure(self, node: str, exc: Exception) -> QueryError:
        import psycopg

        state = getattr(exc, "sqlstate", None) or ""
        detail = str(exc).strip()
        for prefix, error_type, retryable in _PG_STATES:
            if state.startswith(prefix):
                return QueryError(node, error_type, detail, retryable=retryable)
        if isinstance(exc, psycopg.OperationalError):  # no SQLSTATE: refused, reset, server gone
            return QueryError(node, "CONNECTION_ERROR", detail, retryable=True)
        return QueryError(node, "UNKNOWN_ERROR", detail, retryable=False)


def _pg_insert(table: str, columns: list[str], conflict: list[str] | None) -> Any:
    from psycopg import sql

    def names(items: Sequence[str]) -> sql.Composable:
        return sql.SQL(", ").join(map(sql.Identifier, items))

    marks = sql.SQL(", ").join(sql.SQL(f"${i}") for i in range(1, len(columns) + 1))
    statement = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(*table.split(".")), names(columns), marks
    )
    if conflict is None:
        return statement
    updates = [column for column in columns if column not in conflict]
    if not updates:
        return statement + sql.SQL(" ON CONFLICT ({}) DO NOTHING").format(names(conflict))
    assignments = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in updates)
    return statement + sql.SQL(" ON CONFLICT ({}) DO UPDATE SET {}").format(names(conflict), assignments)


# MySQL/MariaDB error numbers -> (errorType, retryable); client errors (2000 and up) are connection errors.
_MYSQL_CODES: dict[int, tuple[str, bool]] = {
    1064: ("SQL_SYNTAX_ERROR", False),
    1149: ("SQL_SYNTAX_ERROR", False),
    1044: ("CONFIGURATION_ERROR", False),  # access denied to the database
    1045: ("CONFIGURATION_ERROR", False),  # access denied (password)
    1049: ("CONFIGURATION_ERROR", False),  # unknown database
    1040: ("CONNECTION_POOL_EXHAUSTED", True),  # too many connections
    1203: ("CONNECTION_POOL_EXHAUSTED", True),  # max_user_connections
    1205: ("TRANSACTION_CONFLICT", True),  # lock wait timeout
    1213: ("TRANSACTION_CONFLICT", True),  # deadlock
    1969: ("QUERY_TIMEOUT", True),  # MariaDB max_statement_time
    3024: ("QUERY_TIMEOUT", True),  # MySQL max_execution_time
    1317: ("QUERY_TIMEOUT", True),  # query interrupted
    1792: ("INVALID_ARGUMENT", False),  # a write in mysql.query's read-only transaction: use mysql.write
    1053: ("SERVICE_UNAVAILABLE", True),  # server shutdown in progress
}


class MySql(Driver):
    def connect(
        self, url: str, timeout: float, app: str, *, read_only: bool = False
    ) -> contextlib.AbstractContextManager[Any]:
        import pymysql

        # No CLIENT.MULTI_STATEMENTS flag (PyMySQL's default, kept explicit): the server refuses "a; b".
        conn = pymysql.connect(
            **_mysql_params(url),
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT,
            # A backstop for a server that stops answering; the statement timeout below fires first.
            read_timeout=timeout + CONNECT_TIMEOUT,
            write_timeout=timeout + CONNECT_TIMEOUT,
            program_name=app[:32],
            client_flag=0,
        )
        with _closed_on_error(conn), conn.cursor() as cur:
            if "mariadb" in conn.get_server_info().lower():
                cur.execute("SET SESSION max_statement_time = %s", [timeout])
            else:  # MySQL limits SELECTs only
                cur.execute("SET SESSION max_execution_time = %s", [int(timeout * 1000)])
            if read_only:
                # Every later transaction, including the one a DDL statement's implicit commit starts.
                cur.execute("SET SESSION TRANSACTION READ ONLY")
        return conn

    def fetch(self, conn: Any, bound: Bound, limit: int | None, node: str) -> list[dict[str, Any]]:
        with conn.cursor() as cur:
            cur.execute("START TRANSACTION READ ONLY")
            try:
                cur.execute(bound.text, bound.values or None)
                names = [column[0] for column in cur.description or ()]
                rows = fetch_limited(cur.fetchmany, cur.fetchall, limit, node) if names else []
            finally:
                with contextlib.suppress(Exception):  # nothing to keep; a lost connection rolls back anyway
                    conn.rollback()
        return [{name: json_value(v) for name, v in zip(names, row, strict=True)} for row in rows]

    def write(self, conn: Any, table: str, batches: Iterator[Batch], conflict: list[str] | None) -> None:
        def value(v: Any) -> Any:
            return json.dumps(v, separators=(",", ":")) if isinstance(v, (dict, list)) else v

        conn.begin()
        try:
            with conn.cursor() as cur:
                for columns, rows in batches:  # PyMySQL sends each batch as one multi-row INSERT
                    cur.executemany(
                        _mysql_insert(table, columns, conflict), [[value(v) for v in r] for r in rows]
                    )
            conn.commit()
        except BaseException:
            with contextlib.suppress(Exception):  # the connection may be gone; the server rolls back then
                conn.rollback()
            raise

    def error_types(self) -> tuple[type[Exception], ...]:
        import pymysql

        return (pymysql.MySQLError,)

    def failure(self, node: str, exc: Exception) -> QueryError:
        import pymysql

        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
        detail = str(exc.args[1] if len(exc.args) > 1 else exc)
        if code in _MYSQL_CODES:
            error_type, retryable = _MYSQL_CODES[code]
            return QueryError(node, error_type, detail, retryable=retryable)
        if code >= 2000:  # CR_* client errors: cannot connect, server gone, lost connection
            return QueryError(node, "CONNECTION_ERROR", detail, retryable=True)
        by_class: tuple[tuple[type[Exception], str], ...] = (
            (pymysql.err.IntegrityError, "CONSTRAINT_VIOLATION"),
            (pymysql.err.DataError, "DATA_FORMAT_ERROR"),
            (pymysql.err.DatabaseError, "INVALID_ARGUMENT"),  # unknown table or column, unsupported, ...
        )
        error_type = next((name for cls, name in by_class if isinstance(exc, cls)), "UNKNOWN_ERROR")
        return QueryError(node, error_type, detail, retryable=False)


def _mysql_params(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "database": unquote(parts.path.lstrip("/")) or None,
    }


def _mysql_quote(identifier: str) -> str:
    # Doubled % as well: PyMySQL formats the whole statement with %.
    return "`" + identifier.replace("`", "``").replace("%", "%%") + "`"


def _mysql_insert(table: str, columns: list[str], conflict: list[str] | None) -> str:
    names = ", ".join(map(_mysql_quote, columns))
    statement = f"INSERT INTO {'.'.join(map(_mysql_quote, table.split('.')))} ({names}) VALUES "
    statement += "(" + ", ".join(["%s"] * len(columns)) + ")"
    if conflict is None:
        return statement
    # MySQL resolves conflicts on any unique key, so conflict only says which columns keep their value.
    updates = [column for column in columns if column not in conflict] or columns
    assignments = ", ".join(f"{_mysql_quote(c)} = VALUES({_mysql_quote(c)})" for c in updates)
    return f"{statement} ON DUPLICATE KEY UPDATE {assignments}"


# --------------------------------------------------------------------------------------------- queries


def _app_name(node: str, ctx: NodeContext) -> str:
    return f"workflow-engine {node} {ctx.node_id}"


def _guarded(driver: Driver, node: str, work: Callable[[], T]) -> T:
    """``work()``, with the driver's exceptions classified into a ``QueryError``."""
    try:
        return work()
    except driver.error_types() as exc:
        raise driver.failure(node, exc) from exc


def _record_parameters(record: Any, parameters: Any) -> Any:
    """A record's fields fill the named placeholders ``parameters`` leaves (a scalar record is ``value``)."""
    if isinstance(parameters, list):
        return parameters
    fields = record if isinstance(record, dict) else {"value": record}
    return {**fields, **(parameters or {})}


_DRIVERS: dict[Dialect, Driver] = {"postgres": Postgres(), "mysql": MySql()}


class _OnDatabase(NodeImplementation):
    @property
    def dialect(self) -> Dialect:
        return cast(DatabaseNodeType, self.node_type).dialect

    @property
    def driver(self) -> Driver:
        return _DRIVERS[self.dialect]


@implements(
    databases.DbQuery, databases.DbQueryTransform, databases.MysqlQuery, databases.MysqlQueryTransform
)
class Query(_OnDatabase):
    """Runs a query once as a source, or once per input record as a transform."""

    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        config = self.with_defaults(ctx.config)
        if (count := statement_count(config["sql"], self.dialect)) > 1:
            raise QueryError(
                self.type_name, "INVALID_ARGUMENT", one_statement(self.type_name, count), retryable=False
            )
        statements = self._statements(config, inputs)
        url = connection_url(self.type_name, config["connection"])
        started = time.perf_counter()
        rows = _guarded(self.driver, self.type_name, lambda: self._fetch_all(ctx, config, url, statements))
        elapsed = int((time.perf_counter() - started) * 1000)
        ctx.log(f"{self.type_name}: {len(rows)} rows from connection {config['connection']} in {elapsed} ms")
        return NodeResult(records=rows, records_processed=len(inputs) if inputs else len(rows))

    def _statements(self, config: Mapping[str, Any], inputs: Sequence[Any]) -> list[Bound]:
        if self.category == "source":
            return [self._bind(config["sql"], config.get("parameters"), "")]
        parameters = config.get("parameters")
        return [
            self._bind(config["sql"], _record_parameters(record, parameters), f"record {index}: ")
            for index, record in enumerate(inputs)
        ]

    def _bind(self, sql: str, parameters: Any, where: str) -> Bound:
        try:
            return bind(sql, parameters, self.dialect)
        except ParameterError as exc:
            raise QueryError(self.type_name, "INVALID_ARGUMENT", f"{where}{exc}", retryable=False) from exc

    def _fetch_all(
        self, ctx: NodeContext, config: Mapping[str, Any], url: str, statements: list[Bound]
    ) -> list[dict[str, Any]]:
        max_rows = config.get("maxRows")
        rows: list[dict[str, Any]] = []
        with self.driver.connect(
            url, timeout_seconds(config["timeout"]), _app_name(self.type_name, ctx), read_only=True
        ) as conn:
            for index, bound in enumerate(statements):
                if index and ctx.cancelled():
                    raise QueryError(
                        self.type_name, "QUERY_CANCELLED", "the attempt was cancelled", retryable=False
                    )
                limit = None if max_rows is None else max_rows - len(rows)
                rows.extend(self.driver.fetch(conn, bound, limit, self.type_name))
        return rows


# --------------------------------------------------------------------------------------------- writes


def _batches(rows: Sequence[Mapping[str, Any]], size: int) -> Iterator[Batch]:
    """Runs of consecutive rows with the same columns, at most ``size`` rows each; the rows keep their order
    (a later row with the same key wins)."""
    start = 0
    while start < len(rows):
        columns = list(rows[start])
        end = start + 1
        while end < len(rows) and end - start < size and list(rows[end]) == columns:
            end += 1
        yield columns, [[row[column] for column in columns] for row in rows[start:end]]
        start = end


def _with_index_hint(error: QueryError, table: str, conflict: list[str] | None) -> QueryError:
    """PostgreSQL's "no unique or exclusion constraint matching the ON CONFLICT" error names no column."""
    if conflict is None or getattr(error.__cause__, "sqlstate", None) != "42P10":
        return error
    detail = f"{table} needs a unique index on ({', '.join(conflict)}) to upsert: {error.detail}"
    return QueryError(error.node, error.error_type, detail, retryable=error.retryable)


@implements(databases.DbWrite, databases.MysqlWrite)
class Write(_OnDatabase):
    """Writes object records as rows, in one transaction; returns no records."""

    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        config = self.with_defaults(ctx.config)
        rows, conflict = self._rows(ctx, config, inputs)
        url = connection_url(self.type_name, config["connection"])
        if rows:
            try:
                _guarded(self.driver, self.type_name, lambda: self._write(ctx, config, url, rows, conflict))
            except QueryError as exc:
                raise _with_index_hint(exc, config["table"], conflict) from exc.__cause__
        ctx.log(f"{self.type_name}: wrote {len(rows)} rows into {config['table']} ({config['mode']})")
        return NodeResult(records=[], records_processed=len(rows))

    def _rows(
        self, ctx: NodeContext, config: Mapping[str, Any], inputs: Sequence[Any]
    ) -> tuple[list[dict[str, Any]], list[str] | None]:
        """The rows to write and the upsert's conflict columns (None: plain inserts)."""
        for index, record in enumerate(inputs):
            if not isinstance(record, dict) or not record:
                raise QueryError(
                    self.type_name,
                    "DATA_FORMAT_ERROR",
                    f"record {index} is not a non-empty object",
                    retryable=False,
                )
        if config["mode"] == "insert":
            return [dict(record) for record in inputs], None
        if config.get("key"):
            self._check_keys(inputs, config["key"])
            return [dict(record) for record in inputs], list(config["key"])
        column = config["idempotencyColumn"]
        rows = [{**record, column: f"{ctx.idempotency_key}:{index}"} for index, record in enumerate(inputs)]
        return rows, [column]

    def _check_keys(self, inputs: Sequence[Mapping[str, Any]], key: list[str]) -> None:
        # A NULL key never conflicts, so the row would be inserted again on every re-run.
        for index, record in enumerate(inputs):
            missing = [column for column in key if record.get(column) is None]
            if missing:
                detail = f"record {index} has no value for the key column(s) {', '.join(missing)}"
                raise QueryError(self.type_name, "DATA_FORMAT_ERROR", detail, retryable=False)

    def _write(
        self,
        ctx: NodeContext,
        config: Mapping[str, Any],
        url: str,
        rows: list[dict[str, Any]],
        conflict: list[str] | None,
    ) -> None:
        timeout = timeout_seconds(config["timeout"])
        with self.driver.connect(url, timeout, _app_name(self.type_name, ctx)) as conn:
            self.driver.write(conn, config["table"], _batches(rows, config["batchSize"]), conflict)
