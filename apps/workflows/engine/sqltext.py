"""SQL text, read as the databases read it: tokens, parameter binding and statement counting. Pure.

Parameters are always passed to the driver, never spliced into the text. The SQL is tokenized so that
``{{name}}``, ``:name`` and ``?`` are rewritten to the driver's placeholders only outside string literals,
quoted identifiers and comments; ``::casts`` are left alone. Validation uses it (``engine/nodetypes/sql.py``:
one statement, parameters that bind) and so do the nodes that run the queries (``apps/workflows/nodes``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Dialect = Literal["duckdb", "postgres", "mysql"]


class ParameterError(ValueError):
    """A placeholder without a value, or a count mismatch: the definition must change."""


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
