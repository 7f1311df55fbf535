"""Durable Celery canvases (``client.start_canvas``): real tasks (tests/integration/celery_tasks.py) on the
session node's worker, results as Celery gives them, a worker SIGKILLed in the middle, and the parts that do
not map."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from celery import chain, chord, group
from celery.canvas import Signature, chunks, xmap

from apps.workflows import canvas, client
from apps.workflows.errors import InvalidDefinition
from apps.workflows.models import Event, Execution, Workflow
from tests.harness import Api, wait_for
from tests.integration.test_control import create, start
from tests.integration.test_executions import step, workflow
from tests.integration.test_recovery import celery_main
from workflow_engine import redis_client
from workflow_engine.celery import app


def sig(name: str, *args: Any, **kwargs: Any) -> Signature:
    return app.signature(name, args=args, kwargs=kwargs)


def add(x: Any, *more: Any, tag: str) -> Signature:
    return sig("tests.canvas.add", x, *more, tag=tag)


def scale(factor: int, *, tag: str, block: str | None = None) -> Signature:
    return sig("tests.canvas.scale", factor, tag=tag, block=block)


def echo(*args: Any, tag: str) -> Signature:
    return sig("tests.canvas.echo", *args, tag=tag)


def effects(tag: str) -> dict[str, Any]:
    """Each step's effect, applied once per ``{execution}:{node}``."""
    raw = redis_client.client().hgetall(redis_client.key("canvas-effects", tag))
    return {k.decode(): json.loads(v) for k, v in raw.items()}


def runs(tag: str) -> list[str]:
    return [r.decode() for r in redis_client.client().lrange(redis_client.key("canvas-runs", tag), 0, -1)]


def the_canvas(tag: str, block: str | None = None) -> Any:
    """chain(group(a, b), chord(header, body)) and one more link: 3 and 7; 100 and 1000; 1100; 1105."""
    return chain(
        group(add(1, 2, tag=tag), add(3, 4, tag=tag)),
        chord([scale(10, tag=tag), scale(100, tag=tag, block=block)], sig("tests.canvas.total", tag=tag)),
        add(5, tag=tag),
    )


pytestmark = pytest.mark.usefixtures("live_db")


@pytest.fixture(autouse=True)
def allowed_tasks(settings: Any) -> None:
    """As the session node's processes (tests/conftest.py ``process_env``): this process validates the
    definitions ``start_canvas`` stores."""
    settings.WORKFLOW_CELERY_TASKS = ["*"]


# ------------------------------------------------------------------------------------------- what maps


def test_a_chain_of_a_group_and_a_chord_maps_to_task_nodes_passing_results_as_celery_does() -> None:
    body = canvas.to_definition(the_canvas("t"))
    nodes = {n["id"]: n for n in body["nodes"]}
    config = {n: (c["config"].get("task"), c["config"].get("recordsAs")) for n, c in nodes.items()}
    assert config == {
        "input": (None, None),
        "000-add": ("tests.canvas.add", "none"),  # first in the canvas: no parent result
        "001-add": ("tests.canvas.add", "none"),
        "002-scale": ("tests.canvas.scale", "arg"),  # after a group: the list of its results
        "003-scale": ("tests.canvas.scale", "arg"),
        "004-total": ("tests.canvas.total", "arg"),  # a chord's body: the list of the header's results
        "005-add": ("tests.canvas.add", "value"),  # in a chain: the previous result itself
    }
    edges = [(e["source"], e["target"]) for e in body["edges"]]
    assert edges == [
        ("input", "000-add"),
        ("input", "001-add"),
        ("000-add", "002-scale"),
        ("001-add", "002-scale"),
        ("000-add", "003-scale"),
        ("001-add", "003-scale"),
        ("002-scale", "004-total"),
        ("003-scale", "004-total"),
        ("004-total", "005-add"),
    ]
    assert [n["id"] for n in body["nodes"] if n["type"] == "sink"] == ["005-add"]
    assert all(n["config"]["resultAs"] == "value" for n in body["nodes"] if n["nodeType"] == "celery.task")
    assert canvas.to_definition(the_canvas("t"))["id"] == body["id"], "the id is the canvas's shape"
    assert canvas.to_definition(the_canvas("u"))["id"] != body["id"]


