"""Executions end to end: the API on a real gateway, a real worker and coordinator, PostgreSQL and Redis."""

from __future__ import annotations

import copy
import csv
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.harness import ORIGINAL_MINIMAL, Api

pytestmark = pytest.mark.usefixtures("node")


def minimal(workflow_id: str) -> dict[str, Any]:
    """The original product's minimal body (origin-product.md §1.1), with a unique id."""
    body = copy.deepcopy(ORIGINAL_MINIMAL)
    body["id"] = workflow_id
    return body


def step(node_id: str, node_type: str, kind: str, **config: Any) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": kind,
        "nodeType": node_type,
        "label": node_id,
        "position": {"x": 0, "y": 0},
        "config": config,
    }


def workflow(workflow_id: str, nodes: list[dict[str, Any]], edges: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "id": workflow_id,
        "name": workflow_id,
        "description": "",
        "version": "1",
        "author": "t",
        "tags": [],
        "nodes": nodes,
        "edges": [{"id": f"e{i}", "source": s, "target": t} for i, (s, t) in enumerate(edges)],
        "metadata": {"createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"},
    }


def run(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    status, created = api.post("/api/v1/workflows", body)
    assert status == 201, created
    status, started = api.post(f"/api/v1/workflows/{body['id']}/execute")
    assert status == 200, started
    assert started["status"] == "started" and started["executionId"].startswith("exec_")
    return api.wait_finished(started["executionId"])


def test_the_original_minimal_workflow_completes_with_node_level_detail(api: Api, uid: str) -> None:
    wf_id = f"wf1-{uid}"
    execution = run(api, minimal(wf_id))
    assert execution["status"] == "completed", execution
    nodes = {n["nodeId"]: n for n in execution["nodes"]}
    assert nodes["s"]["status"] == nodes["k"]["status"] == "completed"
    assert nodes["s"]["recordsProcessed"] == 5 and nodes["k"]["recordsProcessed"] == 5

    status, body = api.get(f"/api/v1/workflows/{wf_id}/status")
    assert status == 200 and body["lastExecution"]["status"] == "completed" and body["executionCount"] == 1

    status, history = api.get(f"/api/history/{wf_id}")
    assert status == 200
    [detail] = history["executions"]
    assert detail["status"] == "completed" and detail["duration"] == detail["endTime"] - detail["startTime"]
    assert [(n["nodeId"], n["status"]) for n in detail["nodes"]] == [("s", "completed"), ("k", "completed")]

    status, timeline = api.get(f"/api/history/{wf_id}/timeline")
    assert status == 200 and timeline["executionId"] == execution["executionId"]
    for entry in timeline["nodes"]:
        # a node's duration is the time it ran, inside the span between its start and end events
        assert 0 <= entry["duration"] <= entry["endTime"] - entry["startTime"] and entry["error"] is None


def test_console_log_lines_are_kept_in_the_execution_log(api: Api, uid: str) -> None:
    wf_id = f"logs-{uid}"
    execution = run(api, minimal(wf_id))
    status, body = api.get(f"/api/v1/workflows/{wf_id}/executions/{execution['executionId']}/logs")
    assert status == 200
    node_lines = [
        e["message"] for e in body["entries"] if e["nodeId"] == "k" and "Node k" not in e["message"]
    ]
    assert node_lines == ["1", "2", "3", "4", "5"]


def test_a_csv_filter_map_file_pipeline_over_10000_rows_writes_exactly_the_expected_rows(
    api: Api, uid: str, tmp_path: Path
) -> None:
    source, target = tmp_path / "people.csv", tmp_path / "out" / "adults.txt"
    with source.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "name", "age"])
        for i in range(10_000):
            writer.writerow([i, f"name, {i}" if i % 7 else f'quoted "{i}"', i % 90])
    expected = [f"NAME, {i}" if i % 7 else f'QUOTED "{i}"' for i in range(10_000) if i % 90 > 30]
    body = workflow(
        f"csv-{uid}",
        [
            step("read", "file.csv", "source", path=str(source)),
            step("adults", "filter", "transform", condition="age > 30"),
            step("upper", "map", "transform", expression="upper(name)"),
            step("write", "file.text", "sink", path=str(target)),
        ],
        [("read", "adults"), ("adults", "upper"), ("upper", "write")],
    )
    execution = run(api, body)
    assert execution["status"] == "completed", execution
    assert target.read_text().splitlines() == expected
    records = {n["nodeId"]: n["recordsProcessed"] for n in execution["nodes"]}
    assert records == {"read": 10_000, "adults": 10_000, "upper": len(expected), "write": len(expected)}


