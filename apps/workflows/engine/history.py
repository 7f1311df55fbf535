"""The history rules: what a journal, its inbox and a schedule's fires must satisfy, over plain data.

One implementation for both readers of a history: the live store's invariant checker
(``services/invariants.py``, pages of journals) and the fault campaign's checker
(``tests/cluster/checker.py``, every history after the faults, also used by ``bench/chaos.py``). Each rule
takes lists and dicts, returns the ``Problem`` s it found (none when the rule holds), and names no
execution: the caller knows which one it passed, and says so in its own report.

A journal is a sequence of ``(seq, type, payload, epoch)`` in seq order (``JournalEvent``); only the outcome
events' ``payload`` is read (``nodeId``, ``attempt``), so a scan may pass an empty payload for the others.

Which rules hold when:

- ``journal_problems`` holds at every moment, for an execution in any state (a committed journal is always
  contiguous, matches its head row, and was written by owners in epoch order; ``decide`` never applies an
  attempt's outcome twice, and attempt numbers only grow, so one attempt has at most one outcome). The live
  checker runs it on every journal it pages through.
- ``ending_problems`` and ``command_problems`` hold once a history is finished and no command was stale: every
  execution completed, every accepted command applied with its one event. Only a campaign whose workload makes
  that true may assert them; on a live store an attempt's result arriving after its timeout or a cancel is
  applied with no event, by design.
- ``schedule_fire_problems``: each schedule fired exactly once per expected fire time.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

JournalEvent = tuple[int, str, Mapping[str, Any], int]  # (seq, type, payload, epoch)

# kinds of problem
SEQ_GAP = "journal_gap"  # seq is not 1..n
LAST_SEQ_MISMATCH = "last_seq_mismatch"  # n is not the head row's last_seq
EPOCH_REGRESSION = "epoch_regression"  # an event written at a lower epoch than the one before it
OUTCOME_DUPLICATED = "outcome_duplicated"  # an attempt's outcome, or the start, written twice
WRONG_END_STATE = "wrong_end_state"  # not completed, or its journal does not end in one WorkflowCompleted
STARTED_NOT_ONCE = "started_not_once"
NODE_COMPLETED_NOT_ONCE = "node_completed_not_once"
NO_START_COMMAND = "no_start_command"
COMMAND_NOT_APPLIED = "command_not_applied"
COMMAND_APPLIED_NOT_ONCE = "command_applied_not_once"
COMMAND_EVENT_AFTER_PROCESSED_SEQ = "command_event_after_processed_seq"
SCHEDULE_FIRE_MISSING = "schedule_fire_missing"
SCHEDULE_FIRED_TWICE = "schedule_fired_twice"
SCHEDULE_FIRE_UNEXPECTED = "schedule_fire_unexpected"

# the event each applied command stands for: the start, or the node attempt's outcome
OUTCOME_EVENT = {"node_succeeded": "NodeExecutionCompleted", "node_failed": "NodeExecutionFailed"}
OUTCOME_TYPES = frozenset(OUTCOME_EVENT.values())
SEQS_QUOTED = 50  # seqs quoted in a gap's detail


@dataclass(frozen=True)
class Problem:
    kind: str
    detail: str
    seq: int | None = None  # where in the journal, when one place is to blame


# --- a journal, at any moment -----------------------------------------------------------------------------


def journal_problems(last_seq: int, events: Sequence[JournalEvent]) -> list[Problem]:
    """Contiguous seq 1..n, n the head's ``last_seq``, epochs never going back, one outcome per attempt and
    one start."""
    return [
        *seq_problems(last_seq, [seq for seq, *_ in events]),
        *epoch_problems(events),
        *duplicate_outcomes(events),
    ]


def seq_problems(last_seq: int, seqs: Sequence[int]) -> list[Problem]:
    found = []
    if seqs != list(range(1, len(seqs) + 1)):
        gap = next(i + 1 for i, seq in enumerate([*seqs, None]) if seq != i + 1)
        found.append(
            Problem(
                SEQ_GAP,
                f"seq not contiguous from 1: expected seq {gap}, journal has {list(seqs[:SEQS_QUOTED])}",
                gap,
            )
        )
    if last_seq != len(seqs):
        found.append(
            Problem(LAST_SEQ_MISMATCH, f"head last_seq={last_seq} but the journal has {len(seqs)} events")
        )
    return found


def epoch_problems(events: Sequence[JournalEvent]) -> list[Problem]:
    """Each event written at a lower epoch than its predecessor: a stale owner committed after a newer one
    (invariant 1, the fence)."""
    return [
        Problem(
            EPOCH_REGRESSION,
            f"seq {seq} ({type_}) written at epoch {epoch} after seq {seq - 1} ({prev_type}) at "
            f"epoch {prev_epoch}: a stale owner committed after a newer one",
            seq,
        )
        for (seq, type_, _, epoch), (_, prev_type, _, prev_epoch) in zip(events[1:], events, strict=False)
        if epoch < prev_epoch
    ]


def duplicate_outcomes(events: Sequence[JournalEvent]) -> list[Problem]:
    """An attempt (node, attempt number) with more than one outcome event, or more than one
    ``WorkflowStarted``: a command's effect applied twice (invariant 2)."""
    seqs: dict[tuple[Any, Any], list[tuple[int, str]]] = defaultdict(list)  # (node, attempt) -> outcomes
    started = []
    for seq, type_, payload, _ in events:
        if type_ in OUTCOME_TYPES:
            seqs[(payload.get("nodeId"), payload.get("attempt"))].append((seq, type_))
        elif type_ == "WorkflowStarted":
            started.append(seq)
    found = [
        Problem(
            OUTCOME_DUPLICATED,
            f"attempt {attempt} of node {node!r} has {len(outcomes)} outcome events: "
            + ", ".join(f"{type_} at seq {seq}" for seq, type_ in outcomes),
            outcomes[1][0],
        )
        for (node, attempt), outcomes in seqs.items()
        if len(outcomes) > 1
    ]
    if len(started) > 1:
        found.append(Problem(OUTCOME_DUPLICATED, f"WorkflowStarted at seqs {started}", started[1]))
    return found