def test_immutable_signatures_queue_and_countdown_map() -> None:
    body = canvas.to_definition(
        chain(
            add(1, 2, tag="t"),
            echo("x", tag="t").set(queue="q1", countdown=2),
            echo("y", tag="t").set(immutable=True),
        )
    )
    nodes = {n["id"]: n for n in body["nodes"]}
    assert nodes["001-countdown"]["nodeType"] == "delay"
    assert nodes["001-countdown"]["config"] == {"duration": "2000ms"}
    assert nodes["002-echo"]["config"]["queue"] == "q1"
    assert nodes["002-echo"]["config"]["recordsAs"] == "value"
    assert nodes["003-echo"]["config"]["recordsAs"] == "none"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: add(1, 2, tag="t").set(link_error=sig("tests.total")), "link_error"),
        (lambda: add(1, 2, tag="t").set(link=sig("tests.total")), "link"),
        (lambda: add(1, 2, tag="t").set(eta="2030-01-01T00:00:00Z"), "eta"),
        (lambda: add(1, 2, tag="t").set(priority=5), "priority"),
        (lambda: add(1, 2, tag="t").set(expires=10), "expires"),
        (lambda: add(1, 2, tag="t").set(countdown=-1), "countdown"),
        (lambda: add(1, 2, tag="t").set(countdown=float("inf")), "countdown"),
        (lambda: chunks(sig("tests.total"), [(1,), (2,)], 1), "chunks"),
        (lambda: xmap(sig("tests.total"), [1, 2]), "celery.map"),
        (lambda: group(add(1, 2, tag="t"), queue="q"), r"Options of a group \(queue\)"),
        (lambda: group([]), "empty group"),
        (lambda: group(group(add(1, 2, tag="t"), add(1, 3, tag="t")), add(1, 4, tag="t")), "nested list"),
        (lambda: add(object(), 2, tag="t"), "not JSON"),
        (lambda: add((1, 2), (3,), tag="t"), "survive JSON"),
        (lambda: sig("celery.accumulate"), "built-in task 'celery.accumulate'"),
        (lambda: "tests.total", "not a Celery signature"),
    ],
)
def test_what_does_not_map_is_refused_naming_the_part(make: Any, message: str) -> None:
    with pytest.raises(canvas.CanvasNotSupported, match=message) as refused:
        canvas.to_definition(make())
    assert isinstance(refused.value, ValueError)


def test_start_canvas_writes_nothing_for_a_canvas_that_does_not_map() -> None:
    before = Workflow.objects.count(), Execution.objects.count()
    with pytest.raises(client.CanvasNotSupported, match="link_error"):
        client.start_canvas(chain(add(1, 2, tag="t"), echo(tag="t").set(link_error=sig("tests.total"))))
    assert (Workflow.objects.count(), Execution.objects.count()) == before


def test_a_task_the_sandbox_does_not_allow_is_refused_by_validation(settings: Any) -> None:
    settings.WORKFLOW_CELERY_TASKS = ["tests.canvas.add"]
    with pytest.raises(InvalidDefinition) as refused:
        client.start_canvas(chain(add(1, 2, tag="t"), echo(tag="t")))
    assert "'tests.canvas.echo' is not allowed" in json.dumps(refused.value.details)


# ------------------------------------------------------------------------------------- the node options


def test_records_as_value_fails_a_node_without_exactly_one_input_record(api: Api, uid: str) -> None:
    wf = workflow(
        f"value-{uid}",
        [
            step("rows", "memory.collection", "source", data=[{"n": 1}, {"n": 2}]),
            step("t", "celery.task", "sink", task="tests.total", recordsAs="value"),
        ],
        [("rows", "t")],
    )
    done = api.wait_finished(start(api, create(api, wf)))
    assert done["status"] == "failed"
    assert 'recordsAs "value" needs exactly one input record' in done["error"] and "got 2" in done["error"]
    assert Event.objects.filter(execution_id=done["executionId"], type="NodeRetryScheduled").count() == 0


