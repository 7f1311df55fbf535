"""Crash recovery and duplicate delivery on a real node: SIGKILL the worker, deliver commands twice."""

from __future__ import annotations

import csv
import signal
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from apps.cluster import identity
from apps.workflows.models import Command, Event, Execution
from apps.workflows.services import commands, dispatch, outcomes
from apps.workflows.services.runner import Outcome
from tests.harness import Api, wait_for
from tests.integration.test_data_wedge import _insert_pending
from tests.integration.test_executions import run, step, workflow
from workflow_engine import messaging

pytestmark = pytest.mark.usefixtures("live_db")


def celery_main(node_proc: Any) -> psutil.Process:
    """The Celery worker's main process under run_node (the leader of its own session)."""
    for child in psutil.Process(node_proc.pid).children():
        if "celery" in " ".join(child.cmdline()):
            return child
    raise AssertionError("no celery worker under run_node")


def after_the_messages_sent_so_far(api: Api, uid: str, shard_id: int, tmp_path: Path) -> None:
    """Wait until the worker has taken every message sent so far to the shard's queue and to the node queue:
    an execution of the same shard, hinted both ways after them, runs its Celery node and completes."""
    body = workflow(
        f"marker-{uid}",
        [
            step("s", "sequence.numbers", "source", start=1, end=1),
            step("out", "file.text", "sink", path=str(tmp_path / "marker.txt")),
        ],
        [("s", "out")],
    )
    assert api.post("/api/v1/workflows", body)[0] == 201
    marker = _insert_pending(body["id"], shard_id)
    dispatch.apply_hint(marker.id, shard_id)
    dispatch.apply_hint(marker.id, shard_id, recover=True)
    assert api.wait_finished(marker.id)["status"] == "completed"


def event_types(execution_id: str) -> list[tuple[int, str, str, int]]:
    rows = Event.objects.filter(execution_id=execution_id).order_by("seq")
    return [(e.seq, e.type, e.payload.get("nodeId", ""), e.epoch) for e in rows]


def test_a_worker_killed_mid_execution_is_recovered_and_nothing_runs_twice(
    node: dict[str, Any], uid: str, tmp_path: Path
) -> None:
    api: Api = node["api"]
    source, target = tmp_path / "big.csv", tmp_path / "big.txt"
    with source.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "word"])
        writer.writerows([i, f"w{i}"] for i in range(200_000))
    body = workflow(
        f"kill-{uid}",
        [
            step("read", "file.csv", "source", path=str(source)),
            step("words", "map", "transform", expression="word"),
            step("write", "file.text", "sink", path=str(target)),
        ],
        [("read", "words"), ("words", "write")],
    )
    assert api.post("/api/v1/workflows", body)[0] == 201
    execution_id = api.post(f"/api/v1/workflows/{body['id']}/execute")[1]["executionId"]

    wait_for(
        "the csv node to start",
        lambda: any(t == "NodeExecutionStarted" for _, t, _, _ in event_types(execution_id)),
        timeout=30,
        interval=0.01,
    )
    worker = celery_main(node["proc"])
    old_pids = {worker.pid, *(c.pid for c in worker.children(recursive=True))}
    import os

    os.killpg(worker.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    wait_for(
        "the old worker to die",
        lambda: (
            not any(
                psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in old_pids
            )
        ),
    )

    finished = api.wait_finished(execution_id, timeout=90)
    assert finished["status"] == "completed", finished
    history = event_types(execution_id)
    assert [seq for seq, *_ in history] == list(range(1, len(history) + 1))
    completed = [n for _, t, n, _ in history if t == "NodeExecutionCompleted"]
    assert sorted(completed) == ["read", "words", "write"]
    epochs = [epoch for *_, epoch in history]
    assert epochs == sorted(epochs), "the writer epoch never goes back"
    assert epochs[-1] > epochs[0], "the execution finished under the new owner (the kill was mid-flight)"
    lines = target.read_text().splitlines()
    assert lines == [f"w{i}" for i in range(200_000)], "no missing or doubled lines"
    print(f"recovered in {time.monotonic() - killed_at:.1f}s after SIGKILL")


def test_the_same_command_delivered_twice_produces_no_duplicate_event(
    api: Api, uid: str, tmp_path: Path
) -> None:
    target = tmp_path / "out.txt"
    body = workflow(
        f"dup-{uid}",
        [
            step("s", "sequence.numbers", "source", start=1, end=3),
            step("out", "file.text", "sink", path=str(target)),
        ],
        [("s", "out")],
    )
    execution_id = run(api, body)["executionId"]
    before = event_types(execution_id)
    execution = Execution.objects.get(pk=execution_id)
    commands_before = Command.objects.filter(execution_id=execution_id).count()

    # the file sink's result reported again (a redelivered or re-run node task): the inbox keeps one
    outcomes.report(execution, Outcome("out", 1, [], 3, 3))
    assert Command.objects.filter(execution_id=execution_id).count() == commands_before
    # the node task and the apply hint delivered again through Celery
    messaging.run_node_attempt(execution_id, "out", 1, {"s": 1})
    dispatch.apply_hint(execution_id, execution.shard_id)
    dispatch.apply_hint(execution_id, execution.shard_id, recover=True)
    # and applied directly by the shard's owner, twice
    from apps.cluster.models import ShardLease

    owner = ShardLease.objects.get(shard_id=execution.shard_id).owner
    assert owner
    saved = identity.current()
    identity.adopt(owner)
    try:
        commands.apply_pending(execution_id)
        commands.apply_pending(execution_id, recover=True)
    finally:
        identity.adopt(saved or "")
    after_the_messages_sent_so_far(api, uid, execution.shard_id, tmp_path)
    assert event_types(execution_id) == before
    assert target.read_text().splitlines() == ["1", "2", "3"]
    assert not Command.objects.filter(execution_id=execution_id, processed_at=None).exists()
