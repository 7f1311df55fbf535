"""The history checker: what every cluster scenario must leave behind, read straight from its database.

It reads the scenario's PostgreSQL with psycopg (Django's connection points at the session database) and
asserts the engine's invariants over the whole history, whatever faults the scenario injected:

- per execution, the journal's ``seq`` is contiguous 1..n and ``n`` is the head row's ``last_seq``;
- the writer ``epoch`` never decreases along ``seq``: no stale owner committed after a newer one (fence);
- every accepted command was applied exactly once: processed, with a ``processed_seq``, and the one event it
  stands for (``WorkflowStarted``, or the node attempt's outcome) is in the journal once, at or before it;
- every execution reached a terminal state, ``completed``, its journal ending in one ``WorkflowCompleted``;
- each node of each execution has exactly one ``NodeExecutionCompleted``;
- each sink file holds exactly the expected lines (every record once, nothing missing).

Failures name the execution and the ``seq``; all problems are gathered before failing, the first few shown.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

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


def _journal(
    execution_id: str, head: Mapping[str, Any], events: Sequence[tuple[int, str, dict[str, Any], int]]
) -> list[str]:
    problems = []
    where = f"execution {execution_id}"
    seqs = [seq for seq, *_ in events]
    if seqs != list(range(1, len(seqs) + 1)):
        gap = next(i + 1 for i, seq in enumerate([*seqs, None]) if seq != i + 1)
        problems.append(f"{where}: seq not contiguous from 1: expected seq {gap}, journal has {seqs[:50]}")
    if head["last_seq"] != len(events):
        problems.append(f"{where}: head last_seq={head['last_seq']} but the journal has {len(events)} events")
    for (seq, type_, _, epoch), (_, prev_type, _, prev_epoch) in zip(events[1:], events, strict=False):
        if epoch < prev_epoch:
            problems.append(
                f"{where}: seq {seq} ({type_}) written at epoch {epoch} after seq {seq - 1} ({prev_type}) at "
                f"epoch {prev_epoch}: a stale owner committed after a newer one"
            )
    if head["status"] != "completed":
        problems.append(
            f"{where}: status {head['status']!r}, expected 'completed' (last events: {events[-3:]})"
        )
    types = [type_ for _, type_, _, _ in events]
    if types.count("WorkflowCompleted") != 1 or (types and types[-1] != "WorkflowCompleted"):
        problems.append(f"{where}: expected one WorkflowCompleted as the last event, journal types {types}")
    if types.count("WorkflowStarted") != 1:
        problems.append(f"{where}: {types.count('WorkflowStarted')} WorkflowStarted events, expected 1")
    completed = Counter(p.get("nodeId") for _, t, p, _ in events if t == "NodeExecutionCompleted")
    for node in head["nodes"]:
        if completed[node] != 1:
            seqs_of = [
                s for s, t, p, _ in events if t == "NodeExecutionCompleted" and p.get("nodeId") == node
            ]
            problems.append(
                f"{where}: node {node!r} has {completed[node]} NodeExecutionCompleted "
                f"(seqs {seqs_of}), expected 1"
            )
    return problems


_OUTCOME_EVENT = {"node_succeeded": "NodeExecutionCompleted", "node_failed": "NodeExecutionFailed"}


def _commands(
    execution_id: str,
    commands: Sequence[Mapping[str, Any]],
    events: Sequence[tuple[int, str, dict[str, Any], int]],
) -> list[str]:
    problems = []
    if not any(c["type"] == "start" for c in commands):
        problems.append(f"execution {execution_id}: no start command in the inbox")
    for command in commands:
        where = f"execution {execution_id} command {command['id']!r} ({command['type']})"
        if command["processed_at"] is None or command["processed_seq"] is None:
            problems.append(
                f"{where}: not applied (processed_at={command['processed_at']}, "
                f"processed_seq={command['processed_seq']})"
            )
            continue
        matching = _events_for(command, events)
        if len(matching) != 1:
            problems.append(f"{where}: its event appears at seqs {matching}, expected exactly once")
        elif matching[0] > command["processed_seq"]:
            problems.append(
                f"{where}: its event is at seq {matching[0]}, after processed_seq {command['processed_seq']}"
            )
    return problems


def _events_for(
    command: Mapping[str, Any], events: Sequence[tuple[int, str, dict[str, Any], int]]
) -> list[int]:
    if command["type"] == "start":
        return [seq for seq, type_, _, _ in events if type_ == "WorkflowStarted"]
    wanted = _OUTCOME_EVENT.get(command["type"])
    node, attempt = command["payload"].get("nodeId"), command["payload"].get("attempt")
    return [
        seq
        for seq, type_, payload, _ in events
        if type_ == wanted and payload.get("nodeId") == node and payload.get("attempt") == attempt
    ]


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
