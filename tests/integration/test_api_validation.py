"""The REST API against real PostgreSQL: input validation, the error shape, authentication, the read routes
and the OpenAPI schema. Every bad input is a 4xx in ``{"error", "message", "details"}``, never a 500.

Each test runs in a transaction that is rolled back. The session's database is shared with real processes and
never flushed (tests/conftest.py), so every id is unique and assertions never assume an empty table.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.cluster import identity
from apps.cluster.models import ShardLease
from apps.workflows.engine import dsl_output
from apps.workflows.models import Execution, Workflow, WorkflowVersion
from apps.workflows.services import commands, executions
from tests.harness import ORIGINAL_MINIMAL
from workflow_engine import redis_client

pytestmark = pytest.mark.django_db

MINIMAL: dict[str, Any] = ORIGINAL_MINIMAL

WORKER = "test-node:worker:0123456789ab"


def node(node_id: str, node_type: str, config: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": node_id, "nodeType": node_type, "config": config or {}}


def edge(edge_id: str, source: str, target: str) -> dict[str, Any]:
    return {"id": edge_id, "source": source, "target": target}


def workflow(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": "bad", "name": "bad", "nodes": nodes, "edges": edges}


def minimal(workflow_id: str) -> dict[str, Any]:
    return {**copy.deepcopy(MINIMAL), "id": workflow_id}


@pytest.fixture
def wf_id() -> str:
    return f"wf-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def rest() -> APIClient:
    """A client authenticated with a DRF token, as the original's clients would be given (an admin's)."""
    user = get_user_model().objects.create_user(
        f"tester-{uuid.uuid4().hex[:8]}", password="secret-password", is_superuser=True
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()


@pytest.fixture
def created(rest: APIClient, wf_id: str) -> dict[str, Any]:
    body = minimal(wf_id)
    assert rest.post("/api/v1/workflows", body, format="json").status_code == 201
    return body


@pytest.fixture
def as_worker(monkeypatch: pytest.MonkeyPatch) -> str:
    """This test process acts as the worker that owns the shards of the executions it runs."""
    monkeypatch.setenv(identity.ENV, WORKER)
    return WORKER


def run_to_end(workflow_id: str) -> str:
    """Start an execution and apply its start command here, as the owner of its shard would (the minimal
    workflow's nodes all run inline). Only that shard's lease is taken, inside the test's transaction."""
    execution, _ = executions.start(workflow_id)
    ShardLease.objects.update_or_create(
        shard_id=execution.shard_id, defaults={"owner": WORKER, "epoch": 1, "term": 1, "state": "owned"}
    )
    commands.apply_pending(execution.id)
    return execution.id


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["details"], dict)
    return body


# --- definitions: every invalid kind is a 400 naming the culprit, and nothing is stored ---------------------


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def change(body: dict[str, Any]) -> dict[str, Any]:
        target = body
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return body

    return change


