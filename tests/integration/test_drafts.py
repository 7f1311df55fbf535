"""Drafts (issue 12, item 3): any JSON object with a valid id can be saved; what does not validate is a draft,
answered with its field-level problems, that cannot be executed or scheduled until a valid save. Versions pin
only valid definitions: an execution running when a draft is saved over its workflow finishes on its version.

End to end against the session's real node (gateway, coordinator, worker) through ``Api``, whose every answer
is checked against the OpenAPI description; the ETag and hostile-body cases in-process through DRF's client.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.schedules.models import Schedule, ScheduleFire
from apps.workflows.models import Execution, Workflow, WorkflowVersion
from tests.harness import Api, wait_for
from tests.integration.test_executions import minimal, step, workflow

pytestmark = pytest.mark.usefixtures("live_db")

DRAFT_STATUS = "Draft - not scheduled until the workflow is valid"


@pytest.fixture
def _stop_schedules(live_db: None) -> Iterator[None]:
    """The session's node fires every active schedule: stop this test's when it ends."""
    before = set(Schedule.objects.values_list("id", flat=True))
    yield
    Schedule.objects.exclude(id__in=before).update(state="stopped", next_fire_at=None, next_due_at=None)


def refused(api: Api, path: str, problems: dict[str, list[str]], body: Any = None) -> dict[str, Any]:
    """``path`` answers 400 invalid_definition listing exactly ``problems``."""
    status, error = api.post(path, body)
    assert status == 400, error
    assert error["error"] == "invalid_definition" and "draft" in error["message"], error
    assert error["details"] == problems, error
    return dict(error)


def delayed(workflow_id: str, duration: str) -> dict[str, Any]:
    """execution.input -> delay -> count: a run that lasts ``duration``."""
    return workflow(
        workflow_id,
        [
            step("in", "execution.input", "source"),
            step("wait", "delay", "transform", duration=duration),
            step("out", "aggregate.count", "sink"),
        ],
        [("in", "wait"), ("wait", "out")],
    )


# --- the acceptance test: create empty, edit in three saves, run --------------------------------------------


def test_an_empty_workflow_edited_in_three_saves_runs_and_its_drafts_cannot(api: Api, uid: str) -> None:
    wf = f"draft-accept-{uid}"
    url = f"/api/v1/workflows/{wf}"

    status, created = api.post("/api/v1/workflows", {"id": wf, "name": "editing", "nodes": [], "edges": []})
    assert status == 201, created
    assert created["valid"] is False and "nodes" in created["problems"], created
    assert (created["message"], created["workflowId"], created["version"]) == (
        "Workflow created successfully",
        wf,
        0,
    )
    assert created["scheduleStatus"] == DRAFT_STATUS
    refused(api, f"{url}/execute", created["problems"])
    assert not WorkflowVersion.objects.filter(workflow_id=wf).exists()

    source = step("s", "sequence.numbers", "source", start=1, end=5)
    half = {"id": wf, "name": "editing", "nodes": [source, step("f", "filter", "transform")], "edges": []}
    saves = [
        half,  # a source and a filter with no condition, nothing connected
        {**half, "edges": [{"id": "e1", "source": "s", "target": "f"}]},  # still no condition, no sink
    ]
    for body in saves:
        status, saved = api.call("PUT", url, body)
        assert status == 200 and saved["valid"] is False and saved["changed"] is True, saved
        assert saved["version"] == 0
        assert "nodes[1].config.condition" in saved["problems"], saved["problems"]
        status, shown = api.get(url)
        assert status == 200 and (shown["valid"], shown["problems"]) == (False, saved["problems"])
        assert shown["nodes"][1]["id"] == "f"  # GET answers the draft, as saved
        refused(api, f"{url}/execute", saved["problems"])

    valid = workflow(
        wf,
        [
            {**source, "type": "source"},
            step("f", "filter", "transform", condition="value > 2"),
            step("k", "aggregate.count", "sink"),
        ],
        [("s", "f"), ("f", "k")],
    )
    status, saved = api.call("PUT", url, valid)
    assert status == 200, saved
    assert (saved["valid"], saved["problems"], saved["version"], saved["changed"]) == (True, {}, 1, True)
    status, shown = api.get(url)
    assert (shown["valid"], shown["problems"]) == (True, {})

    status, started = api.post(f"{url}/execute")
    assert status == 200, started
    done = api.wait_finished(started["executionId"])
    assert done["status"] == "completed", done
    assert Execution.objects.get(pk=started["executionId"]).version.number == 1


# --- a draft over a valid workflow --------------------------------------------------------------------------


def test_a_draft_saved_over_a_running_workflow_lets_the_execution_finish_on_its_pinned_version(
    api: Api, uid: str
) -> None:
    wf = f"draft-pinned-{uid}"
    url = f"/api/v1/workflows/{wf}"
    assert api.post("/api/v1/workflows", delayed(wf, "2s"))[0] == 201
    status, started = api.post(f"{url}/execute")
    assert status == 200, started

    broken = delayed(wf, "2s")
    broken["nodes"][2]["nodeType"] = "no.such.type"
    status, saved = api.call("PUT", url, broken)
    assert status == 200 and saved["valid"] is False and saved["version"] == 1, saved
    assert "nodes[2].nodeType" in saved["problems"]

    refused(api, f"{url}/execute", saved["problems"])
    refused(api, f"/api/v1/executions/{started['executionId']}/rerun", saved["problems"])
    assert Execution.objects.get(pk=started["executionId"]).status in ("pending", "running")
    done = api.wait_finished(started["executionId"])
    assert done["status"] == "completed", done
    assert Execution.objects.get(pk=started["executionId"]).version.number == 1
    assert list(WorkflowVersion.objects.filter(workflow_id=wf).values_list("number", flat=True)) == [1]

    # the body of the last valid version again: the draft goes, the version is the head again
    status, saved = api.call("PUT", url, delayed(wf, "2s"))
    assert (status, saved["valid"], saved["version"], saved["changed"]) == (200, True, 1, True), saved
    assert api.post(f"{url}/execute")[0] == 200


# --- schedules ----------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("_stop_schedules")
def test_a_draft_cannot_be_scheduled_and_its_metadata_schedule_creates_nothing(api: Api, uid: str) -> None:
    wf = f"draft-sched-{uid}"
    body = {"id": wf, "name": "n", "nodes": [], "edges": []}
    body["metadata"] = {"schedule": {"enabled": True, "scheduleType": "fixed_rate", "interval": "1s"}}
    status, created = api.post("/api/v1/workflows", body)
    assert status == 201 and created["valid"] is False and created["scheduleStatus"] == DRAFT_STATUS

    refused(
        api,
        "/api/v1/schedules",
        created["problems"],
        {"workflowId": wf, "scheduleType": "fixed_rate", "interval": "1h"},
    )
    assert not Schedule.objects.filter(workflow_id=wf).exists()


@pytest.mark.usefixtures("_stop_schedules")
def test_a_malformed_metadata_schedule_makes_a_draft_naming_it(api: Api, uid: str) -> None:
    body = delayed(f"draft-meta-{uid}", "10ms")
    body["metadata"]["schedule"] = {"enabled": True, "scheduleType": "fixed_rate", "interval": "soon"}

    status, created = api.post("/api/v1/workflows", body)

    assert status == 201 and created["valid"] is False, created
    assert "metadata.schedule.interval" in created["problems"], created["problems"]
    assert not Schedule.objects.filter(workflow_id=body["id"]).exists()
    assert not WorkflowVersion.objects.filter(workflow_id=body["id"]).exists()


@pytest.mark.usefixtures("_stop_schedules")
def test_a_schedule_of_a_workflow_now_a_draft_fires_nothing_and_cannot_be_backfilled(
    api: Api, uid: str
) -> None:
    wf = f"draft-fires-{uid}"
    assert api.post("/api/v1/workflows", delayed(wf, "10ms"))[0] == 201
    status, schedule = api.post(
        "/api/v1/schedules", {"workflowId": wf, "scheduleType": "fixed_rate", "interval": "1s"}
    )
    assert status == 201, schedule
    broken = {**delayed(wf, "10ms"), "edges": []}
    status, saved = api.call("PUT", f"/api/v1/workflows/{wf}", broken)
    assert status == 200 and saved["valid"] is False, saved

    def refused_fires() -> list[ScheduleFire] | None:
        found = list(
            ScheduleFire.objects.filter(
                schedule_id=schedule["id"], outcome="skipped", execution__isnull=True
            ).order_by("fire_time")
        )
        return found if len(found) >= 2 else None

    first = wait_for("two fires refused", refused_fires, timeout=20)[0]

    # a fire may have started a run just before the draft was saved; none starts after
    started = Execution.objects.filter(workflow_id=wf, trigger="schedule", created_at__gte=first.due_at)
    assert not started.exists()
    refused(
        api,
        f"/api/v1/schedules/{schedule['id']}/backfill",
        saved["problems"],
        {"start": "2024-01-01T00:00:00Z", "end": "2024-01-01T00:00:05Z", "maxActive": 1},
    )


# --- ETags, concurrency and hostile bodies (in-process) -----------------------------------------------------


@pytest.fixture
def rest(live_db: None) -> APIClient:
    user = get_user_model().objects.create_user(f"drafter-{uuid.uuid4().hex[:8]}", is_superuser=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_etags_name_each_draft_and_if_match_refuses_a_stale_one(rest: APIClient, uid: str) -> None:
    wf = f"draft-etag-{uid}"
    url = f"/api/v1/workflows/{wf}"
    draft = {"id": wf, "name": "n", "nodes": [], "edges": []}
    created = rest.post("/api/v1/workflows", draft, format="json")
    first = created.headers["ETag"]
    assert rest.get(url).headers["ETag"] == first

    second = rest.put(url, {**draft, "name": "m"}, format="json", HTTP_IF_MATCH=first)
    assert second.status_code == 200 and second.headers["ETag"] != first
    stale = rest.put(url, minimal(wf), format="json", HTTP_IF_MATCH=first)
    assert stale.status_code == 412 and stale.json()["error"] == "precondition_failed"
    # the same draft body again, after other saves, has a new tag (no ABA)
    valid = rest.put(url, minimal(wf), format="json", HTTP_IF_MATCH=second.headers["ETag"])
    assert valid.status_code == 200 and valid.json()["valid"] is True
    again = rest.put(url, draft, format="json", HTTP_IF_MATCH=valid.headers["ETag"])
    assert again.status_code == 200 and again.headers["ETag"] not in (first, second.headers["ETag"])
    # GET's read-only fields PUT back are not stored: the same draft, unchanged
    shown = rest.get(url).json()
    same = rest.put(url, {**draft, "valid": True, "problems": {}}, format="json")
    assert (shown["valid"], same.json()["changed"]) == (False, False)
    assert "valid" not in (Workflow.objects.get(pk=wf).draft or {})


def test_concurrent_draft_and_valid_saves_never_fail_with_a_500(api: Api, uid: str) -> None:
    wf = f"draft-race-{uid}"
    url = f"/api/v1/workflows/{wf}"
    assert api.post("/api/v1/workflows", minimal(wf))[0] == 201
    statuses: list[int] = []
    # a stale tag (412), any tag, no condition
    conditions: list[dict[str, str] | None] = [{"If-Match": '"1-0000000000000000"'}, {"If-Match": "*"}, None]

    def writer(n: int) -> None:
        for i in range(6):
            body = minimal(wf) if (n + i) % 2 else {"id": wf, "name": f"d{n}-{i}", "nodes": [], "edges": []}
            statuses.append(api.call("PUT", url, body, conditions[i % 3])[0])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert set(statuses) == {200, 412}, statuses
    status, shown = api.get(url)
    assert status == 200 and isinstance(shown["valid"], bool)


@pytest.mark.parametrize(
    "body, field",
    [
        ([{"id": "x", "nodes": []}], "non_field_errors"),
        ({"name": "no id", "nodes": []}, "id"),
        ({"id": 7, "nodes": []}, "id"),
        ({"id": "a/b", "nodes": []}, "id"),
        ({"id": "x" * 201, "nodes": []}, "id"),
    ],
    ids=["an array", "no id", "a number id", "a slash in the id", "a long id"],
)
def test_a_body_without_a_usable_id_is_still_a_400_naming_it(rest: APIClient, body: Any, field: str) -> None:
    response = rest.post("/api/v1/workflows", body, format="json")

    assert response.status_code == 400 and response.json()["error"] == "invalid_definition"
    assert list(response.json()["details"]) == [field]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"id": "h", "nodes": [{"x": NaN}]}',
        b'{"id": "h", "nodes": ["nul\\u0000"]}',
        b'{"id": "h", "nodes": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    ],
    ids=["NaN", "NUL", "too deep"],
)
def test_a_hostile_draft_is_still_refused_and_stores_nothing(rest: APIClient, raw: bytes, uid: str) -> None:
    raw = raw.replace(b'"h"', f'"draft-hostile-{uid}"'.encode())

    response = rest.generic("POST", "/api/v1/workflows", raw, content_type="application/json")  # type: ignore[arg-type]

    assert response.status_code == 400 and response.json()["error"] == "malformed_json"
    assert not Workflow.objects.filter(pk=f"draft-hostile-{uid}").exists()


def test_a_draft_over_the_upload_limit_is_a_413(rest: APIClient, uid: str, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = {"id": f"draft-big-{uid}", "nodes": [], "description": "x" * 2000}

    response = rest.post("/api/v1/workflows", body, format="json")

    assert response.status_code == 413
    assert not Workflow.objects.filter(pk=body["id"]).exists()


@pytest.mark.parametrize(
    "extra",
    [{"name": "n" * 600}, {"name": 5, "nodes": "x"}, {"tags": 3, "edges": {"e": 1}, "settings": []}],
    ids=["a name longer than the column", "mistyped name and nodes", "mistyped tags, edges, settings"],
)
def test_a_draft_of_any_shape_is_saved_and_served_as_documented(
    api: Api, uid: str, extra: dict[str, Any]
) -> None:
    wf = f"draft-shape-{uid}"
    status, created = api.post("/api/v1/workflows", {"id": wf, **extra})
    assert status == 201 and created["valid"] is False, created

    status, shown = api.get(f"/api/v1/workflows/{wf}")  # checked against the OpenAPI description
    assert status == 200 and shown["problems"] == created["problems"]
    assert any(w["id"] == wf and w["valid"] is False for w in api.get("/api/v1/workflows")[1])