def test_two_sources_into_one_transform_into_two_sinks_runs_the_real_dag(
    api: Api, uid: str, tmp_path: Path
) -> None:
    target = tmp_path / "doubled.txt"
    body = workflow(
        f"dag-{uid}",
        [
            step("small", "sequence.numbers", "source", start=1, end=3),
            step("big", "memory.collection", "source", data=[{"n": 100}, {"n": 200}]),
            step("double", "map", "transform", expression="coalesce(n, value) * 2"),
            step("file", "file.text", "sink", path=str(target)),
            step("count", "aggregate.count", "sink"),
        ],
        [("small", "double"), ("big", "double"), ("double", "file"), ("double", "count")],
    )
    execution = run(api, body)
    assert execution["status"] == "completed", execution
    # fan-in concatenates the inputs in edge order: the sequence first, then the collection
    assert target.read_text().splitlines() == ["2", "4", "6", "200", "400"]
    assert execution["outputs"]["count"]["preview"] == [5]


def test_a_failing_node_fails_the_execution_with_the_reason(api: Api, uid: str) -> None:
    body = workflow(
        f"fail-{uid}",
        [
            step("rows", "memory.collection", "source", data=[{"a": 1}, {"b": 2}]),
            step("keep", "filter", "transform", condition="a > 0"),
            step("out", "console.log", "sink"),
        ],
        [("rows", "keep"), ("keep", "out")],
    )
    execution = run(api, body)
    assert execution["status"] == "failed"
    assert execution["failedNodeId"] == "keep" and "record 1" in execution["error"]


def test_an_idempotency_key_starts_one_execution_however_often_it_is_sent(api: Api, uid: str) -> None:
    wf_id = f"idem-{uid}"
    assert api.post("/api/v1/workflows", minimal(wf_id))[0] == 201
    first = api.post(f"/api/v1/workflows/{wf_id}/execute", headers={"Idempotency-Key": uid})[1]
    second = api.post(f"/api/v1/workflows/{wf_id}/execute", headers={"Idempotency-Key": uid})[1]
    assert first["executionId"] == second["executionId"]
    api.wait_finished(first["executionId"])
    _, events = api.get(f"/api/v1/executions/{first['executionId']}/events")
    assert [e["type"] for e in events["events"]].count("WorkflowStarted") == 1
    assert api.get(f"/api/v1/workflows/{wf_id}/status")[1]["executionCount"] == 1


def test_metrics_show_executions_and_a_duration_histogram_that_moved(node: dict[str, Any], uid: str) -> None:
    api: Api = node["api"]
    run(api, minimal(f"metrics-{uid}"))
    with urllib.request.urlopen(f"http://127.0.0.1:{node['metrics_port']}/metrics", timeout=10) as response:
        text = response.read().decode()
    wf = f"metrics-{uid}"
    assert f'workflow_execution_total{{status="completed",workflow_id="{wf}"}} 1.0' in text
    count = [
        line
        for line in text.splitlines()
        if line.startswith("workflow_execution_duration_seconds_count") and wf in line
    ]
    assert count and float(count[0].split()[-1]) == 1.0
    assert 'workflow_created_total{status="success"}' in text