def _replace(new: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda _body: new


def _without(key: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda body: {k: v for k, v in body.items() if k != key}


INVALID = {
    "no nodes": (_replace(workflow([], [])), "nodes"),
    "unknown nodeType": (_set(["nodes", 0, "nodeType"], "no.such.type"), "nodes[0].nodeType"),
    "missing required config": (
        _replace(
            workflow(
                [node("s", "sequence.numbers"), node("f", "filter"), node("k", "console.log")],
                [edge("e1", "s", "f"), edge("e2", "f", "k")],
            )
        ),
        "nodes[1].config.condition",
    ),
    "mistyped config": (_set(["nodes", 0, "config", "start"], "one"), "nodes[0].config.start"),
    "duplicate node id": (_set(["nodes", 1, "id"], "s"), "nodes[1].id"),
    "duplicate edge id": (
        _replace(
            workflow(
                [node("s", "sequence.numbers"), node("k", "console.log"), node("c", "aggregate.count")],
                [edge("e1", "s", "k"), edge("e1", "s", "c")],
            )
        ),
        "edges[1].id",
    ),
    "edge to unknown node": (_set(["edges", 0, "target"], "ghost"), "edges[0].target"),
    "cycle": (
        _replace(
            workflow(
                [
                    node("s", "sequence.numbers"),
                    node("a", "map", {"expression": "x"}),
                    node("b", "map", {"expression": "x"}),
                    node("k", "console.log"),
                ],
                [edge("e1", "s", "a"), edge("e2", "a", "b"), edge("e3", "b", "a"), edge("e4", "b", "k")],
            )
        ),
        "edges",
    ),
    "no source": (
        _replace(
            workflow(
                [node("m", "map", {"expression": "x"}), node("k", "console.log")], [edge("e1", "m", "k")]
            )
        ),
        "nodes",
    ),
    "no sink": (
        _replace(
            workflow(
                [node("s", "sequence.numbers"), node("m", "map", {"expression": "x"})], [edge("e1", "s", "m")]
            )
        ),
        "nodes",
    ),
    "a JSON array": (_replace([MINIMAL]), "non_field_errors"),
    "a JSON string": (_replace("workflow"), "non_field_errors"),
    "a JSON number": (_replace(42), "non_field_errors"),
    "missing nodes": (_without("nodes"), "nodes"),
    "nodes not an array": (_set(["nodes"], {"s": {}}), "nodes"),
    "node not an object": (_set(["nodes", 0], "s"), "nodes[0]"),
    "missing id": (_without("id"), "id"),
}


# drafts (docs/api.md, Drafts): a JSON object with a valid id is saved whatever else is wrong with it
NO_USABLE_ID = {k: v for k, v in INVALID.items() if v[1] in ("non_field_errors", "id")}
DRAFTS = {k: v for k, v in INVALID.items() if k not in NO_USABLE_ID}


@pytest.mark.parametrize("change, culprit", DRAFTS.values(), ids=DRAFTS.keys())
def test_it_saves_an_invalid_definition_as_a_draft_naming_the_culprit_and_creates_no_version(
    rest: APIClient, wf_id: str, change: Callable[[dict[str, Any]], Any], culprit: str
) -> None:
    body = change(minimal(wf_id))

    response = rest.post("/api/v1/workflows", body, format="json")

    assert response.status_code == 201, response.content
    saved = response.json()
    assert (saved["valid"], saved["version"]) == (False, 0)
    assert culprit in saved["problems"], saved["problems"]
    assert all(isinstance(p, str) for problems in saved["problems"].values() for p in problems)
    shown = rest.get(f"/api/v1/workflows/{body['id']}").json()
    assert (shown["valid"], shown["problems"]) == (False, saved["problems"])
    assert not WorkflowVersion.objects.filter(workflow_id=body["id"]).exists()
    error = assert_error(rest.post(f"/api/v1/workflows/{body['id']}/execute"), 400, "invalid_definition")
    assert error["details"] == saved["problems"]


@pytest.mark.parametrize("change, culprit", NO_USABLE_ID.values(), ids=NO_USABLE_ID.keys())
def test_it_refuses_a_definition_without_a_usable_id_naming_the_culprit_and_stores_nothing(
    rest: APIClient, wf_id: str, change: Callable[[dict[str, Any]], Any], culprit: str
) -> None:
    body = change(minimal(wf_id))
    ids = [wf_id, body.get("id") if isinstance(body, dict) else None]

    response = rest.post("/api/v1/workflows", body, format="json")

    error = assert_error(response, 400, "invalid_definition")
    assert culprit in error["details"], error["details"]
    assert all(isinstance(p, str) for problems in error["details"].values() for p in problems)
    assert not Workflow.objects.filter(pk__in=[i for i in ids if i]).exists()
    assert not WorkflowVersion.objects.filter(workflow_id__in=[i for i in ids if i]).exists()


def test_it_creates_the_original_minimal_workflow_and_serves_it_back_as_posted(
    rest: APIClient, wf_id: str
) -> None:
    body = minimal(wf_id)

    response = rest.post("/api/v1/workflows", body, format="json")

    assert response.status_code == 201
    assert response.json() == {
        "message": "Workflow created successfully",
        "workflowId": wf_id,
        "version": 1,
        "scheduleStatus": "Immediate task - execute manually",
        "valid": True,
        "problems": {},
    }
    served = rest.get(f"/api/v1/workflows/{wf_id}").json()
    # as posted, with the original's defaults only where it left a field out (its metadata times are its own)
    assert body["metadata"]["createdAt"] and body["metadata"]["updatedAt"]
    assert {k: v for k, v in served.items() if k not in ("valid", "problems")} == dsl_output.with_defaults(
        body, created_at=None, updated_at=None
    )
    assert served["valid"] is True and served["problems"] == {}
    assert served in rest.get("/api/v1/workflows").json()
    # written back as it was read, it is the same version: no new one
    response = rest.put(f"/api/v1/workflows/{wf_id}", served, format="json")
    assert response.status_code == 200, response.json()
    assert WorkflowVersion.objects.filter(workflow_id=wf_id).count() == 1


def test_it_answers_409_to_a_second_post_with_the_same_id(rest: APIClient, created: dict[str, Any]) -> None:
    assert_error(rest.post("/api/v1/workflows", created, format="json"), 409, "conflict")
    assert WorkflowVersion.objects.filter(workflow_id=created["id"]).count() == 1


def test_it_lists_workflows_by_id_in_pages(rest: APIClient, wf_id: str) -> None:
    for suffix in ("c", "a", "b"):
        assert rest.post("/api/v1/workflows", minimal(f"{wf_id}-{suffix}"), format="json").status_code == 201

    everything = [w["id"] for w in rest.get("/api/v1/workflows").json()]
    mine = [i for i in everything if i.startswith(wf_id)]
    first = everything.index(mine[0])
    page = rest.get(f"/api/v1/workflows?limit=2&offset={first + 1}").json()

    assert mine == [f"{wf_id}-a", f"{wf_id}-b", f"{wf_id}-c"]
    assert everything == sorted(everything)
    assert [w["id"] for w in page] == mine[1:]
    assert_error(rest.get("/api/v1/workflows?limit=1001"), 400, "invalid_request")
    assert_error(rest.get("/api/v1/workflows?offset=-1"), 400, "invalid_request")


def test_it_versions_an_update_only_when_the_body_changed(rest: APIClient, created: dict[str, Any]) -> None:
    url = f"/api/v1/workflows/{created['id']}"

    same = rest.put(url, created, format="json").json()
    changed = rest.put(url, {**created, "name": "renamed"}, format="json").json()

    assert (same["version"], same["changed"]) == (1, False)
    assert (changed["version"], changed["changed"]) == (2, True)
    assert rest.get(url).json()["name"] == "renamed"


def test_a_start_after_an_update_runs_the_new_version_and_a_deleted_workflow_starts_nothing(
    rest: APIClient, created: dict[str, Any]
) -> None:
    url = f"/api/v1/workflows/{created['id']}"
    before = rest.post(f"{url}/execute").json()["executionId"]  # this process now believes version 1
    rest.put(url, {**created, "name": "renamed"}, format="json")

    after = rest.post(f"{url}/execute").json()["executionId"]
    versions = dict(Execution.objects.filter(pk__in=[before, after]).values_list("id", "version__number"))
    assert (versions[before], versions[after]) == (1, 2)

    Execution.objects.filter(pk__in=[before, after]).update(status="cancelled")  # nothing active: deletable
    assert rest.delete(url).status_code == 200
    assert_error(rest.post(f"{url}/execute"), 404, "not_found")


def test_it_refuses_an_update_whose_body_names_another_workflow(
    rest: APIClient, created: dict[str, Any]
) -> None:
    response = rest.put(f"/api/v1/workflows/{created['id']}", {**created, "id": "other"}, format="json")

    assert "id" in assert_error(response, 400, "invalid_definition")["details"]


def test_it_deletes_a_workflow_then_no_longer_finds_it(rest: APIClient, created: dict[str, Any]) -> None:
    url = f"/api/v1/workflows/{created['id']}"

    assert rest.delete(url).json() == {
        "message": "Workflow deleted successfully",
        "workflowId": created["id"],
    }
    assert_error(rest.get(url), 404, "not_found")
    assert_error(rest.delete(url), 404, "not_found")


def test_it_refuses_to_delete_a_workflow_with_an_active_execution(
    rest: APIClient, created: dict[str, Any]
) -> None:
    rest.post(f"/api/v1/workflows/{created['id']}/execute")

    assert_error(rest.delete(f"/api/v1/workflows/{created['id']}"), 409, "conflict")


# --- malformed requests: all 4xx in the error shape ---------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/workflows/{missing}",
        "/api/v1/workflows/{missing}/status",
        "/api/v1/workflows/{missing}/executions",
        "/api/v1/workflows/{missing}/executions/exec_{missing}/logs",
        "/api/v1/executions/exec_{missing}",
        "/api/v1/executions/exec_{missing}/events",
        "/api/history/{missing}/execution/exec_{missing}",
        "/api/history/{missing}/timeline",
        "/api/v1/workflows/" + "x" * 5000,
        "/api/v1/executions/" + "x" * 300,
        "/api/v1/workflows/nul%00{missing}",
        "/api/v1/workflows/%ED%A0%80{missing}",
    ],
)
def test_it_answers_404_json_for_what_does_not_exist(rest: APIClient, path: str) -> None:
    assert_error(rest.get(path.format(missing=uuid.uuid4().hex)), 404, "not_found")


