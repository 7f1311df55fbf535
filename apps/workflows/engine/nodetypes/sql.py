"""``sql.query``'s description, and the config checks every SQL node shares (``databases.py`` too).

A query is one statement whose parameters bind (``engine/sqltext.py``), with a bounded timeout. Whether the
statement parses takes DuckDB's parser, which the engine does not import: the sandbox carries it
(``Sandbox.sql_parser``, given by ``apps/workflows/nodes/sandbox.py``); without it, validation counts the
statements itself and leaves the syntax to the run, where DuckDB refuses it (``SQL_SYNTAX_ERROR``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apps.workflows.engine.dsl import Problems
from apps.workflows.engine.nodetypes.base import ConfigField, NodeType, register
from apps.workflows.engine.policies import duration_ms, duration_problem
from apps.workflows.engine.sandbox import Sandbox
from apps.workflows.engine.sqltext import Dialect, ParameterError, bind, statement_count

# The longest statement timeout of sql.query, db.* and mysql.* (docs/security.md): a query is not a job queue.
MAX_QUERY_TIMEOUT_MS = 3_600_000


def timeout_seconds(value: Any) -> float:
    """Seconds from a validated ``timeout`` (``"30s"``, ``"500ms"``, ``5``)."""
    return (duration_ms(value, MAX_QUERY_TIMEOUT_MS) or 0) / 1000


def timeout_problems(config: Mapping[str, Any], key: str = "timeout") -> Problems:
    if problem := duration_problem(config[key], maximum_ms=MAX_QUERY_TIMEOUT_MS):
        return {key: [problem]}
    return {}


def max_rows_problems(config: Mapping[str, Any]) -> Problems:
    if config.get("maxRows") is not None and config["maxRows"] < 1:
        return {"maxRows": ["Must be at least 1."]}
    return {}


def sql_problems(config: Mapping[str, Any]) -> Problems:
    return {"sql": ["SQL query cannot be empty"]} if not config["sql"].strip() else {}


def parameter_problems(sql: str, parameters: Any, dialect: Dialect) -> Problems:
    """``check`` helper: what binding ``parameters`` into ``sql`` would refuse."""
    if parameters is not None and not isinstance(parameters, (dict, list)):
        return {"parameters": ["Must be an object (for {{name}} and :name) or an array (for ?)."]}
    try:
        bind(sql, parameters, dialect)
    except ParameterError as exc:
        return {"parameters": [str(exc)]}
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

    def check(self, config: Mapping[str, Any], sandbox: Sandbox) -> Problems:
        problems = {**sql_problems(config), **timeout_problems(config), **max_rows_problems(config)}
        if problems:
            return problems
        parameters = config.get("parameters")
        return parameter_problems(config["sql"], parameters, "duckdb") or _statement_problems(
            bind(config["sql"], parameters, "duckdb").text, sandbox
        )


def _statement_problems(text: str, sandbox: Sandbox) -> Problems:
    """Parse (without running) the bound statement: a syntax error is a 400 when the workflow is defined."""
    if sandbox.sql_parser is not None:
        problem = sandbox.sql_parser(text)
    elif (count := statement_count(text, "duckdb")) != 1:
        problem = f"Give exactly one SQL statement, not {count}."
    else:
        problem = None
    return {"sql": [problem]} if problem else {}
