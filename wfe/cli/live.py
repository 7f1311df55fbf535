"""``--watch``: a live table of an execution's nodes and a progress bar of nodes done, redrawn as the
execution's event stream (SSE) reports changes. Each batch of events triggers one fetch of the execution, at
most ``REFRESH`` apart, so a burst of events costs one request; nothing is fetched while nothing happens."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group, RenderableType
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from wfe.cli import render
from wfe.cli.context import out
from wfe.client import Client
from wfe.errors import ENDED, WaitTimeout

REFRESH = 0.25  # seconds between two fetches of the execution while events arrive
# Events after which the execution may stay quiet for long (a wait, a pause): drawn at once, so that the
# screen never shows a stale state while nothing arrives to trigger the next fetch.
SETTLING = frozenset({"NodeWaiting", "WorkflowPaused", "NodeRetryScheduled"})


def node_rows(execution: dict[str, Any], order: list[str]) -> list[dict[str, Any]]:
    """One row per node (its latest attempt), in the definition's order; nodes not started yet are pending."""
    latest: dict[str, dict[str, Any]] = {}
    for attempt in execution.get("nodes", []):
        node_id = attempt.get("nodeId", "")
        if node_id not in latest or attempt.get("attempt", 1) >= latest[node_id].get("attempt", 1):
            latest[node_id] = attempt
    ids = order + [n for n in latest if n not in order]
    return [latest.get(n, {"nodeId": n, "status": "pending", "attempt": 0}) for n in ids]


def view(execution: dict[str, Any], order: list[str], progress: Progress, task: Any) -> RenderableType:
    rows = node_rows(execution, order)
    grid = Table(
        title=f"{execution.get('executionId')} ({execution.get('workflowId')} v{execution.get('version')}): "
        f"{render.status(execution.get('status'))}",
        header_style="bold",
    )
    for column in ("node", "type", "status", "attempts", "records", "duration"):
        grid.add_column(column, justify="right" if column in ("attempts", "records", "duration") else "left")
    now_ms = time.time() * 1000
    for row in rows:
        took = row.get("duration")
        if took is None and row.get("status") in ("running", "waiting") and row.get("startTime"):
            took = now_ms - row["startTime"]
        grid.add_row(
            row.get("nodeId", ""),
            row.get("nodeType", ""),
            render.status(row.get("status")),
            str(row.get("attempt", 0)),
            render.cell(row.get("recordsProcessed", "")),
            render.duration(took),
        )
    done = sum(1 for r in rows if r.get("status") == "completed")
    progress.update(task, total=max(len(rows), 1), completed=done)
    parts: list[RenderableType] = [grid, progress]
    if execution.get("error"):
        parts.append(f"[red]{execution['error']}[/]")
    return Group(*parts)


def node_order(client: Client, execution: dict[str, Any]) -> list[str]:
    """The node ids of the execution's pinned version, so that the bar counts nodes not started yet."""
    try:
        version = client.get_version(execution["workflowId"], execution["version"])
    except Exception:
        return []
    return [n.get("id", "") for n in version.get("definition", {}).get("nodes", []) if isinstance(n, dict)]


def watch(client: Client, execution_id: str, *, timeout: float | None = None) -> dict[str, Any]:
    """Show the execution live until it ends; the final execution. ``WaitTimeout`` after ``timeout`` s."""
    deadline = None if timeout is None else time.monotonic() + timeout
    execution = client.get_execution(execution_id)
    order = node_order(client, execution)
    progress = Progress(
        TextColumn("nodes done"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=out
    )
    task = progress.add_task("nodes", total=max(len(order), 1))
    fetched = time.monotonic()
    with Live(view(execution, order, progress, task), console=out, refresh_per_second=8) as live:
        if execution["status"] not in ENDED:
            for message in client.stream(execution_id, deadline=deadline):
                ended = message.event == "end"
                if ended or message.event in SETTLING or time.monotonic() - fetched >= REFRESH:
                    execution = client.get_execution(execution_id)
                    fetched = time.monotonic()
                    live.update(view(execution, order, progress, task))
                if ended:
                    break
        execution = client.get_execution(execution_id)
        live.update(view(execution, order, progress, task))
    WaitTimeout.unless_ended(execution_id, execution, timeout, server=client.url)
    return execution
