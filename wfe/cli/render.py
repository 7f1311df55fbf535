"""Tables for people (``--output table``); ``--output json`` prints the API's objects instead."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.table import Table

from wfe.cli.context import out

STATUS_STYLE = {
    "completed": "green",
    "failed": "red",
    "cancelled": "yellow",
    "running": "cyan",
    "waiting": "magenta",
    "paused": "magenta",
    "queued": "dim",
    "pending": "dim",
}


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def status(value: Any) -> str:
    text = cell(value)
    style = STATUS_STYLE.get(text)
    return f"[{style}]{text}[/]" if style else text


def millis(value: Any) -> str:
    """An epoch-millisecond time as ISO (the original's fields); other values as they are."""
    if isinstance(value, int | float) and value > 10**11:
        return datetime.fromtimestamp(value / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return cell(value)


def duration(ms: Any) -> str:
    if not isinstance(ms, int | float):
        return ""
    if ms < 1000:
        return f"{int(ms)} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return f"{int(ms // 60_000)} m {int(ms % 60_000 / 1000)} s"


def table(rows: Iterable[dict[str, Any]], columns: Sequence[str], *, title: str | None = None) -> None:
    """``rows`` as a table of ``columns`` (API field names); status columns are coloured."""
    grid = Table(title=title, show_lines=False, header_style="bold")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*(status(row.get(c)) if c == "status" else cell(row.get(c)) for c in columns))
    out.print(grid)


def fields(obj: dict[str, Any], keys: Sequence[str] | None = None, *, title: str | None = None) -> None:
    """One object as a two-column table of its fields."""
    grid = Table(show_header=False, title=title, box=None)
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for key in keys or list(obj):
        if key in obj:
            value = obj[key]
            grid.add_row(key, status(value) if key == "status" else cell(value))
    out.print(grid)
