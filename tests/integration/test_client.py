"""The in-process Python API (``apps.workflows.client``) on a real node: starts that join the caller's
transaction, many starts at once, and control (cancel, signal, approve) and outputs without HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction

from apps.workflows import client
from apps.workflows.models import Command, Event, Execution
from apps.workflows.services import dispatch
from tests.harness import wait_for
from tests.integration.test_control import wait_event
from tests.integration.test_executions import step, workflow
from workflow_engine.errors import Conflict, NotFound

pytestmark = pytest.mark.usefixtures("live_db", "node")


class _Rollback(Exception):
    pass


@pytest.fixture
def hints(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The executions whose wake-up hint was published, in order: a spy that still publishes each (start
    imports ``dispatch`` as a module, so this sees every hint it sends)."""
    sent: list[str] = []
    real = dispatch.apply_hint

    def spy(execution_id: str, shard_id: int, **kwargs: Any) -> None:
        sent.append(execution_id)
        real(execution_id, shard_id, **kwargs)

    monkeypatch.setattr(dispatch, "apply_hint", spy)
    yield sent


def written(workflow_id: str, tmp: Path) -> dict[str, Any]:
    """execution.input -> file.text: a file appears only if the execution really ran."""
    return workflow(
        workflow_id,
        [
            step("in", "execution.input", "source"),
            step("out", "file.text", "sink", path=str(tmp / f"{workflow_id}.txt")),
        ],
        [("in", "out")],
    )


def test_a_start_inside_a_rolled_back_transaction_starts_nothing(
    uid: str, tmp_path: Path, hints: list[str]
) -> None:
    wf_id = client.create_workflow(written(f"rollback-{uid}", tmp_path))
    started: list[str] = []
    with pytest.raises(_Rollback), transaction.atomic():
        started.append(client.start(wf_id, input={"n": 1}))
        assert Execution.objects.filter(pk=started[0]).exists()  # inside: the caller's transaction sees it
        raise _Rollback
    assert not Execution.objects.filter(pk=started[0]).exists()
    assert not Command.objects.filter(execution_id=started[0]).exists()
    assert hints == [], "no wake-up for an execution that was rolled back"
    # the node is idle and would have run it within a second or two: give it time, then look
    done = client.start(wf_id, input={"n": 2})
    assert client.wait(done, timeout=30) == "completed"
    assert not Execution.objects.filter(pk=started[0]).exists()
    assert (tmp_path / f"{wf_id}.txt").read_text().splitlines() == ['{"n":2}']


def test_a_start_inside_a_committed_transaction_is_hinted_on_commit_and_runs(
    uid: str, tmp_path: Path, hints: list[str]
) -> None:
    wf_id = client.create_workflow(written(f"commit-{uid}", tmp_path))
    with transaction.atomic():
        execution_id = client.start(wf_id, input={"n": 1})
        assert hints == [], "the hint waits for the commit: a worker could not see the row before it"
    assert hints == [execution_id]
    assert client.wait(execution_id, timeout=30) == "completed"
    assert (tmp_path / f"{wf_id}.txt").read_text().splitlines() == ['{"n":1}']


def test_a_start_that_fails_inside_the_callers_transaction_leaves_it_usable(uid: str, tmp_path: Path) -> None:
    wf_id = client.create_workflow(written(f"usable-{uid}", tmp_path))
    with transaction.atomic():
        first = client.start(wf_id, input={}, idempotency_key="k")
        with pytest.raises(NotFound):
            client.start(f"missing-{uid}")
        # a duplicate key is caught in a savepoint: the caller's transaction goes on
        assert client.start(wf_id, input={}, idempotency_key="k") == first
    assert client.wait(first, timeout=30) == "completed"


def test_start_many_starts_each_input_in_one_transaction(uid: str, hints: list[str]) -> None:
    wf_id = client.create_workflow(
        workflow(
            f"many-{uid}",
            [step("in", "execution.input", "source"), step("out", "console.log", "sink")],
            [("in", "out")],
        )
    )
    inputs: list[dict[str, Any] | None] = [{"i": i} for i in range(20)]
    keys: list[str | None] = [f"key-{i}" if i % 2 else None for i in range(20)]
    ids = client.start_many(wf_id, inputs, idempotency_keys=keys)
    assert len(set(ids)) == 20 and sorted(hints) == sorted(ids)
    for i, execution_id in enumerate(ids):
        assert client.wait(execution_id, timeout=60) == "completed"
        assert client.outputs(execution_id)["in"] == [{"i": i}]
    again = client.start_many(wf_id, inputs[1::2], idempotency_keys=keys[1::2])
    assert again == ids[1::2], "a key used before gives the earlier execution"


