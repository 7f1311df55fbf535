"""The journal on a real worker: contiguous sequences, snapshots, and replay when a snapshot is bad."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction

from apps.workflows.engine import state as st
from apps.workflows.models import Event, Execution, Snapshot
from apps.workflows.services import definitions, executions, journal
from tests.harness import Api
from tests.integration.test_executions import minimal, run, step, workflow
from workflow_engine.errors import Conflict

pytestmark = pytest.mark.usefixtures("live_db")


def chain(workflow_id: str, length: int) -> dict[str, Any]:
    nodes = [step("n0", "sequence.numbers", "source", start=1, end=3)]
    nodes += [step(f"n{i}", "map", "transform", expression="value + 1") for i in range(1, length - 1)]
    nodes.append(step(f"n{length - 1}", "aggregate.count", "sink"))
    return workflow(workflow_id, nodes, [(f"n{i}", f"n{i + 1}") for i in range(length - 1)])


def fan_out(workflow_id: str, sinks: int, directory: Any) -> dict[str, Any]:
    """A source into many file sinks: each sink's result is applied on its own, so the journal grows."""
    nodes = [step("src", "sequence.numbers", "source", start=1, end=2)]
    nodes += [step(f"out{i}", "file.text", "sink", path=str(directory / f"{i}.txt")) for i in range(sinks)]
    return workflow(workflow_id, nodes, [("src", f"out{i}") for i in range(sinks)])


def test_snapshots_are_taken_every_snapshot_every_events_and_match_a_full_replay(
    api: Api, uid: str, tmp_path: Any
) -> None:
    execution_id = run(api, fan_out(f"snap-{uid}", 20, tmp_path))["executionId"]  # 1 + 2 + 2 x 20 + 1 events
    execution = Execution.objects.get(pk=execution_id)
    assert execution.last_seq == 44
    assert list(Event.objects.filter(execution=execution).values_list("seq", flat=True)) == list(range(1, 45))
    # the test profile snapshots every 10 events and keeps the last 2; the first batch alone has 23 events
    snapshots = list(Snapshot.objects.filter(execution=execution).order_by("seq"))
    assert 1 <= len(snapshots) <= 2 and snapshots[0].seq >= 23
    replayed = st.fold(
        st.ExecutionState(execution_id, execution.workflow_id), journal.events_of(execution_id)
    )
    assert replayed.status == st.ExecutionStatus.COMPLETED
    for snap in snapshots:
        assert st.fold(st.from_json(snap.state), journal.events_of(execution_id, snap.seq)) == replayed


def test_a_corrupt_snapshot_falls_back_to_a_full_replay(api: Api, uid: str) -> None:
    execution_id = run(api, chain(f"corrupt-{uid}", 12))["executionId"]  # 26 events in one batch
    execution = Execution.objects.get(pk=execution_id)
    assert Snapshot.objects.filter(execution=execution).update(state={"schema": 1, "garbage": True}) == 1
    journal.cache.drop(execution_id)
    replayed = st.fold(
        st.ExecutionState(execution_id, execution.workflow_id), journal.events_of(execution_id)
    )
    assert journal.hydrate(execution) == replayed


def test_deleting_a_workflow_with_a_running_execution_answers_409_and_deletes_nothing(uid: str) -> None:
    with transaction.atomic():
        workflow_row = definitions.create(minimal(f"busy-{uid}"))
        executions.start(workflow_row.id)  # pending, never committed: no worker sees it
        with pytest.raises(Conflict):
            definitions.delete(workflow_row.id)
        assert Execution.objects.filter(workflow_id=workflow_row.id).count() == 1
        transaction.set_rollback(True)


def test_deleting_a_finished_workflow_removes_it_with_its_executions(api: Api, uid: str) -> None:
    wf_id = f"gone-{uid}"
    execution_id = run(api, minimal(wf_id))["executionId"]
    status, _ = api.call("DELETE", f"/api/v1/workflows/{wf_id}")
    assert status == 200
    assert api.get(f"/api/v1/workflows/{wf_id}")[0] == 404
    assert not Execution.objects.filter(pk=execution_id).exists()
    assert not Event.objects.filter(execution_id=execution_id).exists()
