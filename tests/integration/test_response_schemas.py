"""Every operation of the OpenAPI schema answers a real request within its description (issue 11).

``Api.call`` checks every response any test receives (``tests/openapi_check.py``). This module makes sure
every operation is among them: it builds real data (workflows, executions that complete, fail, wait for a
signal and an approval, pause, cancel; schedules and a backfill; cluster events) and calls each operation with
a request that succeeds, then compares the operations it reached with the schema's, so that a new route
without coverage fails here. A sample of the documented errors (400, 401, 404, 409) is checked too, and the
checker itself is shown to catch each kind of drift.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from tests import openapi_check
from tests.harness import Api, wait_for
from tests.integration.test_control import signal_workflow
from tests.integration.test_executions import minimal, step, workflow

pytestmark = pytest.mark.usefixtures("live_db")

Covered = set[tuple[str, str]]


class RecordingApi(Api):
    """The suite's client (so every answer is checked), noting which operations answered a 2xx."""

    def __init__(self, base: str, token: str) -> None:
        super().__init__(base, token)
        self.covered: Covered = set()

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        status, answer = super().call(method, path, body, headers)
        operation = openapi_check.find(method, path.split("?")[0])
        if operation is not None and 200 <= status < 300:
            self.covered.add((operation.method, operation.template))
        return status, answer

    def ok(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        status, answer = self.call(method, path, body)
        assert status == expect, f"{method} {path}: {status} {answer}"
        return answer


def every_operation() -> Covered:
    return {(op.method, op.template) for op in openapi_check.operations()}


@pytest.fixture
def client(api: Api) -> RecordingApi:
    return RecordingApi(api.base, api.token)


# --- the data ---------------------------------------------------------------------------------------------


def create(client: RecordingApi, body: dict[str, Any]) -> str:
    client.ok("POST", "/api/v1/workflows", body, expect=201)
    return str(body["id"])


def start(client: RecordingApi, workflow_id: str) -> str:
    started = client.ok("POST", f"/api/v1/workflows/{workflow_id}/execute", {"input": {"n": 1}})
    return str(started["executionId"])


def node_status(client: RecordingApi, execution_id: str, node_id: str, status: str) -> bool:
    detail = client.ok("GET", f"/api/v1/executions/{execution_id}")
    return any(n["nodeId"] == node_id and n["status"] == status for n in detail["nodes"])


def failing(workflow_id: str, missing: Path) -> dict[str, Any]:
    """A source that fails (its file is missing) once, is retried after a short wait, then fails for good."""
    late = step("late", "file.csv", "source", path=str(missing))
    late["retry"] = {"maxAttempts": 2, "initialInterval": "10ms", "retryOn": "all"}
    body = workflow(
        workflow_id,
        [
            step("nums", "sequence.numbers", "source", start=1, end=2),
            late,
            step("count", "aggregate.count", "sink"),
        ],
        [("nums", "count"), ("late", "count")],
    )
    body["settings"] = {"timeout": "5m", "concurrency": {"max": 5, "policy": "queue"}}
    return body


def delayed(workflow_id: str) -> dict[str, Any]:
    return workflow(
        workflow_id,
        [
            step("in", "execution.input", "source"),
            step("wait", "delay", "transform", duration="1h"),
            step("out", "aggregate.count", "sink"),
        ],
        [("in", "wait"), ("wait", "out")],
    )


# --- the walk -----------------------------------------------------------------------------------------------


def health_and_cluster(client: RecordingApi, workflow_id: str, execution_id: str) -> None:
    for path in (
        "/health",
        "/health/live",
        "/health/ready",
        "/monitoring/cluster/status",
        "/api/",
        "/api/v1/",
    ):
        client.ok("GET", path)
    for path in (
        "stats",
        "shards",
        "members",
        "members?status=up&limit=5",
        f"workflow/{workflow_id}/location",
    ):
        client.ok("GET", f"/api/v1/cluster/{path}")
    client.ok("GET", f"/api/v1/executions/{execution_id}/location")
    events = client.ok("GET", "/api/v1/events?limit=20")
    assert events["events"], "the node's start records member events"
    client.ok("GET", f"/api/v1/events/{events['events'][0]['event_type']}?limit=5")
    client.ok("GET", f"/api/v1/events/workflow/{workflow_id}")
    client.ok("GET", "/api/v1/events/stats")


def reads_of(client: RecordingApi, workflow_id: str, execution_id: str) -> None:
    """Every read route of one workflow and one of its executions."""
    client.ok("GET", f"/api/v1/workflows/{workflow_id}")
    client.ok("GET", f"/api/v1/workflows/{workflow_id}/status")
    client.ok("GET", f"/api/v1/workflows/{workflow_id}/executions")
    client.ok("GET", f"/api/v1/workflows/{workflow_id}/executions/{execution_id}/logs")
    client.ok("GET", f"/api/v1/executions/{execution_id}")
    client.ok("GET", f"/api/v1/executions/{execution_id}/events?limit=50")
    listed = client.ok("GET", f"/api/v1/executions?workflowId={workflow_id}&limit=1&count=true")
    if listed["nextCursor"]:
        client.ok("GET", f"/api/v1/executions?workflowId={workflow_id}&cursor={listed['nextCursor']}")
    client.ok("GET", f"/api/history/{workflow_id}")
    client.ok("GET", f"/api/history/{workflow_id}/status")
    client.ok("GET", f"/api/history/{workflow_id}/execution/{execution_id}")
    client.ok("GET", f"/api/history/{workflow_id}/timeline?executionId={execution_id}")


def live_updates(client: RecordingApi, workflow_id: str, execution_id: str) -> None:
    """The streams and their long polls: a finished execution's stream ends by itself, a workflow's after
    ``timeout``; the polls answer without waiting (tests/integration/test_streams.py reads them closely)."""
    client.ok("GET", f"/api/v1/executions/{execution_id}/stream")
    client.ok("GET", f"/api/v1/workflows/{workflow_id}/executions/stream?after=0&timeout=1")
    client.ok("GET", f"/api/v1/executions/{execution_id}/events/poll?after=0&wait=1")
    client.ok("GET", f"/api/v1/workflows/{workflow_id}/executions/poll?after=0")


def completed_and_failed(client: RecordingApi, uid: str, tmp_path: Path) -> str:
    """A completed execution (rerun) and a failed one (retried); returns the completed one's workflow."""
    done_wf = create(client, minimal(f"rs-done-{uid}"))
    done = start(client, done_wf)
    assert client.wait_finished(done)["status"] == "completed"
    reads_of(client, done_wf, done)
    live_updates(client, done_wf, done)
    rerun = client.ok("POST", f"/api/v1/executions/{done}/rerun")
    client.wait_finished(rerun["executionId"])
    started_es = client.ok("POST", f"/api/v1/workflows/{done_wf}/execute-es")  # the original's: no body
    client.wait_finished(started_es["executionId"])
    changed = minimal(done_wf)
    changed["description"] = "changed"
    client.ok("PUT", f"/api/v1/workflows/{done_wf}", changed)
    client.ok("GET", f"/api/v1/workflows/{done_wf}/versions")
    client.ok("GET", f"/api/v1/workflows/{done_wf}/versions/2")

    fail_wf = create(client, failing(f"rs-fail-{uid}", tmp_path / "missing.csv"))
    failed = start(client, fail_wf)
    assert client.wait_finished(failed)["status"] == "failed"
    reads_of(client, fail_wf, failed)
    client.ok("POST", f"/api/v1/executions/{failed}/retry", expect=202)
    client.wait_finished(failed)
    return done_wf


def waiting_for_signals(client: RecordingApi, uid: str) -> None:
    """An execution waiting for a signal, then for an approval (read while it waits), then approved."""
    wf = create(client, signal_workflow(f"rs-wait-{uid}"))
    execution = start(client, wf)
    wait_for("the signal wait", lambda: node_status(client, execution, "order", "waiting"))
    reads_of(client, wf, execution)
    health_and_cluster(client, wf, execution)
    client.ok("POST", f"/api/v1/executions/{execution}/signals/order", {"item": "book"}, expect=202)
    wait_for("the approval wait", lambda: node_status(client, execution, "gate", "waiting"))
    client.ok("POST", f"/api/v1/executions/{execution}/signals/approve", {"comment": "ok"}, expect=202)
    assert client.wait_finished(execution)["status"] == "completed"
    reads_of(client, wf, execution)


def paused_and_cancelled(client: RecordingApi, uid: str) -> None:
    wf = create(client, delayed(f"rs-delay-{uid}"))
    execution = start(client, wf)
    wait_for("the delay", lambda: node_status(client, execution, "wait", "waiting"))
    client.ok("POST", f"/api/v1/executions/{execution}/pause", expect=202)
    wait_for("the pause", lambda: client.ok("GET", f"/api/v1/executions/{execution}")["status"] == "paused")
    reads_of(client, wf, execution)
    client.ok("POST", f"/api/v1/executions/{execution}/resume", expect=202)
    client.ok("POST", f"/api/v1/executions/{execution}/cancel", {"reason": "done here"}, expect=202)
    assert client.wait_finished(execution)["status"] == "cancelled"
    reads_of(client, wf, execution)


def schedules(client: RecordingApi, workflow_id: str) -> None:
    """Every schedule route on a paused fixed-rate schedule and a cron one, and a one-fire backfill."""
    client.ok("GET", "/api/v1/schedules/templates")
    anchor = (timezone.now() - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    created = client.ok(
        "POST",
        "/api/v1/schedules",
        {
            "workflowId": workflow_id,
            "scheduleType": "fixed_rate",
            "interval": "1h",
            "enabled": False,
            "startAt": anchor.isoformat(),
            "jitter": "1s",
        },
        expect=201,
    )
    sid = created["id"]
    client.ok("GET", f"/api/v1/schedules/{sid}")
    client.ok("PUT", f"/api/v1/schedules/{sid}", {"scheduleType": "fixed_rate", "interval": "2h"})
    client.ok("PATCH", f"/api/v1/schedules/{sid}", {"interval": "1h", "timezone": "Europe/Berlin"})
    client.ok("GET", f"/api/v1/schedules/{sid}/preview?count=3")
    end = (anchor + timedelta(minutes=90)).isoformat()
    backfill = client.ok(
        "POST",
        f"/api/v1/schedules/{sid}/backfill",
        {"start": anchor.isoformat(), "end": end, "maxActive": 1},
        expect=202,
    )
    wait_for(
        "the backfill", lambda: client.ok("GET", f"/api/v1/backfills/{backfill['id']}")["state"] != "running"
    )
    client.ok("POST", f"/api/v1/schedules/{sid}/resume")
    client.ok("POST", f"/api/v1/schedules/{sid}/pause")
    client.ok("POST", "/api/v1/schedules/add", {"workflowId": workflow_id, "scheduleType": "cron"})
    client.ok("GET", f"/api/v1/schedules?workflowId={workflow_id}")
    stopped = client.ok("POST", f"/api/v1/schedules/{workflow_id}/stop")
    assert len(stopped["scheduleIds"]) == 2
    client.ok("DELETE", f"/api/v1/schedules/{sid}")


def sign_in_and_out(client: RecordingApi, uid: str) -> None:
    """The console's sign-in (apps/accounts/api.py): the session route's CSRF token, sent back as a browser
    does (cookie and header)."""
    get_user_model().objects.create_user(f"rs-login-{uid}", password=f"pw-{uid}")
    csrf = client.ok("GET", "/api/v1/auth/session")["csrfToken"]
    browser = {"Cookie": f"csrftoken={csrf}", "X-CSRFToken": csrf}
    login = {"username": f"rs-login-{uid}", "password": f"pw-{uid}"}
    status, answer = client.call("POST", "/api/v1/auth/login", login, browser)
    assert status == 200 and answer["username"] == f"rs-login-{uid}", answer
    assert client.call("POST", "/api/v1/auth/logout", None, browser)[0] == 204


def api_tokens(client: RecordingApi, uid: str) -> None:
    """The admins' token routes: create one (its key, once), list them, revoke it."""
    owner = get_user_model().objects.create_user(f"rs-tokens-{uid}")
    created = client.ok(
        "POST", "/api/v1/auth/tokens", {"name": "ci", "username": owner.username, "expires": "1d"}, expect=201
    )
    listed = client.ok("GET", f"/api/v1/auth/tokens?username={owner.username}")
    assert [t["id"] for t in listed["tokens"]] == [created["id"]]
    client.ok("DELETE", f"/api/v1/auth/tokens/{created['id']}", expect=204)


def walk(client: RecordingApi, uid: str, tmp_path: Path) -> None:
    """Every operation with a request that succeeds (also walked by test_time_formats.py)."""
    client.ok("GET", "/api/v1/workflows/node-types")
    client.ok("GET", "/api/v1/workflows?limit=20&recent=5&q=rs-&tag=")
    done_wf = completed_and_failed(client, uid, tmp_path)
    waiting_for_signals(client, uid)
    paused_and_cancelled(client, uid)
    schedules(client, done_wf)
    unused = create(client, minimal(f"rs-unused-{uid}"))
    client.ok("DELETE", f"/api/v1/workflows/{unused}")
    sign_in_and_out(client, uid)
    api_tokens(client, uid)
    client.ok("GET", "/api/v1/cluster/invariants?limit=100")  # the invariant checker (test_invariants.py)
    client.ok("POST", "/api/v1/cluster/invariants/repair?limit=100")


def test_every_operation_in_the_schema_answers_a_real_request_within_its_description(
    client: RecordingApi, uid: str, tmp_path: Path
) -> None:
    walk(client, uid, tmp_path)
    missing = sorted(every_operation() - client.covered)
    assert not missing, f"operations no request of this test reached with a 2xx: {missing}"
    assert client.covered == every_operation()


# --- errors -------------------------------------------------------------------------------------------------


def test_documented_errors_answer_in_the_error_shape(client: RecordingApi, uid: str) -> None:
    """Each answer is checked by ``Api.call``: the status must be documented and the body the error shape."""
    wf = create(client, minimal(f"rs-err-{uid}"))
    execution = start(client, wf)
    client.wait_finished(execution)
    cases: list[tuple[str, str, Any, int]] = [
        ("GET", "/api/v1/workflows?limit=-1", None, 400),
        ("GET", "/api/v1/executions?status=sideways", None, 400),
        ("POST", "/api/v1/workflows", {"name": f"rs-bad-{uid}", "nodes": "x"}, 400),  # no id: no draft
        ("POST", f"/api/v1/workflows/{wf}/execute", {"input": [1]}, 400),
        ("GET", "/api/v1/cluster/members?status=sideways", None, 400),
        ("POST", "/api/v1/schedules", {"workflowId": wf, "scheduleType": "weekly"}, 400),
        ("GET", "/api/v1/workflows?recent=21", None, 400),
        ("GET", f"/api/v1/workflows/{wf}/versions/9", None, 404),
        ("GET", f"/api/v1/executions/nope-{uid}", None, 404),
        ("GET", f"/api/history/nope-{uid}/timeline", None, 404),
        ("GET", f"/api/v1/schedules/nope-{uid}", None, 404),
        ("GET", f"/api/v1/backfills/nope-{uid}", None, 404),
        ("GET", f"/api/v1/cluster/workflow/nope-{uid}/location", None, 404),
        ("GET", "/api/v1/no-such-route", None, 404),
        ("POST", "/api/v1/workflows", minimal(wf), 409),
        ("POST", f"/api/v1/executions/{execution}/cancel", None, 409),
        ("POST", f"/api/v1/executions/{execution}/pause", None, 409),
        ("DELETE", "/api/v1/workflows/node-types", None, 405),
    ]
    for method, path, body, expected in cases:
        status, answer = client.call(method, path, body)
        assert status == expected, (method, path, status, answer)
        assert set(answer) == {"error", "message", "details"}, answer
    status, answer = Api(client.base, f"not-a-token-{uid}").get("/api/v1/cluster/stats")
    assert status == 401 and answer["error"] == "not_authenticated"


# --- the checker catches drift ------------------------------------------------------------------------------

EXECUTION = "/api/v1/executions/exec_1"
ERROR = '{"error": "not_found", "message": "m", "details": {}}'


def event_stats(**change: Any) -> str:
    return json.dumps(
        {"total": 1, "byType": {"member_event": 1}, "bySeverity": {"INFO": 1}, "last24h": 1, **change}
    )


@pytest.mark.parametrize(
    ("method", "path", "status", "content_type", "body", "reported"),
    [
        ("GET", "/api/v1/events/stats", 200, "application/json", event_stats(), None),
        (
            "GET",
            "/api/v1/events/stats",
            200,
            "application/json",
            event_stats(extra=1),
            "'extra' was unexpected",
        ),
        (
            "GET",
            "/api/v1/events/stats",
            200,
            "application/json",
            event_stats(total="1"),
            "$.total: '1' is not of type",
        ),
        (
            "GET",
            "/api/v1/events/stats",
            200,
            "application/json",
            event_stats(total=None),
            "$.total: None is not of",
        ),
        (
            "GET",
            "/api/v1/events/stats",
            200,
            "application/json",
            '{"total": 1}',
            "'byType' is a required property",
        ),
        ("GET", "/api/v1/events/stats", 200, "text/html", "<p>", "but the answer is text/html"),
        ("GET", "/api/v1/events/stats", 418, "application/json", ERROR, "status 418 is not documented"),
        ("GET", "/api/v1/events/stats", 401, "application/json", '{"detail": "x"}', "'error' is a required"),
        (
            "GET",
            "/api/v1/cluster/members",
            200,
            "application/json",
            '{"members": [{"nodeId": "n"}], "count": 1}',
            "$.members[0]: 'name' is a required property",
        ),
        (
            "GET",
            "/api/v1/backfills/b1",
            200,
            "application/json",
            '{"id": "b1", "cursor": "yesterday"}',
            "$.cursor: 'yesterday' is not a 'date-time'",
        ),
        ("GET", "/monitoring/cluster/status", 200, "text/plain", "Cluster Status:\n", None),
        ("GET", "/api/v1/no-such-route", 404, "application/json", ERROR, None),
        (
            "GET",
            "/api/v1/no-such-route",
            200,
            "application/json",
            "{}",
            "matches no route, yet it answered 200",
        ),
        ("DELETE", "/api/v1/events/stats", 405, "application/json", ERROR, None),
        (
            "DELETE",
            "/api/v1/events/stats",
            200,
            "application/json",
            "{}",
            "is not in the schema, yet the view",
        ),
        ("GET", "/admin/", 200, "text/html", "<html>", None),
    ],
)
def test_the_checker_reports_each_kind_of_drift(
    method: str, path: str, status: int, content_type: str, body: str, reported: str | None
) -> None:
    found = openapi_check.problems(method, path, status, content_type, body)
    if reported is None:
        assert found == []
    else:
        assert any(reported in problem for problem in found), found


def test_a_route_missing_from_the_schema_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    described = openapi_check.schema()
    paths = {k: v for k, v in described["paths"].items() if k != "/api/v1/backfills/{backfill_id}"}
    monkeypatch.setattr(openapi_check, "schema", lambda: {**described, "paths": paths})
    monkeypatch.setattr(openapi_check, "_templates", openapi_check._templates.__wrapped__)
    found = openapi_check.problems("GET", "/api/v1/backfills/b1", 404, "application/json", ERROR)
    assert found and "reaches view 'backfill'" in found[0] and "does not describe" in found[0], found