def test_start_many_starts_none_when_one_start_fails(uid: str, hints: list[str]) -> None:
    wf_id = client.create_workflow(
        workflow(
            f"manyfail-{uid}",
            [step("in", "execution.input", "source"), step("out", "console.log", "sink")],
            [("in", "out")],
        )
    )
    before = Execution.objects.filter(workflow_id=wf_id).count()
    with pytest.raises(ValueError, match="2 keys for 3 inputs"):
        client.start_many(wf_id, [{}, {}, {}], idempotency_keys=["a", "b"])
    # an input the journal cannot store fails the third start: the first two roll back with it
    with pytest.raises(ValueError):
        client.start_many(wf_id, [{"ok": 1}, {"ok": 2}, {"bad": "a\x00b"}])
    assert Execution.objects.filter(workflow_id=wf_id).count() == before
    assert hints == []


def control_workflow(workflow_id: str, tmp: Path) -> dict[str, Any]:
    return workflow(
        workflow_id,
        [
            step("order", "wait.signal", "source", name="order"),
            step("gate", "approval", "transform", name="approve"),
            step("wait", "delay", "transform", duration="1h"),
            step("out", "file.text", "sink", path=str(tmp / f"{workflow_id}.txt")),
        ],
        [("order", "gate"), ("gate", "wait"), ("wait", "out")],
    )


def test_signal_approve_outputs_and_cancel_through_the_client(uid: str, tmp_path: Path) -> None:
    wf_id = client.create_workflow(control_workflow(f"ctl-{uid}", tmp_path))
    execution_id = client.start(wf_id)
    client.signal(execution_id, "order", {"item": "book"}, by="script")
    wait_event(execution_id, "NodeWaiting", count=2)  # the approval waits now
    with pytest.raises(ValueError, match=r"no approval node or signal 'order'.*gate \(signal 'approve'\)"):
        client.approve(execution_id, "order")
    client.approve(execution_id, "gate", comment="fine", by="alice")  # by node id
    wait_event(execution_id, "NodeWaiting", count=3)  # the delay waits now
    assert client.outputs(execution_id) == {"order": [{"item": "book"}], "gate": [{"item": "book"}]}
    approved = Event.objects.get(
        execution_id=execution_id, type="NodeExecutionCompleted", payload__nodeId="gate"
    )
    assert approved.payload["approvedBy"] == "alice"
    client.cancel(execution_id, reason="changed my mind", by="alice")
    assert client.wait(execution_id, timeout=30) == "cancelled"
    assert "changed my mind" in Execution.objects.get(pk=execution_id).error
    with pytest.raises(Conflict, match="already ended"):
        client.cancel(execution_id)
    with pytest.raises(Conflict, match="takes no signals"):
        client.signal(execution_id, "order")
    assert not (tmp_path / f"{wf_id}.txt").exists()


def test_a_rejection_through_the_client_fails_the_execution_with_the_comment(
    uid: str, tmp_path: Path
) -> None:
    wf_id = client.create_workflow(control_workflow(f"rej-{uid}", tmp_path))
    execution_id = client.start(wf_id)
    client.signal(execution_id, "order", {"item": "book"})
    client.approve(execution_id, "approve", comment="too expensive", reject=True, by="bob")  # by signal
    assert client.wait(execution_id, timeout=30) == "failed"
    assert "rejected by bob: too expensive" in Execution.objects.get(pk=execution_id).error


def test_the_control_functions_name_an_unknown_execution(uid: str) -> None:
    missing = f"exec_missing{uid}"
    for call in (
        lambda: client.cancel(missing),
        lambda: client.signal(missing, "go"),
        lambda: client.approve(missing, "gate"),
        lambda: client.outputs(missing),
        lambda: client.canvas_result(missing),
    ):
        with pytest.raises(NotFound, match=missing):
            call()


def test_outputs_of_a_started_execution_without_outputs_is_empty(uid: str, tmp_path: Path) -> None:
    execution_id = client.start(client.create_workflow(control_workflow(f"empty-{uid}", tmp_path)))
    wait_for("the signal wait", lambda: Event.objects.filter(execution_id=execution_id).exists())
    assert client.outputs(execution_id) == {}
    client.cancel(execution_id)