# --- a finished history -----------------------------------------------------------------------------------


def ending_problems(status: str, node_ids: Iterable[str], events: Sequence[JournalEvent]) -> list[Problem]:
    """A finished execution: completed, its journal ending in its one ``WorkflowCompleted``, started once,
    and each node of its definition completed exactly once."""
    found = []
    if status != "completed":
        found.append(
            Problem(
                WRONG_END_STATE,
                f"status {status!r}, expected 'completed' (last events: {list(events[-3:])})",
            )
        )
    types = [type_ for _, type_, _, _ in events]
    if types.count("WorkflowCompleted") != 1 or (types and types[-1] != "WorkflowCompleted"):
        found.append(
            Problem(
                WRONG_END_STATE, f"expected one WorkflowCompleted as the last event, journal types {types}"
            )
        )
    if types.count("WorkflowStarted") != 1:
        found.append(
            Problem(STARTED_NOT_ONCE, f"{types.count('WorkflowStarted')} WorkflowStarted events, expected 1")
        )
    completed: dict[Any, list[int]] = defaultdict(list)
    for seq, type_, payload, _ in events:
        if type_ == "NodeExecutionCompleted":
            completed[payload.get("nodeId")].append(seq)
    for node in node_ids:
        if len(completed[node]) != 1:
            found.append(
                Problem(
                    NODE_COMPLETED_NOT_ONCE,
                    f"node {node!r} has {len(completed[node])} NodeExecutionCompleted "
                    f"(seqs {completed[node]}), expected 1",
                )
            )
    return found


def command_problems(commands: Sequence[Mapping[str, Any]], events: Sequence[JournalEvent]) -> list[Problem]:
    """Every command (dicts with ``id``, ``type``, ``payload``, ``processed_at``, ``processed_seq``) applied,
    and the one event it stands for in the journal exactly once, at or before its ``processed_seq``. Pass
    only ``start`` and ``OUTCOME_EVENT`` commands for the one-event rule to mean anything: a signal or a timer
    has no one event of its own."""
    found = []
    if not any(c["type"] == "start" for c in commands):
        found.append(Problem(NO_START_COMMAND, "no start command in the inbox"))
    for command in commands:
        where = f"command {command['id']!r} ({command['type']})"
        if command["processed_at"] is None or command["processed_seq"] is None:
            found.append(
                Problem(
                    COMMAND_NOT_APPLIED,
                    f"{where}: not applied (processed_at={command['processed_at']}, "
                    f"processed_seq={command['processed_seq']})",
                )
            )
            continue
        matching = events_for(command, events)
        if len(matching) != 1:
            found.append(
                Problem(
                    COMMAND_APPLIED_NOT_ONCE,
                    f"{where}: its event appears at seqs {matching}, expected exactly once",
                )
            )
        elif matching[0] > command["processed_seq"]:
            found.append(
                Problem(
                    COMMAND_EVENT_AFTER_PROCESSED_SEQ,
                    f"{where}: its event is at seq {matching[0]}, "
                    f"after processed_seq {command['processed_seq']}",
                    matching[0],
                )
            )
    return found


def events_for(command: Mapping[str, Any], events: Sequence[JournalEvent]) -> list[int]:
    """The seqs of the event a command stands for: ``WorkflowStarted``, or its attempt's outcome."""
    if command["type"] == "start":
        return [seq for seq, type_, _, _ in events if type_ == "WorkflowStarted"]
    wanted = OUTCOME_EVENT.get(command["type"])
    node, attempt = command["payload"].get("nodeId"), command["payload"].get("attempt")
    return [
        seq
        for seq, type_, payload, _ in events
        if type_ == wanted and payload.get("nodeId") == node and payload.get("attempt") == attempt
    ]


# --- schedules --------------------------------------------------------------------------------------------


def schedule_fire_problems(
    fired: Iterable[tuple[Any, Any]], expected: Mapping[Any, Iterable[Any]]
) -> list[Problem]:
    """Each schedule fired exactly once per fire time: ``fired`` are the ``(schedule_id, fire_time)`` of the
    fire rows that started (or queued) an execution, ``expected`` the fire times each schedule had to fire.
    A schedule absent from ``expected`` is not judged (the caller did not say what it should have done)."""
    counts = Counter(fired)
    found = []
    for schedule_id, times in expected.items():
        where = f"schedule {schedule_id}"
        wanted = set(times)
        for fire_time in sorted(wanted):
            n = counts[(schedule_id, fire_time)]
            if n == 0:
                found.append(Problem(SCHEDULE_FIRE_MISSING, f"{where}: {fire_time} never fired"))
            elif n > 1:
                found.append(Problem(SCHEDULE_FIRED_TWICE, f"{where}: {fire_time} fired {n} times"))
        extra = sorted(t for s, t in counts if s == schedule_id and t not in wanted)
        found.extend(
            Problem(SCHEDULE_FIRE_UNEXPECTED, f"{where}: fired at {t}, not an expected fire time")
            for t in extra
        )
    return found
