"""Execution control end to end on a real node: delays, cancel, pause and resume, retry from the failed nodes,
rerun, signals and approvals, workflow timeouts and concurrency policies."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from apps.workflows.models import Command, Event, Execution
from tests.conftest import make_token
from tests.harness import Api, wait_for
from tests.integration.test_executions import step, workflow

pytestmark = pytest.mark.usefixtures("live_db")


def create(api: Api, body: dict[str, Any]) -> str:
    status, created = api.post("/api/v1/workflows", body)
    assert status == 201, created
    return str(body["id"])


def start(api: Api, workflow_id: str) -> str:
    status, body = api.post(f"/api/v1/workflows/{workflow_id}/execute")
    assert status == 200 and body["status"] == "started", body
    return str(body["executionId"])


def types(execution_id: str) -> list[str]:
    return list(
        Event.objects.filter(execution_id=execution_id).order_by("seq").values_list("type", flat=True)
    )


def wait_event(execution_id: str, event_type: str, count: int = 1, timeout: float = 30) -> None:
    wait_for(
        f"{count} {event_type} of {execution_id}",
        lambda: types(execution_id).count(event_type) >= count,
        timeout=timeout,
    )


def delayed(workflow_id: str, duration: str, tmp: Path, **settings: Any) -> dict[str, Any]:
    body = workflow(
        workflow_id,
        [
            step("nums", "sequence.numbers", "source", start=1, end=3),
            step("wait", "delay", "transform", duration=duration),
            step("out", "file.text", "sink", path=str(tmp / f"{workflow_id}.txt")),
        ],
        [("nums", "wait"), ("wait", "out")],
    )
    if settings:
        body["settings"] = settings
    return body


def test_a_delay_waits_on_a_durable_timer_then_passes_its_inputs_on(
    api: Api, uid: str, tmp_path: Path
) -> None:
    execution_id = start(api, create(api, delayed(f"delay-{uid}", "1s", tmp_path)))
    done = api.wait_finished(execution_id)
    assert done["status"] == "completed"
    nodes = {n["nodeId"]: n for n in done["nodes"]}
    assert nodes["wait"]["endTime"] - nodes["wait"]["startTime"] >= 1000
    assert (tmp_path / f"delay-{uid}.txt").read_text().splitlines() == ["1", "2", "3"]


def test_cancel_ends_a_waiting_execution_cancelled(api: Api, uid: str, tmp_path: Path) -> None:
    execution_id = start(api, create(api, delayed(f"cancel-{uid}", "1h", tmp_path)))
    wait_event(execution_id, "NodeWaiting")
    status, body = api.post(f"/api/v1/executions/{execution_id}/cancel", {"reason": "not needed"})
    assert status == 202 and body["command"] == "cancel"
    done = api.wait_finished(execution_id)
    assert done["status"] == "cancelled" and "not needed" in done["error"]
    assert {n["nodeId"]: n["status"] for n in done["nodes"]}["wait"] == "cancelled"
    assert api.post(f"/api/v1/executions/{execution_id}/cancel")[0] == 409


def test_pause_holds_new_nodes_until_resume(api: Api, uid: str, tmp_path: Path) -> None:
    execution_id = start(api, create(api, delayed(f"pause-{uid}", "1s", tmp_path)))
    wait_event(execution_id, "NodeWaiting")
    assert api.post(f"/api/v1/executions/{execution_id}/pause")[0] == 202
    wait_event(execution_id, "WorkflowPaused")
    wait_event(execution_id, "NodeExecutionCompleted", count=2)  # the delay ends while paused...
    # every command applied: the apply that ended the delay has decided what starts next
    wait_for(
        "every command to be applied",
        lambda: not Command.objects.filter(execution_id=execution_id, processed_at=None).exists(),
    )
    started = Event.objects.filter(execution_id=execution_id, type="NodeExecutionStarted")
    assert sorted(e.payload["nodeId"] for e in started) == ["nums", "wait"], "...but the sink does not start"
    assert "WorkflowCompleted" not in types(execution_id)
    assert Execution.objects.get(pk=execution_id).status == "paused"
    assert api.post(f"/api/v1/executions/{execution_id}/pause")[0] == 409
    assert api.post(f"/api/v1/executions/{execution_id}/resume")[0] == 202
    assert api.wait_finished(execution_id)["status"] == "completed"
    assert types(execution_id).index("WorkflowResumed") < types(execution_id).index("WorkflowCompleted")


def test_retry_from_failed_reruns_only_the_failed_node_and_reuses_the_others(
    api: Api, uid: str, tmp_path: Path
) -> None:
    missing = tmp_path / "later.csv"
    body = workflow(
        f"retry-{uid}",
        [
            step("nums", "sequence.numbers", "source", start=1, end=2),
            step("late", "file.csv", "source", path=str(missing)),
            step("count", "aggregate.count", "sink"),
        ],
        [("nums", "count"), ("late", "count")],
    )
    execution_id = start(api, create(api, body))
    failed = api.wait_finished(execution_id)
    assert failed["status"] == "failed" and failed["failedNodeId"] == "late"
    missing.write_text("a\n1\n2\n3\n")
    assert api.post(f"/api/v1/executions/{execution_id}/retry")[0] == 202
    wait_event(execution_id, "WorkflowRetried")
    done = api.wait_finished(execution_id, timeout=30)
    assert done["status"] == "completed", done
    starts = Counter(n["nodeId"] for n in done["nodes"])
    assert starts == {"nums": 1, "late": 2, "count": 1}
    assert done["outputs"]["count"]["preview"] == [5]


def test_rerun_starts_a_new_execution_of_the_same_version(api: Api, uid: str, tmp_path: Path) -> None:
    wf_id = create(api, delayed(f"rerun-{uid}", "10ms", tmp_path))
    first = start(api, wf_id)
    api.wait_finished(first)
    changed = delayed(wf_id, "20ms", tmp_path)
    assert api.call("PUT", f"/api/v1/workflows/{wf_id}", changed)[0] == 200
    status, body = api.post(f"/api/v1/executions/{first}/rerun")
    assert status == 200 and body["status"] == "started" and body["executionId"] != first
    assert api.wait_finished(body["executionId"])["version"] == 1


def test_a_workflow_past_its_timeout_fails_with_the_reason(api: Api, uid: str, tmp_path: Path) -> None:
    execution_id = start(api, create(api, delayed(f"slow-{uid}", "1h", tmp_path, timeout="1s")))
    done = api.wait_finished(execution_id, timeout=30)
    assert done["status"] == "failed" and "timed out after 1s" in done["error"]


def signal_workflow(workflow_id: str) -> dict[str, Any]:
    return workflow(
        workflow_id,
        [
            step("order", "wait.signal", "source", name="order"),
            step("gate", "approval", "transform", name="approve"),
            step("out", "aggregate.count", "sink"),
        ],
        [("order", "gate"), ("gate", "out")],
    )


def restart_worker(node: dict[str, Any]) -> None:
    """SIGKILL the node's Celery worker (pool included); run_node starts a new one, a new cluster member."""
    import os
    import signal as signals

    from apps.cluster.models import ShardLease
    from tests.integration.test_recovery import celery_main

    worker = celery_main(node["proc"])
    old = {o for o in ShardLease.objects.values_list("owner", flat=True) if o}
    os.killpg(worker.pid, signals.SIGKILL)
    wait_for(
        "the restarted worker to own the shards",
        lambda: not old & set(ShardLease.objects.values_list("owner", flat=True)),
        timeout=60,
    )


