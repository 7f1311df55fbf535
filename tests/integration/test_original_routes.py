"""Each route of the original (origin-product.md §6.1), called with the original's request shapes, answers
with the fields and types its clients read (issue 12). One test case per route.

Where we differ on purpose (errors in our one shape, JSON health probes, ``members`` as a count, schedule
objects in the schedules list), the case asserts what we answer instead and docs/api.md "Compatibility with
the original" says why. Every answer is also checked against the OpenAPI schema by ``Api.call``.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.harness import ORIGINAL_MINIMAL, Api

Check = Callable[[Any], bool]
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def is_str(v: Any) -> bool:
    return isinstance(v, str)


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def is_ms(v: Any) -> bool:
    return is_int(v) and 10**12 <= v < 10**14


def is_iso(v: Any) -> bool:
    return isinstance(v, str) and bool(ISO.match(v))


def is_list(v: Any) -> bool:
    return isinstance(v, list)


def null_or(check: Check) -> Check:
    return lambda v: v is None or check(v)


def equals(expected: Any) -> Check:
    return lambda v: v == expected


def fields(shape: dict[str, Check]) -> Check:
    """An object with at least these fields, each passing its check."""
    return lambda v: isinstance(v, dict) and all(k in v and check(v[k]) for k, check in shape.items())


def each(check: Check) -> Check:
    return lambda v: isinstance(v, list) and all(check(item) for item in v)


def problems(body: Any, shape: dict[str, Check]) -> list[str]:
    if not isinstance(body, dict):
        return [f"not an object: {body!r}"]
    return [
        f"{k}: {body.get(k, '(missing)')!r}"
        for k, check in shape.items()
        if k not in body or not check(body[k])
    ]


# --- the original's shapes (§1.1, §3.5, §5.5, §6.1) ---------------------------------------------------------

NODE = fields(
    {
        "id": is_str,
        "type": is_str,
        "nodeType": is_str,
        "label": is_str,
        "position": fields({"x": is_number, "y": is_number}),
        "config": fields({}),
    }
)
EDGE = fields({"id": is_str, "source": is_str, "target": is_str})
WORKFLOW = {
    "id": is_str,
    "name": is_str,
    "description": is_str,
    "version": is_str,
    "author": is_str,
    "tags": each(is_str),
    "nodes": each(NODE),
    "edges": each(EDGE),
    "metadata": fields({"createdAt": is_str, "updatedAt": is_str}),
}
STARTED = {"message": is_str, "executionId": is_str, "workflowId": is_str, "status": is_str, "note": is_str}
HISTORY_NODE = fields(
    {"nodeId": is_str, "nodeType": is_str, "startTime": is_ms, "status": is_str, "recordsProcessed": is_int}
)
EXECUTION_DETAIL = {
    "executionId": is_str,
    "workflowName": is_str,
    "startTime": is_ms,
    "endTime": is_ms,
    "status": is_str,
    "duration": is_int,
    "nodes": each(HISTORY_NODE),
}
TIMELINE_NODE = fields(
    {
        "nodeId": is_str,
        "nodeType": is_str,
        "startTime": is_ms,
        "endTime": null_or(is_ms),
        "duration": null_or(is_int),
        "status": is_str,
        "recordsProcessed": is_int,
        "error": null_or(is_str),
    }
)
SUMMARY = fields({"executionId": is_str, "startTime": is_ms, "status": is_str})


# --- the data -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ran:
    workflow_id: str
    execution_id: str


def original_body(workflow_id: str) -> dict[str, Any]:
    body = copy.deepcopy(ORIGINAL_MINIMAL)
    body["id"] = workflow_id
    return body


def created(api: Api) -> str:
    workflow_id = f"orig-{uuid.uuid4().hex[:10]}"
    status, answer = api.post("/api/v1/workflows", original_body(workflow_id))
    assert status == 201, answer
    return workflow_id


@pytest.fixture(scope="module")
def ran(node: dict[str, Any]) -> Ran:
    """A workflow created from the original's minimal body, executed once to completion."""
    api: Api = node["api"]
    workflow_id = created(api)
    status, started = api.post(f"/api/v1/workflows/{workflow_id}/execute")
    assert status == 200, started
    assert api.wait_finished(started["executionId"])["status"] == "completed"
    return Ran(workflow_id, started["executionId"])


# --- the cases ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    method: str
    path: Callable[[Api, Ran], str]
    status: int
    shape: dict[str, Check]
    body: Callable[[Api, Ran], Any] = lambda api, ran: None
    is_list: bool = (
        False  # the answer is a list of objects of ``shape``: those of the test's workflow are checked
    )


def _w(template: str) -> Callable[[Api, Ran], str]:
    return lambda api, ran: template.format(w=ran.workflow_id, e=ran.execution_id, u=uuid.uuid4().hex[:10])


def _fresh(template: str) -> Callable[[Api, Ran], str]:
    """A path on a workflow of its own (for the routes that change or delete it)."""
    return lambda api, ran: template.format(w=created(api))


