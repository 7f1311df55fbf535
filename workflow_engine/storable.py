"""What PostgreSQL's ``jsonb`` can store, checked before a value reaches the journal.

``jsonb`` refuses what Python's ``json`` happily writes or reads: ``NaN`` and infinities
(``float("1e400")`` is ``inf``), the NUL character (``\\u0000``) in a string or a key, and lone UTF-16
surrogates (``"\\ud800"``). One such value in an apply's rows fails the whole apply, every time it is
retried, so it must be refused where it enters: a node output fails its node (``records_problem``), and free
text (an exception's message, a log line) is made storable (``text``). Pure: no Django, so the API layer can
check request bodies with it too."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

# An error message or a log line longer than this is cut: an exception's text may hold a whole payload.
MAX_TEXT = 8192
# Nesting deeper than this is refused: Python's encoder and PostgreSQL's parser both recurse.
MAX_DEPTH = 400

_NUL_ESCAPED = b"\\u0000"
_STORABLE_SCALARS = (str, int, float, bool, type(None))


class Unstorable(ValueError):
    """A value ``jsonb`` cannot store; the message names where it is and what it is."""


def encode(value: Any, label: str = "value") -> bytes:
    """``value`` as compact UTF-8 JSON, or ``Unstorable`` naming the first part ``jsonb`` would refuse.

    The common case costs one ``json.dumps`` and one ``encode``, both in C; the walk that names the culprit
    runs only when something is wrong.
    """
    return _checked(value, label)[1]


def dumps(value: Any, label: str = "value") -> str:
    """As ``encode``, as text (a query parameter)."""
    return _checked(value, label)[0]


def _checked(value: Any, label: str) -> tuple[str, bytes]:
    try:
        out = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        data = out.encode()  # fails on a lone surrogate, which jsonb refuses too
    except (ValueError, TypeError, RecursionError, UnicodeEncodeError):
        raise Unstorable(problem(value, label) or f"{label} cannot be written as JSON") from None
    if _NUL_ESCAPED in data:
        found = problem(value, label)  # the text "\\u0000" (backslash, u, ...) is fine: only look closer
        if found:
            raise Unstorable(found)
    return out, data


def problem(value: Any, label: str = "value") -> str | None:
    """A clear sentence about the first part of ``value`` that ``jsonb`` cannot store, or ``None``."""
    for path, found in _walk(value, (), 0):
        return f"{label}{_describe(path)} is {found}"
    return None


def records_problem(records: list[Any]) -> str | None:
    """As ``problem``, for a node's output: ``output record 3 field 'x' is Infinity, ...``."""
    for index, record in enumerate(records):
        found = problem(record, f"output record {index}")
        if found:
            return found
    return None


def _walk(value: Any, path: tuple[Any, ...], depth: int) -> Iterator[tuple[tuple[Any, ...], str]]:
    if depth > MAX_DEPTH:
        yield path, f"nested deeper than {MAX_DEPTH} levels, more than the journal takes"
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            yield path, f"{_non_finite(value)}, which JSON cannot store"
    elif isinstance(value, str):
        reason = _bad_text(value)
        if reason:
            yield path, f"a text with {reason}, which PostgreSQL cannot store"
    elif isinstance(value, Mapping):
        yield from _walk_mapping(value, path, depth)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _walk(item, (*path, index), depth + 1)
    elif not isinstance(value, _STORABLE_SCALARS):
        yield path, f"of type {type(value).__name__}, which JSON cannot store"


def _walk_mapping(value: Mapping[Any, Any], path: tuple[Any, ...], depth: int) -> Iterator[Any]:
    for key, item in value.items():
        reason = _bad_text(key) if isinstance(key, str) else None
        if reason:
            yield path, f"an object with a key holding {reason}, which PostgreSQL cannot store"
            return
        if not isinstance(key, _STORABLE_SCALARS):
            yield path, f"an object with a {type(key).__name__} key, which JSON cannot store"
            return
        yield from _walk(item, (*path, key), depth + 1)


def _non_finite(value: float) -> str:
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _bad_text(text: str) -> str | None:
    if "\x00" in text:
        return "a NUL character (\\u0000)"
    try:
        text.encode()
    except UnicodeEncodeError:
        return "a lone UTF-16 surrogate"
    return None


def _describe(path: tuple[Any, ...]) -> str:
    described = "".join(
        f" item {step}" if isinstance(step, int) and not isinstance(step, bool) else f" field {step!r}"
        for step in path[:8]
    )
    return described + (f" (and {len(path) - 8} levels more)" if len(path) > 8 else "")


def text(value: str, limit: int = MAX_TEXT) -> str:
    """``value`` made storable: NUL characters and lone surrogates replaced by U+FFFD, cut to ``limit``."""
    if len(value) > limit:
        value = value[:limit] + f"... ({len(value) - limit} more characters)"
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode()
    except UnicodeEncodeError:
        value = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
    return value


def scrub(value: Any, depth: int = 0) -> Any:
    """A storable copy of ``value`` for engine-made rows (events, logs): texts as ``text`` (uncut), non-finite
    numbers as ``None``, anything else as its ``str``. Never for records: those fail their node instead."""
    if isinstance(value, str):
        return text(value, limit=len(value))
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int):
        return value
    if depth > MAX_DEPTH:
        return None
    if isinstance(value, Mapping):
        return {text(str(k), limit=len(str(k))): scrub(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, depth + 1) for v in value]
    return text(str(value))