def approver(node: dict[str, Any]) -> Api:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from rest_framework.authtoken.models import Token

    user, _ = get_user_model().objects.get_or_create(username="approver")
    user.user_permissions.add(Permission.objects.get(codename="approve_execution"))
    api: Api = node["api"]
    return Api(api.base, Token.objects.get_or_create(user=user)[0].key)


def test_signals_feed_a_waiting_node_and_only_an_allowed_user_approves(
    node: dict[str, Any], api: Api, uid: str
) -> None:
    execution_id = start(api, create(api, signal_workflow(f"sig-{uid}")))
    assert api.post(f"/api/v1/executions/{execution_id}/signals/order", {"item": "book", "qty": 2})[0] == 202
    wait_event(execution_id, "NodeWaiting", count=2)  # the approval waits now
    restart_worker(node)  # the wait is a row in PostgreSQL: it outlives the worker
    operator = Api(api.base, make_token("operator", "operator"))  # may signal, but not approve
    status, body = operator.post(f"/api/v1/executions/{execution_id}/signals/approve", {"comment": "ok"})
    assert status == 403 and "approve_execution" in body["message"]
    assert operator.post(f"/api/v1/executions/{execution_id}/signals/approve", {"comment": "ok"})[0] == 403
    status, _ = approver(node).post(f"/api/v1/executions/{execution_id}/signals/approve", {"comment": "ok"})
    assert status == 202
    done = api.wait_finished(execution_id)
    assert done["status"] == "completed"
    gate = next(n for n in done["nodes"] if n["nodeId"] == "gate")
    assert gate["approvedBy"] == "approver"
    assert done["outputs"]["order"]["preview"] == [{"item": "book", "qty": 2}]
    # outputs the engine completes itself (a signal's payload, an approval passing it on) count their bytes
    size = len(json.dumps([{"item": "book", "qty": 2}], separators=(",", ":")).encode())
    assert done["outputs"]["order"]["sizeBytes"] == size
    assert done["outputs"]["gate"]["sizeBytes"] == size


