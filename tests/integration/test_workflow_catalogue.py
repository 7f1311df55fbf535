"""What the console's workflow pages read (issue 13 item 1): ``GET /api/v1/workflows`` searched (``q``),
filtered by tag, paged with a total (``X-Total-Count``) and with each workflow's last runs (``recent``) in one
query for the page; a workflow's versions and one version's definition. Every bad parameter is a 400 naming
it, an unknown workflow or version a 404, never a 500.

The requests go through the whole stack in-process (``APIClient``), and every answer is checked against the
OpenAPI schema (``openapi_check``). Other tests' workflows may be in the database: every request here filters
on this test's own unique words.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from apps.workflows.models import Execution
from apps.workflows.services import executions
from tests import openapi_check
from tests.integration.test_execution_list import client_of
from tests.integration.test_executions import minimal

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def admin() -> APIClient:
    return client_of("admin")


@pytest.fixture
def rest() -> APIClient:
    return client_of("viewer")  # reading is for every role


@pytest.fixture
def word() -> str:
    return f"cat{uuid.uuid4().hex[:10]}"


def answer(client: APIClient, path: str, expect: int = 200) -> Any:
    response = client.get(path)
    text = response.content.decode()
    openapi_check.check_response(
        "GET", path.split("?")[0], response.status_code, response["Content-Type"], text
    )
    assert response.status_code == expect, text
    return response


def listed(client: APIClient, **params: Any) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = answer(client, f"/api/v1/workflows?{urlencode(params)}").json()
    return body


def define(admin: APIClient, workflow_id: str, **fields: Any) -> str:
    response = admin.post("/api/v1/workflows", {**minimal(workflow_id), **fields}, format="json")
    assert response.status_code == 201, response.content
    return workflow_id


def run(workflow_id: str, status: str, minute: int) -> str:
    execution, _ = executions.start(workflow_id)
    created = T0 + timedelta(minutes=minute)
    Execution.objects.filter(pk=execution.pk).update(status=status, created_at=created, started_at=created)
    return execution.id


# --- search and tags ----------------------------------------------------------------------------------------


def test_q_finds_workflows_by_id_name_or_description_whatever_the_case(admin: APIClient, word: str) -> None:
    by_id = define(admin, f"{word}-id")
    by_name = define(admin, f"other-{uuid.uuid4().hex[:8]}", name=f"Nightly {word.upper()} load")
    by_text = define(admin, f"other-{uuid.uuid4().hex[:8]}", description=f"copies the {word} table")
    define(admin, f"other-{uuid.uuid4().hex[:8]}", description="nothing to see")
    assert [w["id"] for w in listed(admin, q=word.upper())] == sorted([by_id, by_name, by_text])
    assert [w["id"] for w in listed(admin, q=f"{word}-ID")] == [by_id]


def test_q_takes_percent_and_underscore_as_plain_characters(admin: APIClient, word: str) -> None:
    define(admin, f"{word}-a", description="50% off")
    define(admin, f"{word}-b", description="500 off")
    assert [w["id"] for w in listed(admin, q=f"{word}")] == [f"{word}-a", f"{word}-b"]
    found = [w["id"] for w in listed(admin, q="50% off") if w["id"].startswith(word)]
    assert found == [f"{word}-a"]
    assert [w for w in listed(admin, q="_") if w["id"].startswith(word)] == []


def test_tag_keeps_the_workflows_whose_latest_save_has_exactly_that_tag(admin: APIClient, word: str) -> None:
    define(admin, f"{word}-1", tags=[word, "etl"])
    define(admin, f"{word}-2", tags=[f"{word}-more"])
    draft = {"id": f"{word}-3", "name": "half done", "nodes": [], "edges": [], "tags": [word]}
    assert admin.post("/api/v1/workflows", draft, format="json").json()["valid"] is False
    assert [w["id"] for w in listed(admin, tag=word)] == [f"{word}-1", f"{word}-3"]
    assert [w["id"] for w in listed(admin, tag=word, q="half")] == [f"{word}-3"]
    # a save that drops the tag drops the workflow from the filter
    assert admin.put(f"/api/v1/workflows/{word}-1", minimal(f"{word}-1"), format="json").status_code == 200
    assert [w["id"] for w in listed(admin, tag=word)] == [f"{word}-3"]


# --- pages --------------------------------------------------------------------------------------------------


def test_pages_follow_limit_and_offset_and_count_every_match_in_a_header(admin: APIClient, word: str) -> None:
    ids = [define(admin, f"{word}-{n}") for n in range(5)]
    first = answer(admin, f"/api/v1/workflows?q={word}&limit=2")
    last = answer(admin, f"/api/v1/workflows?q={word}&limit=2&offset=4")
    assert [w["id"] for w in first.json()] == ids[:2] and [w["id"] for w in last.json()] == ids[4:]
    assert first["X-Total-Count"] == last["X-Total-Count"] == "5"
    assert answer(admin, f"/api/v1/workflows?q={word}")["X-Total-Count"] == "5"


def test_without_the_consoles_parameters_the_list_is_the_originals_whole_list(admin: APIClient) -> None:
    everything = answer(admin, "/api/v1/workflows")
    items = everything.json()
    assert isinstance(items, list) and everything["X-Total-Count"] == str(len(items))
    assert all("recentExecutions" not in w for w in items)


# --- recent executions --------------------------------------------------------------------------------------


def test_recent_adds_each_workflows_last_executions_newest_first(admin: APIClient, word: str) -> None:
    busy, idle = define(admin, f"{word}-busy"), define(admin, f"{word}-idle")
    ran = [run(busy, status, minute) for minute, status in enumerate(["completed", "failed", "running"])]
    items = {w["id"]: w for w in listed(admin, q=word, recent=2)}
    recent = items[busy]["recentExecutions"]
    assert [(r["executionId"], r["status"]) for r in recent] == [(ran[2], "running"), (ran[1], "failed")]
    assert recent[0]["startTime"] == int((T0 + timedelta(minutes=2)).timestamp() * 1000)
    assert recent[0]["createdAt"] == "2026-03-01T12:02:00.000Z"
    assert items[idle]["recentExecutions"] == []


def test_recent_costs_the_same_queries_for_two_workflows_as_for_twenty(admin: APIClient, word: str) -> None:
    for n in range(20):
        workflow_id = define(admin, f"{word}-{n:02}")
        for minute in range(3):
            run(workflow_id, "completed", minute)

    def cost(limit: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert len(listed(admin, q=word, recent=5, limit=limit)) == limit
        return len(captured.captured_queries)

    # the token, the page with its recent executions, the count
    assert cost(2) == cost(20) == 3


# --- bad input ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"recent": "21"}, "recent"),
        ({"recent": "-1"}, "recent"),
        ({"recent": "many"}, "recent"),
        ({"q": "x" * 201}, "q"),
        ({"q": "a\x00b"}, "q"),
        ({"tag": "t" * 201}, "tag"),
        ({"limit": "-1"}, "limit"),
        ({"offset": "x"}, "offset"),
    ],
)
def test_a_bad_list_parameter_is_a_400_naming_it(rest: APIClient, params: dict[str, str], field: str) -> None:
    body = answer(rest, f"/api/v1/workflows?{urlencode(params)}", expect=400).json()
    assert body["error"] == "invalid_request" and set(body["details"]) == {field}, body


# --- versions -----------------------------------------------------------------------------------------------


def test_versions_list_newest_first_with_who_saved_each_and_its_hash(
    admin: APIClient, rest: APIClient, word: str
) -> None:
    workflow_id = define(admin, word)
    for name in ("second", "third"):
        body = {**minimal(workflow_id), "name": name}
        assert admin.put(f"/api/v1/workflows/{workflow_id}", body, format="json").status_code == 200
    response = answer(rest, f"/api/v1/workflows/{workflow_id}/versions?limit=2")
    versions = response.json()
    assert [v["number"] for v in versions] == [3, 2] and response["X-Total-Count"] == "3"
    assert versions[0]["createdBy"].startswith("admin-") and len(versions[0]["contentHash"]) == 64
    older = answer(rest, f"/api/v1/workflows/{workflow_id}/versions?offset=2").json()
    assert [v["number"] for v in older] == [1]


def test_a_version_answers_its_definition_as_posted(admin: APIClient, rest: APIClient, word: str) -> None:
    workflow_id = define(admin, word)
    changed = {**minimal(workflow_id), "description": "v2"}
    assert admin.put(f"/api/v1/workflows/{workflow_id}", changed, format="json").status_code == 200
    first = answer(rest, f"/api/v1/workflows/{workflow_id}/versions/1").json()
    second = answer(rest, f"/api/v1/workflows/{workflow_id}/versions/2").json()
    assert first["definition"] == minimal(workflow_id) and second["definition"] == changed
    assert (first["number"], first["workflowId"]) == (1, workflow_id)


@pytest.mark.parametrize("number", ["3", "0", "-1", "1.0", "x", "\uff11", "99999999999"])
def test_an_unknown_version_is_a_404_naming_it(
    rest: APIClient, admin: APIClient, word: str, number: str
) -> None:
    workflow_id = define(admin, word)
    body = answer(rest, f"/api/v1/workflows/{workflow_id}/versions/{number}", expect=404).json()
    assert body["error"] == "not_found" and "version" in body["details"], body


def test_versions_of_an_unknown_workflow_are_a_404(rest: APIClient, word: str) -> None:
    assert answer(rest, f"/api/v1/workflows/{word}/versions", expect=404).json()["details"] == {
        "workflowId": [word]
    }
    assert answer(rest, f"/api/v1/workflows/{word}/versions/1", expect=404).json()["details"] == {
        "workflowId": [word]
    }


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "1001"}, {"offset": "-1"}])
def test_a_bad_versions_parameter_is_a_400_naming_it(
    rest: APIClient, admin: APIClient, word: str, params: dict[str, str]
) -> None:
    workflow_id = define(admin, word)
    path = f"/api/v1/workflows/{workflow_id}/versions?{urlencode(params)}"
    assert set(answer(rest, path, expect=400).json()["details"]) == set(params)