def test_it_answers_404_json_outside_the_api(anonymous: APIClient) -> None:
    assert_error(anonymous.get("/nope"), 404, "not_found")
    assert_error(anonymous.get("/api/v1/nope"), 404, "not_found")


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": "wf1",',
        b"{'id': 'wf1'}",
        b'{"a": NaN}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"id": "nul\\u0000"}',
        b'{"id": "\\ud800"}',
        b"\xff\xfe{}",
    ],
    ids=["truncated", "single quotes", "NaN", "nested too deeply", "NUL", "lone surrogate", "not UTF-8"],
)
def test_it_answers_400_to_a_body_that_is_not_storable_json(rest: APIClient, body: bytes) -> None:
    response = rest.generic("POST", "/api/v1/workflows", body, content_type="application/json")  # type: ignore[arg-type]

    assert_error(response, 400, "malformed_json")


def test_it_answers_415_to_a_body_that_is_not_json(rest: APIClient) -> None:
    response = rest.generic(
        "POST", "/api/v1/workflows", "id=x", content_type="application/x-www-form-urlencoded"
    )

    assert_error(response, 415, "unsupported_media_type")


def test_it_answers_413_to_a_body_over_the_upload_limit(rest: APIClient, wf_id: str, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = rest.post("/api/v1/workflows", {**minimal(wf_id), "description": "x" * 2000}, format="json")

    assert_error(response, 413, "payload_too_large")
    assert not Workflow.objects.filter(pk=wf_id).exists()


def test_it_answers_405_to_a_method_a_route_does_not_have(rest: APIClient) -> None:
    assert_error(rest.patch("/api/v1/workflows", {}, format="json"), 405, "method_not_allowed")
    assert_error(rest.generic("BREW", "/api/v1/workflows"), 405, "method_not_allowed")


@pytest.mark.parametrize("query", ["limit=abc", "limit=-1", "limit=1001", "offset=x", "status=sleeping"])
def test_it_answers_400_to_bad_list_parameters(rest: APIClient, created: dict[str, Any], query: str) -> None:
    response = rest.get(f"/api/v1/workflows/{created['id']}/executions?{query}")

    assert query.split("=")[0] in assert_error(response, 400, "invalid_request")["details"]


# --- authentication -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/v1/workflows"),
        ("post", "/api/v1/workflows"),
        ("get", "/api/v1/workflows/node-types"),
        ("get", "/api/v1/workflows/wf1"),
        ("put", "/api/v1/workflows/wf1"),
        ("delete", "/api/v1/workflows/wf1"),
        ("post", "/api/v1/workflows/wf1/execute"),
        ("get", "/api/v1/workflows/wf1/executions"),
        ("get", "/api/v1/executions/exec_x"),
        ("get", "/api/history/wf1"),
        ("get", "/api/v1/cluster/stats"),
        ("get", "/api/v1/cluster/shards"),
    ],
)
def test_it_answers_401_without_credentials(anonymous: APIClient, method: str, path: str) -> None:
    assert_error(getattr(anonymous, method)(path), 401, "not_authenticated")


