"""The Python builder of definitions (``wfe.builder``, issue 14 item 4): the DSL it writes, its offline
validation by the pure engine, and the mistakes it refuses at build time. The API accepting what it builds,
and running it, is tests/integration/test_builder_api.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from apps.workflows.engine import validation
from apps.workflows.engine.sandbox import Sandbox
from apps.workflows.engine.urlpolicy import AllowList
from wfe.builder import Concurrency, Retry, Schedule, Workflow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def orders() -> Workflow:
    wf = Workflow("orders", name="Orders", tags=["etl"])
    nums = wf.source("sequence.numbers", id="nums", start=1, end=5)
    big = wf.transform("filter", id="big", condition="value > 2")
    log = wf.sink("console.log", id="log")
    nums >> big >> log
    return wf


def test_a_chain_is_the_dsl_with_edges_in_order_and_nodes_laid_out_by_depth() -> None:
    assert orders().to_dict() == {
        "id": "orders",
        "name": "Orders",
        "tags": ["etl"],
        "nodes": [
            {
                "id": "nums",
                "type": "source",
                "nodeType": "sequence.numbers",
                "position": {"x": 0, "y": 0},
                "config": {"start": 1, "end": 5},
            },
            {
                "id": "big",
                "type": "transform",
                "nodeType": "filter",
                "position": {"x": 250, "y": 0},
                "config": {"condition": "value > 2"},
            },
            {
                "id": "log",
                "type": "sink",
                "nodeType": "console.log",
                "position": {"x": 500, "y": 0},
                "config": {},
            },
        ],
        "edges": [
            {"id": "e1", "source": "nums", "target": "big"},
            {"id": "e2", "source": "big", "target": "log"},
        ],
    }
    assert json.loads(orders().to_json()) == orders().to_dict()


def test_fan_out_and_fan_in_connect_each_node_of_a_list() -> None:
    wf = Workflow("diamond")
    a = wf.source("sequence.numbers", id="a", start=1, end=3)
    b, c = (
        wf.transform("map", id="b", expression="value * 2"),
        wf.transform("map", id="c", expression="value"),
    )
    d = wf.sink("aggregate.count", id="d")
    assert (a >> [b, c] >> d) is d
    body = wf.to_dict()
    assert [(e["id"], e["source"], e["target"]) for e in body["edges"]] == [
        ("e1", "a", "b"),
        ("e2", "a", "c"),
        ("e3", "b", "d"),
        ("e4", "c", "d"),
    ]
    assert {n["id"]: n["position"] for n in body["nodes"]} == {
        "a": {"x": 0, "y": 0},
        "b": {"x": 250, "y": 0},
        "c": {"x": 250, "y": 120},
        "d": {"x": 500, "y": 0},
    }
    assert body["name"] == "diamond"  # the id, when no name is given
    assert wf.validate() == {}


def test_it_rebuilds_the_fan_in_fan_out_example_exactly() -> None:
    expected = json.loads((EXAMPLES / "fan-in-fan-out.json").read_text())
    wf = Workflow(
        "fan-in-fan-out",
        name="Two sources, one transform, two sinks",
        description="Numbers from two sources are doubled, then both logged and counted.",
        version="1.0",
        author="workflow-engine",
        tags=["example", "dag"],
        metadata=expected["metadata"],
    )
    small = wf.source("sequence.numbers", id="small", label="1..5", position=(0, 0), start=1, end=5)
    large = wf.source("memory.collection", id="large", label="100, 200", position=(0, 100), data=[100, 200])
    double = wf.transform("map", id="double", label="x 2", position=(200, 50), expression="value * 2")
    log = wf.sink("console.log", id="log", label="log", position={"x": 400, "y": 0}, limit=10)
    count = wf.sink("aggregate.count", id="count", label="count", position=(400, 100))
    [small, large] >> double >> [log, count]
    assert wf.to_dict() == expected


def test_policies_schedules_and_edge_options_are_written_as_the_dsl_has_them() -> None:
    wf = Workflow(
        "nightly",
        retry=Retry(max_attempts=3, backoff="fixed", initial_interval="1s"),
        timeout="10m",
        concurrency=Concurrency(max=2, policy="queue"),
        schedule=Schedule("cron", cron="30 2 * * MON-FRI", timezone="Europe/Berlin", overlap_policy="skip"),
    )
    wf.source(
        "http.request",
        id="call",
        retry={"maxAttempts": 5, "retryOn": "all"},
        timeout="30s",
        config={"url": "https://api.example.com/x", "timeout": "5s"},  # the request's own timeout
    )
    out = wf.sink("console.log", id="out")
    edge = wf.connect("call", "out", id="main", label="records", source_handle="out", target_handle="in")
    body = wf.to_dict()
    assert body["settings"] == {
        "retry": {"maxAttempts": 3, "backoff": "fixed", "initialInterval": "1s"},
        "timeout": "10m",
        "concurrency": {"max": 2, "policy": "queue"},
    }
    assert body["metadata"] == {
        "schedule": {
            "enabled": True,
            "scheduleType": "cron",
            "cronExpression": "30 2 * * MON-FRI",
            "timezone": "Europe/Berlin",
            "overlapPolicy": "skip",
        }
    }
    assert body["nodes"][0]["retry"] == {"maxAttempts": 5, "retryOn": "all"}
    assert body["nodes"][0]["timeout"] == "30s"
    assert body["nodes"][0]["config"] == {"url": "https://api.example.com/x", "timeout": "5s"}
    assert body["edges"] == [
        {
            "id": "main",
            "source": "call",
            "target": "out",
            "label": "records",
            "sourceHandle": "out",
            "targetHandle": "in",
        }
    ]
    assert edge.id == "main" and wf["out"] is out
    # the engine reads the same policies back
    parsed = validation.validate(body, Sandbox(http_allow=AllowList.parse(["api.example.com"])))
    assert parsed.policies.concurrency.max_running == 2 and parsed.policies.timeout_ms == 600_000
    assert parsed.node("call").timeout_ms == 30_000


def test_nodes_without_ids_are_named_after_their_type_and_edges_ids_stay_unique() -> None:
    wf = Workflow("auto")
    first = wf.source("sequence.numbers", start=1, end=2)
    second = wf.transform("filter", condition="value > 0")
    third = wf.transform("filter", condition="value > 1")
    wf.connect(first, second, id="e2")  # takes the id the next automatic edge would have had
    second >> third >> wf.sink("console.log")
    assert [n.id for n in wf.nodes] == ["sequence.numbers", "filter", "filter-2", "console.log"]
    assert [e.id for e in wf.edges] == ["e2", "e3", "e4"]


# --- offline validation ------------------------------------------------------------------------------------


def test_validation_finds_the_problems_the_api_would_name_by_the_same_field_paths() -> None:
    wf = Workflow("bad")
    nums = wf.source("sequence.numbers", id="nums", start=1, end=5)
    nums >> wf.transform("filter", id="keep") >> wf.sink("no.such.type", id="out")
    problems = wf.validate()
    assert set(problems) == {"nodes[1].config.condition", "nodes[2].nodeType"}, problems
    with pytest.raises(validation.DefinitionInvalid) as raised:
        validation.validate(wf.to_dict(), Sandbox())
    assert problems == raised.value.problems


def test_a_cycle_and_an_empty_workflow_are_validation_problems() -> None:
    assert Workflow("empty").validate() == {"nodes": ["A workflow needs at least one node."]}
    wf = Workflow("loop")
    a, b = wf.transform("map", id="a", expression="value"), wf.transform("map", id="b", expression="value")
    a >> b >> a
    assert wf.validate()  # named by the engine, and the layout still places both
    assert len({json.dumps(n["position"]) for n in wf.to_dict()["nodes"]}) == 2


def test_checks_of_the_servers_configuration_count_only_under_a_given_sandbox(tmp_path: Path) -> None:
    wf = Workflow("files")
    wf.source("file.csv", id="people", path="people.csv") >> wf.sink("console.log", id="log")
    assert wf.validate() == {}  # only the server knows its file roots
    refused = wf.validate(Sandbox())
    assert (
        list(refused) == ["nodes[0].config.path"]
        and "WORKFLOW_FILE_ROOTS" in refused["nodes[0].config.path"][0]
    )
    assert wf.validate(Sandbox(file_roots=(tmp_path,))) == {}


# --- mistakes at build time --------------------------------------------------------------------------------


def two_nodes() -> tuple[Workflow, Any, Any]:
    wf = Workflow("w")
    return wf, wf.source("sequence.numbers", id="a"), wf.sink("console.log", id="b")


@pytest.mark.parametrize(
    ("mistake", "message"),
    [
        (lambda wf, a, b: wf.source("map", id="a"), "already has a node 'a'"),
        (lambda wf, a, b: wf.connect("a", "zz"), "has no node 'zz' (its nodes: a, b)"),
        (lambda wf, a, b: a >> Workflow("other").sink("console.log", id="c"), "belongs to workflow 'other'"),
        (lambda wf, a, b: a >> a, "cannot be connected to itself"),
        (lambda wf, a, b: (a >> b, a >> b), "already has an edge 'a' -> 'b'"),
        (lambda wf, a, b: (wf.connect(a, b, id="x"), wf.connect(b, a, id="x")), "edge with id 'x'"),
        (lambda wf, a, b: wf.node("map", id="x/y"), "may not contain '/'"),
        (lambda wf, a, b: wf.node("map", id="x" * 201), "at most 200 characters"),
        (lambda wf, a, b: wf.node("map", id=""), "non-blank string"),
        (lambda wf, a, b: wf.node("map", kind="task"), "kind must be one of source, transform, sink"),
        (lambda wf, a, b: wf.node("filter", config={"condition": "1"}, condition="2"), "given both"),
        (lambda wf, a, b: wf.node("map", retry=Retry(max_attempts=0)), "retry.maxAttempts"),
        (lambda wf, a, b: wf.node("map", timeout="forever"), "timeout"),
        (lambda wf, a, b: wf.node("map", position=(1,)), "position of node 'map'"),
        (lambda wf, a, b: Workflow("w", concurrency={"policy": "sometimes"}), "settings.concurrency.policy"),
        (lambda wf, a, b: Workflow("w", tags="etl"), "list of strings"),
        (lambda wf, a, b: Workflow("a/b"), "may not contain '/'"),
        (lambda wf, a, b: Workflow("w", schedule=Schedule("cron"), metadata={"schedule": {}}), "once"),
    ],
)
def test_mistakes_raise_a_value_error_naming_the_problem(mistake: Any, message: str) -> None:
    wf, a, b = two_nodes()
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        mistake(wf, a, b)


def test_shifting_into_something_other_than_a_node_is_a_type_error() -> None:
    _, a, _ = two_nodes()
    with pytest.raises(TypeError):
        a >> 5  # type: ignore[operator]


def test_to_dict_returns_a_new_dict_each_time() -> None:
    wf = orders()
    body = wf.to_dict()
    body["nodes"][0]["config"]["start"] = 99
    body["tags"].append("changed")
    assert wf.to_dict() == orders().to_dict()


def test_the_builder_loads_without_django_or_a_server() -> None:
    code = (
        "import sys, wfe.builder as b\n"
        "server = ('django', 'celery', 'redis', 'rest_framework')\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in server]\n"
        "wf = b.Workflow('x')\n"
        "wf.source('sequence.numbers', id='s', start=1, end=2) >> wf.sink('console.log')\n"
        "assert wf.validate() == {}\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(EXAMPLES.parent)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
