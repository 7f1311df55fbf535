"""The pure engine: DSL parsing, graph validation, decide/apply, snapshots and projections."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import pytest

from apps.workflows.engine import decide as d
from apps.workflows.engine import projections
from apps.workflows.engine import state as st
from apps.workflows.engine.graph import compile_graph
from apps.workflows.engine.validation import DefinitionInvalid, resolver, validate
from apps.workflows.nodes.sandbox import current_sandbox
from tests.harness import ORIGINAL_MINIMAL

MINIMAL = ORIGINAL_MINIMAL


def body(nodes: list[tuple[str, str, dict[str, Any]]], edges: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "id": "w",
        "name": "w",
        "nodes": [{"id": i, "nodeType": t, "config": c} for i, t, c in nodes],
        "edges": [{"id": f"e{n}", "source": s, "target": t} for n, (s, t) in enumerate(edges)],
    }


def problems_of(raw: Any) -> dict[str, list[str]]:
    with pytest.raises(DefinitionInvalid) as caught:
        validate(raw, current_sandbox())
    return caught.value.problems


def test_the_original_minimal_body_is_valid() -> None:
    wf = validate(MINIMAL, current_sandbox())
    assert [n.id for n in wf.nodes] == ["s", "k"] and wf.edges[0].target == "k"


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        (lambda b: b.update(nodes=[], edges=[]), "nodes", "at least one node"),
        (lambda b: b["nodes"][0].update(nodeType="shell"), "nodes[0].nodeType", "unknown nodeType 'shell'"),
        (lambda b: b["nodes"][0]["config"].update(start="one"), "nodes[0].config.start", "integer"),
        (lambda b: b["nodes"][1].update(id="s"), "nodes[1].id", "Duplicate id 's'"),
        (lambda b: b["edges"].append({"id": "e1", "source": "s", "target": "k"}), "edges[1].id", "Duplicate"),
        (lambda b: b["edges"][0].update(target="nope"), "edges[0].target", "unknown node 'nope'"),
        (lambda b: b.pop("nodes"), "nodes", "required"),
        (lambda b: b.update(edges="x"), "edges", "array"),
        (lambda b: b["nodes"][0].pop("nodeType"), "nodes[0].nodeType", "required"),
        (lambda b: b["nodes"][0].update(type="gizmo"), "nodes[0].type", "one of source"),
    ],
)
def test_an_invalid_definition_names_the_culprit(change: Any, field: str, fragment: str) -> None:
    raw = copy.deepcopy(MINIMAL)
    change(raw)
    problems = problems_of(raw)
    assert field in problems, problems
    assert fragment in " ".join(problems[field])


def test_a_missing_required_config_names_the_node_and_field() -> None:
    problems = problems_of(
        body(
            [("s", "sequence.numbers", {}), ("f", "filter", {}), ("k", "console.log", {})],
            [("s", "f"), ("f", "k")],
        )
    )
    assert "nodes[1].config.condition" in problems
    assert "'f'" in problems["nodes[1].config.condition"][0]


def test_a_cycle_is_reported_with_its_path() -> None:
    raw = body(
        [
            ("s", "sequence.numbers", {}),
            ("a", "distinct", {}),
            ("b", "distinct", {}),
            ("k", "console.log", {}),
        ],
        [("s", "a"), ("a", "b"), ("b", "a"), ("b", "k")],
    )
    assert "a -> b -> a" in problems_of(raw)["edges"][0]


@pytest.mark.parametrize(
    ("nodes", "edges", "fragment"),
    [
        ([("a", "distinct", {}), ("k", "console.log", {})], [("a", "k")], "source"),
        ([("s", "sequence.numbers", {}), ("a", "distinct", {})], [("s", "a")], "sink"),
    ],
)
def test_a_workflow_needs_a_source_and_a_sink(nodes: Any, edges: Any, fragment: str) -> None:
    assert any(fragment in p for p in problems_of(body(nodes, edges))["nodes"])


@pytest.mark.parametrize("raw", [[1, 2], "workflow", 42, None, {"id": 3}])
def test_a_body_that_is_not_the_dsl_is_refused(raw: Any) -> None:
    assert problems_of(raw)


def test_file_text_is_a_sink_when_it_has_inputs() -> None:
    wf = validate(
        body([("s", "sequence.numbers", {}), ("out", "file.text", {"path": "x.txt"})], [("s", "out")]),
        current_sandbox(),
    )
    assert compile_graph(wf, resolver(current_sandbox())).nodes["out"].category == "sink"


def dag() -> Any:
    raw = body(
        [
            ("a", "sequence.numbers", {}),
            ("b", "memory.collection", {"data": [1]}),
            ("m", "file.csv", {"path": "in.csv"}),
            ("x", "distinct", {}),
            ("k1", "console.log", {}),
            ("k2", "file.text", {"path": "out.txt"}),
        ],
        [("a", "x"), ("b", "x"), ("x", "k1"), ("x", "k2"), ("m", "k1")],
    )
    return compile_graph(validate(raw, current_sandbox()), resolver(current_sandbox()))


def test_fan_in_keeps_edge_order_and_the_topological_order_respects_edges() -> None:
    graph = dag()
    assert graph.nodes["x"].upstream == ("a", "b")
    order = graph.order
    assert order.index("x") > max(order.index("a"), order.index("b")) and order.index("k1") > order.index("m")


def play(graph: Any) -> tuple[st.ExecutionState, list[st.EventRecord]]:
    """Start, then succeed every run in the order it was asked for."""
    state, log = st.ExecutionState("e1", "w"), []
    decision = d.decide(state, graph, d.Start(), 1000)
    state, queue = decision.state, list(decision.runs)
    log += decision.events
    now = 1000
    while queue:
        run = queue.pop(0)
        now += 10
        decision = d.decide(state, graph, d.NodeSucceeded(run.node_id, run.attempt, 3, 10), now)
        state = decision.state
        log += decision.events
        queue += decision.runs
    return state, log


def test_a_dag_runs_every_node_once_in_dependency_order_and_completes() -> None:
    state, log = play(dag())
    assert state.status == st.ExecutionStatus.COMPLETED
    started = [e.payload["nodeId"] for e in log if e.type == "NodeExecutionStarted"]
    assert sorted(started) == ["a", "b", "k1", "k2", "m", "x"]
    assert started.index("x") > max(started.index("a"), started.index("b"))
    assert [e.seq for e in log] == list(range(1, len(log) + 1))
    assert log[-1].type == "WorkflowCompleted" and log[-1].payload["completedNodes"] == 6


def test_duplicate_and_stale_node_results_change_nothing() -> None:
    graph = dag()
    decision = d.decide(st.ExecutionState("e1", "w"), graph, d.Start(), 0)
    state = d.decide(decision.state, graph, d.NodeSucceeded("a", 1, 1, 1), 5).state
    for command in (
        d.NodeSucceeded("a", 1, 1, 1),
        d.NodeSucceeded("b", 7, 1, 1),
        d.NodeFailed("a", 1, "late"),
        d.Start(),
        d.NodeSucceeded("ghost", 1, 1, 1),
    ):
        again = d.decide(state, graph, command, 9)
        assert again.events == [] and again.runs == [] and again.state == state


def test_a_node_failure_fails_the_execution_with_the_node_and_reason() -> None:
    graph = dag()
    state = d.decide(st.ExecutionState("e1", "w"), graph, d.Start(), 0).state
    decision = d.decide(state, graph, d.NodeFailed("m", 1, "no such file"), 50)
    assert [e.type for e in decision.events] == ["NodeExecutionFailed", "WorkflowFailed"]
    assert decision.state.status == st.ExecutionStatus.FAILED and decision.state.failed_node == "m"
    assert "no such file" in (decision.state.error or "")


def test_replaying_the_journal_gives_the_same_state_as_deciding() -> None:
    state, log = play(dag())
    assert st.fold(st.ExecutionState("e1", "w"), log) == state


def test_a_snapshot_round_trips_and_a_foreign_one_is_refused() -> None:
    state, _ = play(dag())
    assert st.from_json(json.loads(json.dumps(st.to_json(state)))) == state
    with pytest.raises(ValueError):
        st.from_json({**st.to_json(state), "schema": 99})
    with pytest.raises(ValueError):
        st.from_json({"schema": st.SCHEMA_VERSION, "nodes": {}})


def test_a_snapshot_body_is_what_asdict_gives_with_signals_as_lists() -> None:
    state, _ = play(dag())
    state = dataclasses.replace(state, signals={"go": ({"n": 1}, "x")})
    expected = {"schema": st.SCHEMA_VERSION, **dataclasses.asdict(state), "signals": {"go": [{"n": 1}, "x"]}}
    assert st.to_json(state) == expected
    assert json.dumps(st.to_json(state), sort_keys=True) == json.dumps(expected, sort_keys=True)


def test_an_event_out_of_sequence_is_refused() -> None:
    with pytest.raises(ValueError):
        st.apply(st.ExecutionState("e1", "w"), st.EventRecord(2, "WorkflowStarted", {"timestamp": 1}))


def test_projections_show_node_level_detail() -> None:
    _, log = play(dag())
    detail = projections.execution_detail(log)
    assert detail["status"] == "completed" and detail["duration"] == log[-1].payload["duration"]
    assert {n["nodeId"] for n in detail["nodes"]} == {"a", "b", "m", "x", "k1", "k2"}
    assert all(n["recordsProcessed"] == 3 and n["duration"] == 10 for n in detail["nodes"])
    line = projections.timeline(log)["nodes"][0]
    assert set(line) == {
        "nodeId",
        "nodeType",
        "attempt",
        "startTime",
        "endTime",
        "duration",
        "status",
        "recordsProcessed",
        "error",
    }


@pytest.mark.parametrize("bad", ["a/b", "x" * 201, "tab\there"])
def test_ids_that_cannot_live_in_a_url_are_refused(bad: str) -> None:
    raw = copy.deepcopy(MINIMAL)
    raw["id"] = bad
    raw["nodes"][0]["id"] = bad
    problems = problems_of(raw)
    assert "id" in problems and "nodes[0].id" in problems
