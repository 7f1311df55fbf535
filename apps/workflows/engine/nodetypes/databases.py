"""Descriptions of the nodes on external databases through named connections: ``db.query``/``db.write`` on
PostgreSQL and ``mysql.query``/``mysql.write`` on MySQL or MariaDB.

A definition names a connection (the sandbox knows each configured one by name and scheme, never by URL, which
holds credentials); credentials in a config are refused. A query is exactly one statement whose parameters
bind (``engine/sqltext.py``); a write names a table and, to upsert, its key. The implementations, with their
drivers, are in ``apps/workflows/nodes/databases.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from apps.workflows.engine.dsl import Problems
from apps.workflows.engine.nodetypes.base import Category, ConfigField, NodeType, register
from apps.workflows.engine.nodetypes.sql import (
    max_rows_problems,
    parameter_problems,
    sql_problems,
    timeout_problems,
)
from apps.workflows.engine.sandbox import Sandbox
from apps.workflows.engine.sqltext import Dialect, statement_count

MAX_BATCH_SIZE = 100_000
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")
# The original's mysql.* nodes took these in their config; credentials now live in the environment.
_CREDENTIAL_FIELDS = ("host", "port", "username", "user", "password", "database")


def connection_problems(
    config: Mapping[str, Any], schemes: Sequence[str], label: str, sandbox: Sandbox
) -> Problems:
    """The connection must be configured, and be a ``label`` database. Never shows the URL."""
    name = config["connection"]
    scheme = sandbox.connections.get(name.lower())
    if scheme is None:
        known = ", ".join(sorted(sandbox.connections)) or "none are configured"
        return {
            "connection": [
                f"Unknown connection {name!r} (known: {known}); an operator configures it with the "
                f"environment variable WORKFLOW_CONNECTION_{name.upper()}."
            ]
        }
    if scheme not in schemes:
        return {"connection": [f"Connection {name!r} is a {scheme} database, not {label}."]}
    return {}


def credential_problems(config: Mapping[str, Any]) -> Problems:
    message = (
        "Credentials and addresses do not belong in a workflow definition: configure the environment "
        "variable WORKFLOW_CONNECTION_<NAME> (a URL, or _FILE) and set connection to <name>."
    )
    return {key: [message] for key in _CREDENTIAL_FIELDS if key in config}


def table_problems(config: Mapping[str, Any]) -> Problems:
    parts = config["table"].split(".")
    if len(parts) > 2 or not all(_IDENTIFIER.fullmatch(part) for part in parts):
        return {"table": ["Must be a table name, or schema.table: letters, digits, _ and $, up to 63 each."]}
    return {}


def one_statement(node: str, count: int) -> str:
    writer = node.replace(".query", ".write")
    return f"Give exactly one SQL statement, not {count}: {node} only reads; writes go through {writer}."


class DatabaseNodeType(NodeType):
    """The server family a node talks to: the URL schemes its connections may have, and its SQL dialect."""

    label: ClassVar[str]
    schemes: ClassVar[tuple[str, ...]]
    dialect: ClassVar[Dialect]


class _Postgres(DatabaseNodeType):
    label = "PostgreSQL"
    schemes = ("postgres", "postgresql")
    dialect: ClassVar[Dialect] = "postgres"


class _MySql(DatabaseNodeType):
    label = "MySQL/MariaDB"
    schemes = ("mysql", "mariadb")
    dialect: ClassVar[Dialect] = "mysql"


class _Query(DatabaseNodeType):
    """Runs a query once as a source, or once per input record as a transform."""

    icon = "database"
    fields = (
        ConfigField("connection", "string", "Connection name (WORKFLOW_CONNECTION_<NAME>)", required=True),
        ConfigField("sql", "string", "SQL", required=True),
        ConfigField("parameters", "any", "Parameters (object for {{name}}/:name, array for ?)"),
        ConfigField("timeout", "any", "Statement timeout (30s, 500ms, or seconds)", default="30s"),
        ConfigField("maxRows", "integer", "Most rows in all (optional)"),
    )

    def check(self, config: Mapping[str, Any], sandbox: Sandbox) -> Problems:
        problems = {
            **credential_problems(config),
            **connection_problems(config, self.schemes, self.label, sandbox),
            **sql_problems(config),
            **timeout_problems(config),
            **max_rows_problems(config),
        }
        if not problems and (count := statement_count(config["sql"], self.dialect)) > 1:
            problems["sql"] = [one_statement(self.type_name, count)]
        parameters = config.get("parameters")
        if problems or (self.category == "transform" and isinstance(parameters, (dict, type(None)))):
            return problems  # a transform's records fill the named placeholders when it runs
        return parameter_problems(config["sql"], parameters, self.dialect)


_QUERY_SOURCE = (
    "Runs a SQL query against a named {label} connection; each result row becomes an object record. "
)
_QUERY_TRANSFORM = (
    "Runs a SQL query against a named {label} connection once per input record, whose fields fill the "
    "named placeholders that parameters does not; emits every result row as an object record. "
)
_QUERY_PARAMETERS = "Parameters are bound by the driver: {{name}} or :name with an object, ? with an array."


@register
class DbQuery(_Query, _Postgres):
    type_name = "db.query"
    category: ClassVar[Category] = "source"
    display_name = "Database query"
    description = _QUERY_SOURCE.format(label="PostgreSQL") + _QUERY_PARAMETERS


@register
class DbQueryTransform(_Query, _Postgres):
    type_name = "db.query"
    category: ClassVar[Category] = "transform"
    display_name = "Database query"
    description = _QUERY_TRANSFORM.format(label="PostgreSQL") + _QUERY_PARAMETERS


@register
class MysqlQuery(_Query, _MySql):
    type_name = "mysql.query"
    category: ClassVar[Category] = "source"
    display_name = "MySQL query"
    description = _QUERY_SOURCE.format(label="MySQL or MariaDB") + _QUERY_PARAMETERS


@register
class MysqlQueryTransform(_Query, _MySql):
    type_name = "mysql.query"
    category: ClassVar[Category] = "transform"
    display_name = "MySQL query"
    description = _QUERY_TRANSFORM.format(label="MySQL or MariaDB") + _QUERY_PARAMETERS


def _key_problems(config: Mapping[str, Any]) -> Problems:
    key = config.get("key")
    if key is None:
        return {}
    if config["mode"] != "upsert":
        return {"key": ["Only used when mode is upsert."]}
    if not key or not all(isinstance(column, str) and column for column in key):
        return {"key": ["Must be a non-empty array of column names."]}
    return {}


class _Write(DatabaseNodeType):
    """Writes object records as rows, in one transaction; returns no records."""

    category: ClassVar[Category] = "sink"
    icon = "database-backup"
    fields = (
        ConfigField("connection", "string", "Connection name (WORKFLOW_CONNECTION_<NAME>)", required=True),
        ConfigField("table", "string", "Table (or schema.table)", required=True),
        ConfigField("mode", "string", "Mode", default="upsert", choices=("upsert", "insert")),
        ConfigField("key", "array", "Key columns of the upsert (optional)"),
        ConfigField(
            "idempotencyColumn",
            "string",
            "Idempotency column (upsert without key)",
            default="_idempotency_key",
        ),
        ConfigField("batchSize", "integer", "Rows per batch", default=1000),
        ConfigField("timeout", "any", "Statement timeout (30s, 500ms, or seconds)", default="30s"),
    )

    def check(self, config: Mapping[str, Any], sandbox: Sandbox) -> Problems:
        problems = {
            **credential_problems(config),
            **connection_problems(config, self.schemes, self.label, sandbox),
            **table_problems(config),
            **_key_problems(config),
            **timeout_problems(config),
        }
        if not _IDENTIFIER.fullmatch(config["idempotencyColumn"]):
            problems["idempotencyColumn"] = ["Must be a column name: letters, digits, _ and $, up to 63."]
        if not 1 <= config["batchSize"] <= MAX_BATCH_SIZE:
            problems["batchSize"] = [f"Must be between 1 and {MAX_BATCH_SIZE}."]
        return problems


_WRITE = (
    "Writes object records (keys are columns) into a table of a named {label} connection, in one "
    "transaction. upsert (the default) updates the row with the same key columns, or, without key, the same "
    "idempotency column (the table needs a unique index on it), so a re-run writes nothing twice; insert "
    "adds rows without conflict handling. Objects and arrays are written as JSON."
)


@register
class DbWrite(_Write, _Postgres):
    type_name = "db.write"
    display_name = "Database write"
    description = _WRITE.format(label="PostgreSQL")


@register
class MysqlWrite(_Write, _MySql):
    type_name = "mysql.write"
    display_name = "MySQL write"
    description = _WRITE.format(label="MySQL or MariaDB") + " MySQL upserts on any unique key of the table."