def test_it_answers_401_to_a_wrong_token(anonymous: APIClient) -> None:
    anonymous.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    assert_error(anonymous.get("/api/v1/workflows"), 401, "not_authenticated")


def test_health_probes_are_open_and_check_every_dependency(anonymous: APIClient) -> None:
    ready = anonymous.get("/health/ready")

    assert anonymous.get("/health/live").json() == {"status": "ok"}
    assert ready.status_code == 200, ready.json()
    assert {name: c["status"] for name, c in ready.json()["checks"].items()} == {
        "database": "ok",
        "redis": "ok",
        "migrations": "ok",
    }
    assert anonymous.get("/health").json()["status"] == "healthy"


def test_the_node_types_and_cluster_routes_answer(rest: APIClient) -> None:
    types = rest.get("/api/v1/workflows/node-types").json()
    lease = redis_client.client().get(redis_client.key("coordinator", "leader"))  # the session node's, if up
    stats = rest.get("/api/v1/cluster/stats").json()
    shards = rest.get("/api/v1/cluster/shards").json()

    assert set(types) == {"source", "transform", "sink"}
    assert "sequence.numbers" in {t["type"] for t in types["source"]}
    assert stats["clusterName"] == "workflow-engine"
    assert stats["leader"] == (lease.decode() if lease else None)
    assert stats["status"] in (("Up", "Degraded", "Down") if lease else ("Degraded", "Down"))
    assert shards["totalShards"] == stats["sharding"]["totalShards"] == len(shards["shards"])