def test_a_rejection_fails_the_execution_naming_who_rejected(
    node: dict[str, Any], api: Api, uid: str
) -> None:
    execution_id = start(api, create(api, signal_workflow(f"rej-{uid}")))
    api.post(f"/api/v1/executions/{execution_id}/signals/order", {"item": "car"})
    wait_event(execution_id, "NodeWaiting", count=2)
    approver(node).post(f"/api/v1/executions/{execution_id}/signals/approve.reject", {"comment": "too dear"})
    done = api.wait_finished(execution_id)
    assert done["status"] == "failed" and "rejected by approver: too dear" in done["error"]


def concurrent_starts(api: Api, workflow_id: str, count: int) -> list[tuple[int, Any]]:
    results: list[tuple[int, Any]] = []
    barrier = threading.Barrier(count)

    def one() -> None:
        barrier.wait()
        results.append(api.post(f"/api/v1/workflows/{workflow_id}/execute"))

    threads = [threading.Thread(target=one) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


class RunningSampler(threading.Thread):
    """Samples how many executions of a workflow hold a slot (pending, running or paused)."""

    def __init__(self, workflow_id: str) -> None:
        super().__init__(daemon=True)
        self.workflow_id, self.peak, self.stop = workflow_id, 0, threading.Event()

    def run(self) -> None:
        from django.db import connection

        while not self.stop.wait(0.02):
            active = Execution.objects.filter(
                workflow_id=self.workflow_id, status__in=["pending", "running", "paused"]
            ).count()
            self.peak = max(self.peak, active)
        connection.close()


@pytest.mark.parametrize("policy", ["queue", "skip", "reject"])
def test_twenty_concurrent_starts_never_run_more_than_the_limit(
    api: Api, uid: str, tmp_path: Path, policy: str
) -> None:
    wf_id = create(
        api, delayed(f"conc-{policy}-{uid}", "1500ms", tmp_path, concurrency={"max": 2, "policy": policy})
    )
    sampler = RunningSampler(wf_id)
    sampler.start()
    results = concurrent_starts(api, wf_id, 20)
    outcomes = Counter(body["status"] if status == 200 else status for status, body in results)
    ids = [body["executionId"] for status, body in results if status == 200 and body["executionId"]]
    for execution_id in ids:
        api.wait_finished(execution_id, timeout=60)
    sampler.stop.set()
    sampler.join()
    assert sampler.peak <= 2, f"{sampler.peak} executions held a slot at once"
    expected = {
        "queue": {"started": 2, "queued": 18},
        "skip": {"started": 2, "skipped": 18},
        "reject": {"started": 2, 409: 18},
    }[policy]
    assert outcomes == expected
    finished = Counter(Execution.objects.filter(workflow_id=wf_id).values_list("status", flat=True))
    assert finished == {"completed": 20 if policy == "queue" else 2}


def task_workflow(
    workflow_id: str,
    task: str,
    retry: dict[str, Any] | None = None,
    timeout: str | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    call = step("call", "celery.task", "transform", task=task, kwargs=kwargs)
    if retry:
        call["retry"] = retry
    if timeout:
        call["timeout"] = timeout
    return workflow(
        workflow_id,
        [
            step("rows", "memory.collection", "source", data=[{"n": 1}, {"n": 2}, {"n": 3}]),
            call,
            step("out", "aggregate.count", "sink"),
        ],
        [("rows", "call"), ("call", "out")],
    )


def test_a_celery_task_node_runs_an_existing_task_and_passes_its_result_downstream(
    api: Api, uid: str
) -> None:
    wf = workflow(
        f"task-{uid}",
        [
            step("rows", "memory.collection", "source", data=[{"n": 1}, {"n": 2}, {"n": 3}]),
            step("sum", "celery.task", "transform", task="tests.total"),
            step("out", "console.log", "sink"),
        ],
        [("rows", "sum"), ("sum", "out")],
    )
    done = api.wait_finished(start(api, create(api, wf)))
    assert done["status"] == "completed", done
    assert done["outputs"]["sum"]["preview"] == [{"total": 6, "count": 3}]


def attempt_times(counter: Path, attempts: int) -> list[float]:
    return [float(Path(f"{counter}.{i}").read_text()) for i in range(1, attempts + 1)]


def test_a_node_failing_twice_then_succeeding_retries_with_growing_waits(
    api: Api, uid: str, tmp_path: Path
) -> None:
    counter = tmp_path / "flaky"
    retry = {
        "maxAttempts": 3,
        "backoff": "exponential",
        "initialInterval": "500ms",
        "multiplier": 3,
        "jitter": 0,
    }
    wf = task_workflow(f"flaky-{uid}", "tests.flaky", retry, counter=str(counter), failures=2)
    execution_id = start(api, create(api, wf))
    done = api.wait_finished(execution_id, timeout=60)
    assert done["status"] == "completed", done
    history = types(execution_id)
    assert history.count("NodeRetryScheduled") == 2 and history.count("NodeExecutionFailed") == 2
    delays = [
        e.payload["delayMs"]
        for e in Event.objects.filter(execution_id=execution_id, type="NodeRetryScheduled").order_by("seq")
    ]
    assert delays == [500, 1500]
    t1, t2, t3 = attempt_times(counter, 3)
    assert t2 - t1 >= 0.5 and t3 - t2 >= 1.5 and (t3 - t2) > (t2 - t1), "the waits grow"
    assert [n["attempt"] for n in done["nodes"] if n["nodeId"] == "call"] == [1, 2, 3]


def test_a_retry_wait_survives_a_worker_killed_during_it(
    node: dict[str, Any], api: Api, uid: str, tmp_path: Path
) -> None:
    from tests.integration.test_recovery import celery_main

    counter = tmp_path / "flaky"
    retry = {"maxAttempts": 3, "backoff": "fixed", "initialInterval": "4s", "jitter": 0}
    wf = task_workflow(f"killwait-{uid}", "tests.flaky", retry, counter=str(counter), failures=1)
    execution_id = start(api, create(api, wf))
    wait_event(execution_id, "NodeRetryScheduled")
    worker = celery_main(node["proc"])
    import os
    import signal as signals

    os.killpg(worker.pid, signals.SIGKILL)  # during the 4 s wait; run_node starts a new worker
    done = api.wait_finished(execution_id, timeout=60)
    assert done["status"] == "completed", done
    assert types(execution_id).count("NodeExecutionCompleted") == 3


def test_a_hung_attempt_is_failed_by_its_timeout_and_retried(api: Api, uid: str, tmp_path: Path) -> None:
    retry = {"maxAttempts": 2, "backoff": "fixed", "initialInterval": "100ms"}
    wf = task_workflow(f"hung-{uid}", "tests.hangs_once", retry, timeout="1s", counter=str(tmp_path / "hang"))
    execution_id = start(api, create(api, wf))
    done = api.wait_finished(execution_id, timeout=30)
    assert done["status"] == "completed", done
    failed = Event.objects.get(execution_id=execution_id, type="NodeExecutionFailed").payload
    assert failed["timedOut"] is True and "timed out after 1s" in failed["error"] and failed["willRetry"]


def test_the_admin_cancels_an_execution_with_an_action(api: Api, uid: str, tmp_path: Path) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    execution_id = start(api, create(api, delayed(f"admin-{uid}", "1h", tmp_path)))
    wait_event(execution_id, "NodeWaiting")
    admin_user, _ = get_user_model().objects.get_or_create(
        username="admin-actions", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(admin_user)
    response = client.post(
        "/admin/workflows/execution/", {"action": "cancel_executions", "_selected_action": [execution_id]}
    )
    assert response.status_code == 302
    done = api.wait_finished(execution_id)
    assert done["status"] == "cancelled" and "admin-actions" in done["error"]


def test_an_execution_input_reaches_the_execution_input_node(api: Api, uid: str) -> None:
    wf_id = create(
        api,
        workflow(
            f"input-{uid}",
            [step("in", "execution.input", "source"), step("out", "console.log", "sink")],
            [("in", "out")],
        ),
    )
    status, body = api.post(
        f"/api/v1/workflows/{wf_id}/execute", {"input": {"logicalTime": "2026-01-01T00:00Z"}}
    )
    assert status == 200
    done = api.wait_finished(body["executionId"])
    assert done["outputs"]["in"]["preview"] == [{"logicalTime": "2026-01-01T00:00Z"}]
    assert api.post(f"/api/v1/workflows/{wf_id}/execute", {"input": [1]})[0] == 400
