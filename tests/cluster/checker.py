"""The history checker: what every cluster scenario must leave behind, read straight from its database.

It reads the scenario's PostgreSQL with psycopg (Django's connection points at the session database) and
asserts the engine's invariants over the whole history, whatever faults the scenario injected:

- per execution, the journal's ``seq`` is contiguous 1..n and ``n`` is the head row's ``last_seq``;
- the writer ``epoch`` never decreases along ``seq``: no stale owner committed after a newer one (fence);
- each node attempt has at most one outcome event, and the journal one ``WorkflowStarted``;
- every accepted command was applied exactly once: processed, with a ``processed_seq``, and the one event it
  stands for (``WorkflowStarted``, or the node attempt's outcome) is in the journal once, at or before it;
- every execution reached a terminal state, ``completed``, its journal ending in one ``WorkflowCompleted``;
- each node of each execution has exactly one ``NodeExecutionCompleted``;
- each sink file holds exactly the expected lines (every record once, nothing missing);
- with ``check_schedules``, each schedule fired exactly once per expected fire time.

The rules themselves are pure functions over plain data in ``apps/workflows/engine/history.py``, shared with
the live store's invariant checker (``services/invariants.py``); this module reads, and prefixes each problem
with its execution.

Failures name the execution and the ``seq``; all problems are gathered before failing, the first few shown.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from apps.workflows.engine import history

SHOWN = 25  # problems quoted in a failure message; the count says how many there were


@dataclass
class History:
    """What the checker read, for scenario-specific assertions after it passed."""

    executions: dict[str, dict[str, Any]]
    events: dict[
        str, list[tuple[int, str, dict[str, Any], int]]
    ]  # execution -> [(seq, type, payload, epoch)]
    commands: dict[str, list[dict[str, Any]]]
    problems: list[str] = field(default_factory=list)

    def epochs(self, execution_id: str) -> list[int]:
        return [epoch for *_, epoch in self.events[execution_id]]


def load(dsn: str, execution_ids: Sequence[str] | None = None) -> History:
    """Executions, their journals and their inbox commands (all executions unless ``execution_ids``)."""
    where, params = ("WHERE e.id = ANY(%s)", [list(execution_ids)]) if execution_ids is not None else ("", [])
    with psycopg.connect(dsn, connect_timeout=10) as conn:
        executions = {
            row[0]: {"status": row[1], "last_seq": row[2], "nodes": _node_ids(row[3]), "shard_id": row[4]}
            for row in conn.execute(
                "SELECT e.id, e.status, e.last_seq, v.definition, e.shard_id FROM workflows_execution e "
                f"JOIN workflows_workflowversion v ON v.id = e.version_id {where}",
                params,
            )
        }
        ids = list(executions)
        events: dict[str, list[tuple[int, str, dict[str, Any], int]]] = defaultdict(list)
        for execution_id, seq, type_, payload, epoch in conn.execute(
            "SELECT execution_id, seq, type, payload, epoch FROM workflows_event "
            "WHERE execution_id = ANY(%s) ORDER BY execution_id, seq",
            [ids],
        ):
            events[execution_id].append((seq, type_, payload, epoch))
        commands: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in conn.execute(
            "SELECT execution_id, id, type, payload, processed_at, processed_seq FROM workflows_command "
            "WHERE execution_id = ANY(%s) ORDER BY execution_id, created_at, id",
            [ids],
        ):
            keys = ("execution_id", "id", "type", "payload", "processed_at", "processed_seq")
            commands[row[0]].append(dict(zip(keys, row, strict=True)))
    return History(executions, dict(events), dict(commands))


def _node_ids(definition: Mapping[str, Any]) -> list[str]:
    return [node["id"] for node in definition["nodes"]]


def check(
    dsn: str,
    *,
    expected: int | None = None,
    execution_ids: Sequence[str] | None = None,
    sinks: Mapping[Path, Sequence[str]] | None = None,
) -> History:
    """Assert the invariants over the scenario's history; returns what was read.

    ``expected`` is how many executions the scenario started (so a lost one is noticed too), and ``sinks``
    maps each sink file to the exact lines it must hold.
    """
    history = load(dsn, execution_ids)
    problems = history.problems
    if expected is not None and len(history.executions) != expected:
        problems.append(
            f"{len(history.executions)} executions in the database, the scenario started {expected}"
        )
    if execution_ids is not None:
        missing = sorted(set(execution_ids) - set(history.executions))
        problems.extend(f"execution {e}: accepted by the API but not in the database" for e in missing)
    for execution_id, head in sorted(history.executions.items()):
        events = history.events.get(execution_id, [])
        problems.extend(_journal(execution_id, head, events))
        problems.extend(_commands(execution_id, history.commands.get(execution_id, []), events))
    for path, lines in (sinks or {}).items():
        problems.extend(_sink(path, lines))
    if problems:
        shown = "\n  ".join(problems[:SHOWN])
        more = f"\n  ... and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        raise AssertionError(f"history check failed: {len(problems)} problem(s)\n  {shown}{more}")
    return history


# The rules are apps/workflows/engine/history.py's, shared with the live invariant checker and bench/chaos.py;
# here each problem is prefixed with its execution.


def _journal(
    execution_id: str, head: Mapping[str, Any], events: Sequence[tuple[int, str, dict[str, Any], int]]
) -> list[str]:
    """The journal at any moment, then what a finished scenario implies: completed, each node once."""
    problems = [
        *history.journal_problems(head["last_seq"], events),
        *history.ending_problems(head["status"], head["nodes"], events),
    ]
    return [f"execution {execution_id}: {p.detail}" for p in problems]


def _commands(
    execution_id: str,
    commands: Sequence[Mapping[str, Any]],
    events: Sequence[tuple[int, str, dict[str, Any], int]],
) -> list[str]:
    """Every command applied, its one event in the journal once (``history.command_problems``)."""
    return [
        f"execution {execution_id}{': ' if p.kind == history.NO_START_COMMAND else ' '}{p.detail}"
        for p in history.command_problems(commands, events)
    ]


def schedule_fires(dsn: str, schedule_ids: Sequence[str] | None = None) -> list[tuple[str, Any]]:
    """``(schedule_id, fire_time)`` of the schedules' fires that started or queued an execution (not the
    backfills' fires, which have a uniqueness of their own)."""
    where, params = (
        ("AND schedule_id = ANY(%s)", [list(schedule_ids)]) if schedule_ids is not None else ("", [])
    )
    with psycopg.connect(dsn, connect_timeout=10) as conn:
        rows = conn.execute(
            "SELECT schedule_id, fire_time FROM schedules_schedulefire "
            f"WHERE backfill_id IS NULL AND outcome IN ('started', 'queued') {where} "
            "ORDER BY schedule_id, fire_time",
            params,
        ).fetchall()
    return [(schedule_id, fire_time) for schedule_id, fire_time in rows]


def check_schedules(dsn: str, expected: Mapping[str, Sequence[Any]]) -> None:
    """Assert each schedule in ``expected`` fired exactly once at each of its fire times, and at no other."""
    fired = schedule_fires(dsn, list(expected))
    problems = [p.detail for p in history.schedule_fire_problems(fired, expected)]
    if problems:
        raise AssertionError(
            f"schedule check failed: {len(problems)} problem(s)\n  " + "\n  ".join(problems[:SHOWN])
        )


def _sink(path: Path, expected: Sequence[str]) -> list[str]:
    if not path.exists():
        return [f"sink {path}: missing"]
    lines = path.read_text().splitlines()
    if lines == list(expected):
        return []
    doubled = sorted(line for line, n in Counter(lines).items() if n > 1)
    missing = sorted(set(expected) - set(lines))
    return [
        f"sink {path}: {len(lines)} lines, expected {len(expected)}; doubled {doubled[:10]}, "
        f"missing {missing[:10]}, first lines {lines[:5]}"
    ]