# --- executions ---------------------------------------------------------------------------------------------


def test_it_starts_an_execution_once_per_idempotency_key(rest: APIClient, created: dict[str, Any]) -> None:
    url = f"/api/v1/workflows/{created['id']}/execute"

    first = rest.post(url, HTTP_IDEMPOTENCY_KEY="k-1").json()
    again = rest.post(url, {}, format="json", HTTP_IDEMPOTENCY_KEY="k-1").json()

    assert first["status"] == "started" and "duplicate" not in first
    assert again["executionId"] == first["executionId"] and again["duplicate"] is True
    assert first["note"] == f"Check status at: GET /api/v1/executions/{first['executionId']}"
    assert Execution.objects.filter(workflow_id=created["id"]).count() == 1


def test_it_refuses_a_bad_idempotency_key_or_body_on_execute(
    rest: APIClient, created: dict[str, Any]
) -> None:
    url = f"/api/v1/workflows/{created['id']}/execute"

    long_key = assert_error(rest.post(url, HTTP_IDEMPOTENCY_KEY="k" * 201), 400, "invalid_request")
    assert_error(rest.post(url, [1], format="json"), 400, "invalid_request")
    assert_error(rest.post(f"/api/v1/workflows/{uuid.uuid4().hex}/execute"), 404, "not_found")

    assert "Idempotency-Key" in long_key["details"]
    assert not Execution.objects.filter(workflow_id=created["id"]).exists()