def test_a_bad_result_as_is_a_problem_naming_the_field(api: Api, uid: str) -> None:
    wf = workflow(
        f"resultas-{uid}",
        [
            step("rows", "memory.collection", "source", data=[{"n": 1}]),
            step("t", "celery.task", "sink", task="tests.total", resultAs="list"),
        ],
        [("rows", "t")],
    )
    status, body = api.post("/api/v1/workflows", wf)
    assert status == 201 and body["valid"] is False, body  # saved as a draft, which no execution runs
    assert "Must be one of records, value; got 'list'" in body["problems"]["nodes[1].config.resultAs"][0]


# ------------------------------------------------------------------------------------------ running them


def test_a_chain_of_a_group_and_a_chord_runs_durably_and_gives_celerys_result(node: Any, uid: str) -> None:
    execution_id = client.start_canvas(the_canvas(uid))
    assert client.wait(execution_id, timeout=60) == "completed"
    assert client.canvas_result(execution_id) == 1105
    out = client.outputs(execution_id)
    assert [out[n] for n in ("000-add", "001-add", "002-scale", "003-scale", "004-total")] == [
        [3],
        [7],
        [100],
        [1000],
        [1100],
    ]
    assert sorted(v[0] for v in effects(uid).values()) == ["add", "add", "add", "scale", "scale", "total"]
    assert len(runs(uid)) == 6, "each task ran once"
    again = client.start_canvas(the_canvas(uid))
    assert Execution.objects.get(pk=again).workflow_id == Execution.objects.get(pk=execution_id).workflow_id


def test_values_reach_the_next_task_unchanged_and_an_immutable_task_gets_none(node: Any, uid: str) -> None:
    execution_id = client.start_canvas(
        chain(
            echo(tag=uid),  # returns [] : a list, kept as one value
            echo("x", tag=uid),  # gets it first: [[], "x"]
            group(echo(tag=uid), echo(1, tag=uid).set(immutable=True)),  # [[[], "x"]] and [1]
        )
    )
    assert client.wait(execution_id, timeout=60) == "completed"
    assert client.canvas_result(execution_id) == [[[[], "x"]], [1]]


def test_a_failing_task_is_retried_by_the_nodes_policy(node: Any, uid: str, tmp_path: Path) -> None:
    flaky = sig("tests.flaky", [], counter=str(tmp_path / "flaky"), failures=1).set(immutable=True)
    retry = {"maxAttempts": 2, "backoff": "fixed", "initialInterval": "100ms", "jitter": 0}
    execution_id = client.start_canvas(chain(add(1, 2, tag=uid), flaky), retry=retry, node_timeout="30s")
    assert client.wait(execution_id, timeout=60) == "completed"
    assert client.canvas_result(execution_id) == []
    history = Event.objects.filter(execution_id=execution_id, type="NodeRetryScheduled")
    assert [e.payload["nodeId"] for e in history] == ["001-flaky"]


def test_a_canvas_survives_sigkill_of_the_worker_running_a_task_and_applies_each_effect_once(
    node: dict[str, Any], uid: str
) -> None:
    block = f"block-{uid}"
    execution_id = client.start_canvas(the_canvas(uid, block=block))
    wait_for(
        "the blocking task to start", lambda: redis_client.client().get(redis_client.key(block, "started"))
    )
    completed = Event.objects.filter(execution_id=execution_id, type="NodeExecutionCompleted")
    # the group's adds, at least
    recorded = {f"{execution_id}:{e.payload['nodeId']}" for e in completed if e.payload["nodeId"] != "input"}
    worker = celery_main(node["proc"])
    os.killpg(worker.pid, signal.SIGKILL)  # the worker and its pool, the task in the middle of its run
    assert client.wait(execution_id, timeout=120) == "completed"
    assert client.canvas_result(execution_id) == 1105, "the same result as without the crash"
    applied = effects(uid)
    assert sorted(v[0] for v in applied.values()) == ["add", "add", "add", "scale", "scale", "total"]
    blocked = f"{execution_id}:003-scale"
    ran = runs(uid)
    assert ran.count(blocked) == 2, "the killed task ran again, under the same step key"
    assert len(recorded) >= 2 and all(ran.count(step) == 1 for step in recorded), (
        "a task whose result the journal holds never runs again"
    )
    # Another task may have run twice too: one that finished but whose result was still in flight to the
    # engine when the worker died (at-least-once). Its effect, keyed by the step, is still applied once.
