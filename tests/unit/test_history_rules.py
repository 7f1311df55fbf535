"""The history rules (apps/workflows/engine/history.py), shared by the live invariant checker and the fault
campaign's checker: each rule holds on a healthy history and names what breaks it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from apps.workflows.engine import history as h


def ev(seq: int, type_: str, epoch: int = 1, **payload: Any) -> h.JournalEvent:
    return (seq, type_, payload, epoch)


def healthy() -> list[h.JournalEvent]:
    """A two-node run: a's first attempt failed, its second completed, then b."""
    return [
        ev(1, "WorkflowStarted"),
        ev(2, "NodeExecutionStarted", nodeId="a", attempt=1),
        ev(3, "NodeExecutionFailed", nodeId="a", attempt=1),
        ev(4, "NodeExecutionStarted", epoch=2, nodeId="a", attempt=2),
        ev(5, "NodeExecutionCompleted", epoch=2, nodeId="a", attempt=2),
        ev(6, "NodeExecutionStarted", epoch=2, nodeId="b", attempt=1),
        ev(7, "NodeExecutionCompleted", epoch=2, nodeId="b", attempt=1),
        ev(8, "WorkflowCompleted", epoch=2),
    ]


def commands() -> list[dict[str, Any]]:
    def cmd(id_: str, type_: str, seq: int, **payload: Any) -> dict[str, Any]:
        return {"id": id_, "type": type_, "payload": payload, "processed_at": "t", "processed_seq": seq}

    return [
        cmd("c1", "start", 2),
        cmd("c2", "node_failed", 4, nodeId="a", attempt=1),
        cmd("c3", "node_succeeded", 6, nodeId="a", attempt=2),
        cmd("c4", "node_succeeded", 8, nodeId="b", attempt=1),
    ]


def kinds(problems: list[h.Problem]) -> list[str]:
    return [p.kind for p in problems]


def test_a_healthy_finished_history_breaks_no_rule() -> None:
    events = healthy()
    assert h.journal_problems(8, events) == []
    assert h.ending_problems("completed", ["a", "b"], events) == []
    assert h.command_problems(commands(), events) == []


def test_a_missing_seq_is_a_gap_named_by_the_first_seq_missing() -> None:
    events = [e for e in healthy() if e[0] != 3]

    found = h.journal_problems(8, events)

    assert kinds(found) == [h.SEQ_GAP, h.LAST_SEQ_MISMATCH]
    assert found[0].seq == 3 and "expected seq 3" in found[0].detail
    assert found[1].detail == "head last_seq=8 but the journal has 7 events"


def test_a_head_that_disagrees_with_a_contiguous_journal_is_a_last_seq_mismatch() -> None:
    assert kinds(h.journal_problems(9, healthy())) == [h.LAST_SEQ_MISMATCH]


def test_an_event_at_a_lower_epoch_than_the_one_before_is_a_stale_writer() -> None:
    events = healthy()
    events[5] = ev(6, "NodeExecutionStarted", epoch=1, nodeId="b", attempt=1)

    found = h.journal_problems(8, events)

    assert kinds(found) == [h.EPOCH_REGRESSION]
    assert found[0].seq == 6 and "a stale owner committed after a newer one" in found[0].detail


def test_two_outcomes_of_one_attempt_are_a_duplicated_outcome() -> None:
    events = [*healthy()[:7], ev(8, "NodeExecutionFailed", epoch=2, nodeId="b", attempt=1)]

    found = h.journal_problems(8, events)

    assert kinds(found) == [h.OUTCOME_DUPLICATED]
    assert found[0].seq == 8 and "attempt 1 of node 'b' has 2 outcome events" in found[0].detail


def test_a_second_workflow_started_is_a_duplicated_outcome() -> None:
    events = [*healthy(), ev(9, "WorkflowStarted", epoch=2)]
    assert kinds(h.journal_problems(9, events)) == [h.OUTCOME_DUPLICATED]


def test_an_unfinished_execution_breaks_the_ending_rules() -> None:
    events = healthy()[:6]

    found = h.ending_problems("running", ["a", "b"], events)

    assert kinds(found) == [h.WRONG_END_STATE, h.WRONG_END_STATE, h.NODE_COMPLETED_NOT_ONCE]
    assert "node 'b' has 0 NodeExecutionCompleted" in found[2].detail


def test_a_node_completed_twice_and_a_second_start_break_the_ending_rules() -> None:
    events = [
        *healthy()[:7],
        ev(8, "NodeExecutionCompleted", nodeId="b", attempt=2),
        ev(9, "WorkflowCompleted"),
    ]
    events.insert(0, ev(0, "WorkflowStarted"))

    assert kinds(h.ending_problems("completed", ["a", "b"], events)) == [
        h.STARTED_NOT_ONCE,
        h.NODE_COMPLETED_NOT_ONCE,
    ]


def test_a_command_not_applied_or_applied_twice_or_late_is_named() -> None:
    inbox = commands()
    inbox[1] = {**inbox[1], "processed_at": None, "processed_seq": None}
    inbox[2] = {**inbox[2], "processed_seq": 4}  # its event is at seq 5
    events = [*healthy(), ev(9, "NodeExecutionCompleted", epoch=2, nodeId="b", attempt=1)]

    found = h.command_problems(inbox, events)

    assert kinds(found) == [
        h.COMMAND_NOT_APPLIED,
        h.COMMAND_EVENT_AFTER_PROCESSED_SEQ,
        h.COMMAND_APPLIED_NOT_ONCE,
    ]
    assert (
        found[2].detail
        == "command 'c4' (node_succeeded): its event appears at seqs [7, 9], expected exactly once"
    )


def test_an_inbox_without_a_start_and_an_applied_command_without_its_event_are_named() -> None:
    inbox = commands()[1:]
    events = [e for e in healthy() if e[1] != "NodeExecutionFailed"]

    assert kinds(h.command_problems(inbox, events)) == [h.NO_START_COMMAND, h.COMMAND_APPLIED_NOT_ONCE]


def test_each_schedule_fires_exactly_once_per_fire_time() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    times = [t0 + timedelta(minutes=i) for i in range(3)]
    fired = [("s1", times[0]), ("s1", times[2]), ("s1", times[2]), ("s1", t0 - timedelta(hours=1))]
    fired += [("s2", t) for t in times]

    found = h.schedule_fire_problems(fired, {"s1": times, "s2": times})

    assert kinds(found) == [h.SCHEDULE_FIRE_MISSING, h.SCHEDULE_FIRED_TWICE, h.SCHEDULE_FIRE_UNEXPECTED]
    assert all(p.detail.startswith("schedule s1: ") for p in found)
    assert h.schedule_fire_problems(fired[4:], {"s2": times}) == []