def _with_schedule(template: str) -> Callable[[Api, Ran], str]:
    def path(api: Api, ran: Ran) -> str:
        workflow_id = created(api)
        body = {"workflowId": workflow_id, "scheduleType": "fixed_rate", "interval": "1h"}
        assert api.post("/api/v1/schedules/add", body)[0] == 200
        return template.format(w=workflow_id)

    return path


def _put_body(api: Api, ran: Ran) -> Any:
    body = original_body(ran.workflow_id)
    body["description"] = "changed"
    return body


CASES: dict[str, Case] = {
    "GET node-types": Case(
        "GET",
        _w("/api/v1/workflows/node-types"),
        200,
        {k: each(fields({})) for k in ("source", "transform", "sink")},
    ),
    "GET workflows": Case("GET", _w("/api/v1/workflows"), 200, WORKFLOW, is_list=True),
    "POST workflows": Case(
        "POST",
        _w("/api/v1/workflows"),
        201,
        {"message": is_str, "workflowId": is_str, "scheduleStatus": is_str},
        body=lambda api, ran: original_body(f"orig-{uuid.uuid4().hex[:10]}"),
    ),
    "GET workflow": Case("GET", _w("/api/v1/workflows/{w}"), 200, WORKFLOW),
    "PUT workflow": Case(
        "PUT",
        _w("/api/v1/workflows/{w}"),
        200,
        {"message": equals("Workflow updated successfully"), "workflowId": is_str},
        body=_put_body,
    ),
    "DELETE workflow": Case(
        "DELETE",
        _fresh("/api/v1/workflows/{w}"),
        200,
        {"message": equals("Workflow deleted successfully"), "workflowId": is_str},
    ),
    "POST execute": Case(
        "POST", _fresh("/api/v1/workflows/{w}/execute"), 200, {**STARTED, "status": equals("started")}
    ),
    "POST execute-es": Case(
        "POST",
        _fresh("/api/v1/workflows/{w}/execute-es"),
        200,
        {
            **STARTED,
            "message": equals("Workflow execution started with Event Sourcing"),
            "status": equals("started"),
            "note": lambda v: v.startswith(
                "Events will be persisted. Check status at: GET /api/v1/workflows/"
            ),
        },
    ),
    "GET status": Case(
        "GET",
        _w("/api/v1/workflows/{w}/status"),
        200,
        {
            "workflowId": is_str,
            "state": equals("completed"),
            "executionCount": is_int,
            "currentExecution": equals(None),
            "lastExecution": fields(
                {"executionId": is_str, "status": is_str, "startTime": is_ms, "endTime": null_or(is_ms)}
            ),
        },
    ),
    "GET executions": Case(
        "GET",
        _w("/api/v1/workflows/{w}/executions"),
        200,
        {
            "executionId": is_str,
            "status": is_str,
            "startTime": is_iso,
            "endTime": null_or(is_iso),
            "logsCount": is_int,
        },
        is_list=True,
    ),
    "GET logs": Case(
        "GET",
        _w("/api/v1/workflows/{w}/executions/{e}/logs"),
        200,
        {"executionId": is_str, "logs": each(is_str)},
    ),
    "GET history": Case(
        "GET",
        _w("/api/history/{w}"),
        200,
        {"workflowId": is_str, "executions": each(fields(EXECUTION_DETAIL))},
    ),
    "GET history of an unknown workflow": Case(
        "GET", _w("/api/history/orig-unknown-{u}"), 200, {"workflowId": is_str, "executions": equals([])}
    ),
    "GET history status": Case(
        "GET",
        _w("/api/history/{w}/status"),
        200,
        {"workflowId": is_str, "state": is_str, "allExecutions": each(SUMMARY)},
    ),
    "GET history status of an unknown workflow": Case(
        "GET",
        _w("/api/history/orig-unknown-{u}/status"),
        200,
        {"workflowId": is_str, "state": equals("idle"), "allExecutions": equals([])},
    ),
    "GET history execution": Case("GET", _w("/api/history/{w}/execution/{e}"), 200, EXECUTION_DETAIL),
    "GET timeline": Case(
        "GET",
        _w("/api/history/{w}/timeline"),
        200,
        {
            "executionId": is_str,
            "startTime": is_ms,
            "endTime": null_or(is_ms),
            "duration": null_or(is_int),
            "nodes": each(TIMELINE_NODE),
        },
    ),
    "GET timeline of an unknown execution": Case(  # the original: 200 {"error": ...}; ours a 404 with "error"
        "GET", _w("/api/history/{w}/timeline?executionId=nope-{u}"), 404, {"error": is_str}
    ),
    "GET schedules": Case("GET", _w("/api/v1/schedules"), 200, {"schedules": is_list, "count": is_int}),
    "POST schedules add": Case(
        "POST",
        _w("/api/v1/schedules/add"),
        200,
        {
            "message": equals("Schedule added successfully"),
            "workflowId": is_str,
            "scheduleType": equals("cron"),
        },
        body=lambda api, ran: {
            "workflowId": created(api),
            "scheduleType": "cron",
            "cronExpression": "0 0 * * *",
        },
    ),
    "POST schedule pause": Case(
        "POST",
        _with_schedule("/api/v1/schedules/{w}/pause"),
        200,
        {"message": equals("Schedule paused"), "workflowId": is_str},
    ),
    "POST schedule resume": Case(
        "POST",
        _with_schedule("/api/v1/schedules/{w}/resume"),
        200,
        {"message": equals("Schedule resumed"), "workflowId": is_str},
    ),
    "POST schedule stop": Case(
        "POST",
        _with_schedule("/api/v1/schedules/{w}/stop"),
        200,
        {"message": equals("Schedule stopped"), "workflowId": is_str},
    ),
    "POST schedule stop of a workflow without schedules": Case(  # the original answered 200 even so
        "POST",
        _fresh("/api/v1/schedules/{w}/stop"),
        200,
        {"message": equals("Schedule stopped"), "workflowId": is_str},
    ),
    "GET schedule templates": Case(
        "GET",
        _w("/api/v1/schedules/templates"),
        200,
        {
            "templates": lambda v: (
                len(v) == 6
                and all(
                    is_str(t["name"])
                    and is_str(t["scheduleType"])
                    and ("interval" in t or "cronExpression" in t)
                    for t in v
                )
            )
        },
    ),
    "GET cluster stats": Case(
        "GET",
        _w("/api/v1/cluster/stats"),
        200,
        {
            "clusterName": is_str,
            "nodeCount": is_int,
            "leader": null_or(is_str),
            "selfAddress": is_str,
            "selfRoles": each(is_str),
            "members": is_int,  # the deployment guide's count; the original code's list is memberList
            "memberList": each(fields({"address": is_str, "status": is_str, "roles": each(is_str)})),
            "status": is_str,
            "sharding": fields({"totalShards": is_int, "activeShards": is_int, "totalEntities": is_int}),
        },
    ),
    "GET cluster shards": Case(
        "GET",
        _w("/api/v1/cluster/shards"),
        200,
        {
            "entityType": equals("Workflow"),
            "totalShards": is_int,
            "activeShards": is_int,
            "shards": each(fields({"shardId": is_int, "location": null_or(is_str), "entityCount": is_int})),
        },
    ),
    "GET cluster workflow location": Case(
        "GET",
        _w("/api/v1/cluster/workflow/{w}/location"),
        200,
        {"workflowId": is_str, "shardId": null_or(is_int), "nodeAddress": null_or(is_str)},
    ),
    "GET health": Case("GET", _w("/health"), 200, {"status": equals("healthy")}),
    "GET health live": Case("GET", _w("/health/live"), 200, {"status": equals("ok")}),
    "GET health ready": Case("GET", _w("/health/ready"), 200, {"status": equals("healthy")}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_original_route_answers_the_original_shape(name: str, api: Api, ran: Ran) -> None:
    case = CASES[name]
    status, answer = api.call(case.method, case.path(api, ran), case.body(api, ran))
    assert status == case.status, (name, status, answer)
    # of a list, the items of the test's workflow (executions items have no "id"; workflows do)
    items = (
        [a for a in answer if a.get("id", ran.workflow_id) == ran.workflow_id] if case.is_list else [answer]
    )
    assert items, f"{name}: an empty list proves nothing"
    for item in items:
        assert problems(item, case.shape) == [], (name, item)


def test_the_monitoring_cluster_status_is_the_original_text(api: Api) -> None:
    status, answer = api.get("/monitoring/cluster/status")
    assert status == 200 and answer.startswith("Cluster Status:\nSelf: ") and "\nLeader: " in answer


def test_a_workflow_saved_without_the_optional_dsl_fields_comes_back_with_the_original_defaults(
    api: Api,
) -> None:
    workflow_id = f"orig-bare-{uuid.uuid4().hex[:10]}"
    bare = {
        "id": workflow_id,
        "name": "bare",
        "nodes": [
            {"id": "s", "nodeType": "sequence.numbers", "config": {"end": 2}},
            {"id": "k", "nodeType": "console.log"},
        ],
        "edges": [{"id": "e1", "source": "s", "target": "k", "animated": True}],
    }
    assert api.post("/api/v1/workflows", bare)[0] == 201
    status, shown = api.get(f"/api/v1/workflows/{workflow_id}")
    assert status == 200
    assert problems(shown, WORKFLOW) == []
    assert (shown["description"], shown["version"], shown["author"], shown["tags"]) == ("", "1.0", "", [])
    assert is_iso(shown["metadata"]["createdAt"]) and is_iso(shown["metadata"]["updatedAt"])
    source, sink = shown["nodes"]
    assert (source["type"], source["label"], source["position"], source["config"]) == (
        "source",
        "s",
        {"x": 0, "y": 0},
        {"end": 2},
    )
    assert (sink["type"], sink["label"], sink["config"]) == ("sink", "k", {})
    assert "style" not in sink  # optional without a default: absent, as the original omitted None
    assert shown["edges"] == [{**bare["edges"][0], "sourceHandle": "out", "targetHandle": "in"}]
    listed = api.get("/api/v1/workflows")[1]
    assert next(w for w in listed if w["id"] == workflow_id) == shown