def test_it_serves_a_finished_execution_on_every_read_route(
    rest: APIClient, created: dict[str, Any], as_worker: str
) -> None:
    wf_id = created["id"]
    execution_id = run_to_end(wf_id)

    detail = rest.get(f"/api/v1/executions/{execution_id}").json()
    assert (detail["status"], detail["version"], detail["workflowId"]) == ("completed", 1, wf_id)
    assert [n["nodeId"] for n in detail["nodes"]] == ["s", "k"]
    assert detail["outputs"]["s"]["preview"] == [1, 2, 3, 4, 5]
    assert detail["duration"] == detail["endTime"] - detail["startTime"]

    events = rest.get(f"/api/v1/executions/{execution_id}/events?after=1&limit=2").json()["events"]
    assert [e["seq"] for e in events] == [2, 3]

    status = rest.get(f"/api/v1/workflows/{wf_id}/status").json()
    assert (status["state"], status["executionCount"], status["currentExecution"]) == ("completed", 1, None)
    assert status["lastExecution"]["executionId"] == execution_id

    logs = rest.get(f"/api/v1/workflows/{wf_id}/executions/{execution_id}/logs").json()
    assert logs["logs"] and len(logs["logs"]) == len(logs["entries"])

    history = rest.get(f"/api/history/{wf_id}").json()["executions"]
    assert [(h["executionId"], h["status"]) for h in history] == [(execution_id, "completed")]
    assert rest.get(f"/api/history/{wf_id}/execution/{execution_id}").json() == history[0]
    assert rest.get(f"/api/history/{wf_id}/status").json()["state"] == "completed"
    timeline = rest.get(f"/api/history/{wf_id}/timeline").json()
    assert timeline["executionId"] == execution_id and len(timeline["nodes"]) == 2


def test_a_pending_execution_shows_as_running_with_its_progress(
    rest: APIClient, created: dict[str, Any]
) -> None:
    wf_id = created["id"]
    execution_id = rest.post(f"/api/v1/workflows/{wf_id}/execute").json()["executionId"]

    status = rest.get(f"/api/v1/workflows/{wf_id}/status").json()
    history = rest.get(f"/api/history/{wf_id}/status").json()

    assert status["state"] == history["state"] == "running"
    assert status["currentExecution"]["executionId"] == execution_id
    assert (status["currentExecution"]["completedNodes"], status["currentExecution"]["totalNodes"]) == (0, 2)
    assert history["allExecutions"] == [{"executionId": execution_id, "status": "pending"}]
    assert rest.get(f"/api/history/{wf_id}/timeline").json()["executionId"] == execution_id


def test_an_execution_of_another_workflow_is_not_found(
    rest: APIClient, created: dict[str, Any], as_worker: str, wf_id: str
) -> None:
    other = f"{wf_id}-other"
    rest.post("/api/v1/workflows", minimal(other), format="json")
    execution_id = run_to_end(other)

    assert_error(rest.get(f"/api/v1/workflows/{wf_id}/executions/{execution_id}/logs"), 404, "not_found")
    assert_error(rest.get(f"/api/history/{wf_id}/execution/{execution_id}"), 404, "not_found")
    assert_error(rest.get(f"/api/history/{wf_id}/timeline?executionId={execution_id}"), 404, "not_found")


def test_the_execution_list_costs_the_same_queries_for_any_number_of_executions(
    rest: APIClient, created: dict[str, Any], as_worker: str, django_assert_max_num_queries: Any
) -> None:
    for _ in range(12):
        run_to_end(created["id"])

    # the token lookup, the workflow's existence, the page, and one grouped count of its log lines
    with django_assert_max_num_queries(4):
        listed = rest.get(f"/api/v1/workflows/{created['id']}/executions?limit=10").json()

    assert len(listed) == 10
    assert all(e["status"] == "completed" and e["logsCount"] > 0 for e in listed)
    assert [e["startTime"] for e in listed] == sorted((e["startTime"] for e in listed), reverse=True)
    assert rest.get(f"/api/v1/workflows/{created['id']}/executions?status=failed").json() == []


# --- the OpenAPI schema -------------------------------------------------------------------------------------

ROUTES = {
    "/api/v1/workflows/node-types": {"get"},
    "/api/v1/workflows": {"get", "post"},
    "/api/v1/workflows/{workflow_id}": {"get", "put", "delete"},
    "/api/v1/workflows/{workflow_id}/execute": {"post"},
    "/api/v1/workflows/{workflow_id}/status": {"get"},
    "/api/v1/workflows/{workflow_id}/executions": {"get"},
    "/api/v1/workflows/{workflow_id}/executions/{execution_id}/logs": {"get"},
    "/api/v1/executions/{execution_id}": {"get"},
    "/api/v1/executions/{execution_id}/events": {"get"},
    "/api/history/{workflow_id}": {"get"},
    "/api/history/{workflow_id}/status": {"get"},
    "/api/history/{workflow_id}/execution/{execution_id}": {"get"},
    "/api/history/{workflow_id}/timeline": {"get"},
    "/api/v1/cluster/stats": {"get"},
    "/api/v1/cluster/shards": {"get"},
    "/health": {"get"},
    "/health/live": {"get"},
    "/health/ready": {"get"},
}


def test_the_openapi_schema_lists_every_route_with_a_summary(anonymous: APIClient) -> None:
    response = anonymous.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    paths = json.loads(response.content)["paths"]
    assert response.status_code == 200
    assert {p: methods - set(paths.get(p, {})) for p, methods in ROUTES.items()} == {p: set() for p in ROUTES}
    assert all(op.get("summary") for ops in paths.values() for op in ops.values())
    assert anonymous.get("/api/docs/").status_code == 200


def test_it_counts_requests_by_route_template_not_by_raw_path(
    rest: APIClient, created: dict[str, Any]
) -> None:
    from prometheus_client import REGISTRY

    labels = {"method": "GET", "path": "api/v1/workflows/<str:workflow_id>", "status": "200"}
    before = REGISTRY.get_sample_value("http_requests_total", labels) or 0.0

    rest.get(f"/api/v1/workflows/{created['id']}")
    rest.get(f"/nothing-here/{created['id']}")

    assert REGISTRY.get_sample_value("http_requests_total", labels) == before + 1
    assert REGISTRY.get_sample_value(
        "http_requests_total", {"method": "GET", "path": "unmatched", "status": "404"}
    )


@pytest.mark.parametrize("raw", ['{"input": {"x": 1e400}}', '{"input": {"x": -1e999}}', '{"input": [1e400]}'])
def test_it_refuses_an_execute_input_with_a_number_jsonb_cannot_store(
    rest: APIClient, created: dict[str, Any], raw: str
) -> None:
    url = f"/api/v1/workflows/{created['id']}/execute"

    body = assert_error(rest.post(url, raw, content_type="application/json"), 400, "malformed_json")

    assert "Infinity" in body["message"] and "'input'" in body["message"]
    assert not Execution.objects.filter(workflow_id=created["id"]).exists()


def test_a_stored_version_that_no_longer_validates_cannot_start_and_says_why(
    rest: APIClient, created: dict[str, Any]
) -> None:
    """A version saved under older rules (an operator narrowed a sandbox since) is a 400, not a 500."""

    version = Workflow.objects.get(pk=created["id"]).current_version
    assert version is not None
    broken = {**version.definition, "nodes": [{**version.definition["nodes"][0], "nodeType": "gone.type"}]}
    WorkflowVersion.objects.filter(pk=version.pk).update(definition=broken)

    body = assert_error(rest.post(f"/api/v1/workflows/{created['id']}/execute"), 400, "invalid_definition")

    assert "no longer validates" in body["message"]
    assert any("gone.type" in " ".join(p) for p in body["details"].values())
    assert not Execution.objects.filter(workflow_id=created["id"]).exists()
