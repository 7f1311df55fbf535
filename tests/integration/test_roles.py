"""Roles (workflow_engine/roles.py) on every route: a route x role matrix, the role groups, audit fields.

``ROUTES`` is the decision for each route and method; a route added to the URLconf without one fails
``test_every_route_of_the_api_has_a_role_decision``. Requests go through the real URLconf, authentication,
permission classes and views, in a transaction rolled back at the end of each test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.views import APIView

from apps.workflows.engine.waits import rejection_of
from apps.workflows.models import Command, Execution, WorkflowVersion
from tests.integration.test_executions import step, workflow
from workflow_engine import roles

pytestmark = pytest.mark.django_db

ALL = frozenset({"viewer", "operator", "approver", "admin", "superuser"})
OPERATORS = frozenset({"operator", "admin", "superuser"})
ADMINS = frozenset({"admin", "superuser"})
SIGNALLERS = frozenset({"operator", "approver", "admin", "superuser"})

# (route name, method) -> the roles let in; "none" (a user without a role) is never let in
ROUTES: dict[tuple[str, str], frozenset[str]] = {
    # workflows
    ("node-types", "GET"): ALL,
    ("workflows", "GET"): ALL,
    ("workflows", "POST"): ADMINS,
    ("workflow", "GET"): ALL,
    ("workflow", "PUT"): ADMINS,
    ("workflow", "DELETE"): ADMINS,
    ("workflow-execute", "POST"): OPERATORS,
    ("workflow-execute-es", "POST"): OPERATORS,
    ("workflow-status", "GET"): ALL,
    ("workflow-versions", "GET"): ALL,
    ("workflow-version", "GET"): ALL,
    ("workflow-executions", "GET"): ALL,
    ("execution-logs", "GET"): ALL,
    ("executions", "GET"): ALL,
    ("execution", "GET"): ALL,
    ("execution-events", "GET"): ALL,
    ("execution-stream", "GET"): ALL,
    ("execution-events-poll", "GET"): ALL,
    ("workflow-executions-stream", "GET"): ALL,
    ("workflow-executions-poll", "GET"): ALL,
    ("execution-cancel", "POST"): OPERATORS,
    ("execution-pause", "POST"): OPERATORS,
    ("execution-resume", "POST"): OPERATORS,
    ("execution-retry", "POST"): OPERATORS,
    ("execution-rerun", "POST"): OPERATORS,
    ("execution-signal", "POST"): SIGNALLERS,  # approval signals: approvers only (tested below)
    ("history", "GET"): ALL,
    ("history-status", "GET"): ALL,
    ("history-execution", "GET"): ALL,
    ("history-timeline", "GET"): ALL,
    # schedules
    ("schedules", "GET"): ALL,
    ("schedules", "POST"): ADMINS,
    ("schedule-add", "POST"): ADMINS,
    ("schedule-templates", "GET"): ALL,
    ("schedule", "GET"): ALL,
    ("schedule", "PUT"): ADMINS,
    ("schedule", "PATCH"): ADMINS,
    ("schedule", "DELETE"): ADMINS,
    ("schedule-pause", "POST"): ADMINS,
    ("schedule-resume", "POST"): ADMINS,
    ("schedule-stop", "POST"): ADMINS,
    ("schedule-preview", "GET"): ALL,
    ("schedule-backfill", "POST"): ADMINS,
    ("backfill", "GET"): ALL,
    # cluster and events (read only)
    ("cluster-stats", "GET"): ALL,
    ("cluster-shards", "GET"): ALL,
    ("cluster-members", "GET"): ALL,
    ("cluster-workflow-location", "GET"): ALL,
    ("execution-location", "GET"): ALL,
    ("events", "GET"): ALL,
    ("events-stats", "GET"): ALL,
    ("events-workflow", "GET"): ALL,
    ("events-type", "GET"): ALL,
    ("monitoring-cluster-status", "GET"): ALL,
    # the invariant checker: admins only (it reads the whole store; its repair hints any execution)
    ("cluster-invariants", "GET"): ADMINS,
    ("cluster-invariants-repair", "POST"): ADMINS,
    # API tokens: admins only, reads too (a token list says who can call the API)
    ("auth-tokens", "GET"): ADMINS,
    ("auth-tokens", "POST"): ADMINS,
    ("auth-token", "DELETE"): ADMINS,
}

# open on purpose: the schema, its docs and the list of resource roots (health probes are outside /api/)
OPEN = {"schema", "docs", "api-root", "api-v1-root", *("auth-session", "auth-login", "auth-logout")}


def _api_routes() -> Iterator[tuple[str, str, type[APIView]]]:
    """(path, name, view class) of every route under /api/ and /monitoring/ in the URLconf."""

    def walk(patterns: Any, prefix: str) -> Iterator[tuple[str, str, Any]]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern), pattern.name or "", pattern.callback

    for path, name, callback in walk(get_resolver().url_patterns, ""):
        if path.startswith(("api/", "monitoring/")) and name not in OPEN:
            yield path, name, callback.cls


def _methods(view: type[APIView]) -> list[str]:
    return [m.upper() for m in view.http_method_names if hasattr(view, m) and m not in ("options", "head")]


def test_every_route_of_the_api_has_a_role_decision() -> None:
    found = {(name, method) for _, name, view in _api_routes() for method in _methods(view)}
    assert found - ROUTES.keys() == set(), "routes without a role decision in ROUTES"
    assert ROUTES.keys() - found == set(), "decisions for routes that no longer exist"


def test_the_sign_in_routes_are_open_to_a_client_without_credentials_or_role() -> None:
    """The console signs in through them (apps/accounts/api.py): no token, no role; CSRF is tested in
    test_auth.py (``APIClient`` does not enforce it)."""
    anonymous = APIClient()
    assert anonymous.get("/api/v1/auth/session").status_code == 200
    assert anonymous.post("/api/v1/auth/login", {}, format="json").status_code == 400  # fields missing
    assert anonymous.post("/api/v1/auth/logout").status_code == 204
    assert client(None).get("/api/v1/auth/session").json()["roles"] == []


def user_with(role: str | None, name: str | None = None) -> Any:
    user = get_user_model().objects.create_user(
        name or f"{role or 'none'}-{uuid.uuid4().hex[:8]}", is_superuser=role == "superuser"
    )
    if role in ("viewer", "operator", "approver", "admin"):
        user.groups.add(Group.objects.get(name=role))
    return user


def client_of(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def client(role: str | None, name: str | None = None) -> APIClient:
    return client_of(user_with(role, name))


def _path(name: str) -> str:
    for path, route, _ in _api_routes():
        if route == name:
            return "/" + path.replace("<str:", "<").replace("<", "").replace(">", "-absent")
    raise AssertionError(name)


@pytest.mark.parametrize(("name", "method"), sorted(ROUTES))
def test_each_route_lets_in_exactly_its_roles(name: str, method: str) -> None:
    path, allowed = _path(name), ROUTES[(name, method)]
    for role in ("none", *sorted(ALL)):
        response = getattr(client(None if role == "none" else role), method.lower())(path, {}, format="json")
        body = response.json() if response["Content-Type"].startswith("application/json") else {}
        if role in allowed:
            assert response.status_code not in (401, 403), (role, method, path, body)
            assert response.status_code < 500, (role, method, path, body)
        else:
            assert response.status_code == 403, (role, method, path, response.status_code)
            assert body["error"] == "permission_denied" and body["details"] == {}


def test_a_user_without_a_role_is_told_to_ask_an_admin() -> None:
    response = client(None).get("/api/v1/workflows")
    assert response.status_code == 403
    assert response.json()["message"].startswith("Your account has no role; ask an admin")


def test_a_refusal_names_the_role_needed_and_the_roles_held() -> None:
    response = client("viewer").post("/api/v1/workflows", {}, format="json")
    assert response.status_code == 403
    message = response.json()["message"]
    assert "admin" in message and "workflows.manage_workflows" in message and "roles: viewer" in message


def test_anonymous_is_still_401_not_403() -> None:
    assert APIClient().get("/api/v1/workflows").status_code == 401


def test_the_role_groups_hold_the_permissions_of_roles_py() -> None:
    for role, permissions in roles.ROLE_PERMISSIONS.items():
        held = {
            f"{p.content_type.app_label}.{p.codename}"
            for p in Group.objects.get(name=role.value).permissions.select_related("content_type")
        }
        engine = {p for p in held if p.startswith(("workflows.", "accounts."))}
        assert engine >= set(permissions), role
        # the admin page may delete a token row; the API only revokes (roles.REVOKE_TOKENS)
        assert engine - set(permissions) <= {"accounts.delete_apitoken"}, role
    admin = {p.codename for p in Group.objects.get(name="admin").permissions.all()}
    assert {"add_user", "change_user", "add_tokenproxy"} <= admin  # the admin role manages users and tokens


def test_a_user_holding_only_the_approve_permission_counts_as_having_a_role() -> None:
    user = user_with(None)
    user.user_permissions.add(Permission.objects.get(codename="approve_execution"))
    assert client_of(user).get("/api/v1/workflows").status_code == 403  # reading needs read_api
    assert roles.has_any_role(get_user_model().objects.get(pk=user.pk))


# --- the exploit: an approval edited away ----------------------------------------------------------


def approval_workflow(workflow_id: str) -> dict[str, Any]:
    return workflow(
        workflow_id,
        [
            step("order", "wait.signal", "source", name="order"),
            step("gate", "approval", "transform", name="approve"),
            step("out", "aggregate.count", "sink"),
        ],
        [("order", "gate"), ("gate", "out")],
    )


def without_approval(workflow_id: str) -> dict[str, Any]:
    return workflow(
        workflow_id,
        [step("order", "wait.signal", "source", name="order"), step("out", "aggregate.count", "sink")],
        [("order", "out")],
    )


@pytest.fixture
def approval_wf() -> str:
    workflow_id = f"appr-{uuid.uuid4().hex[:10]}"
    response = client("superuser").post("/api/v1/workflows", approval_workflow(workflow_id), format="json")
    assert response.status_code == 201, response.json()
    return workflow_id


@pytest.mark.parametrize("role", ["viewer", "operator", "approver"])
def test_no_one_but_an_admin_can_edit_an_approval_away_or_delete_the_workflow(
    approval_wf: str, role: str
) -> None:
    rest = client(role)
    response = rest.put(f"/api/v1/workflows/{approval_wf}", without_approval(approval_wf), format="json")
    assert response.status_code == 403
    assert rest.delete(f"/api/v1/workflows/{approval_wf}").status_code == 403
    assert WorkflowVersion.objects.filter(workflow_id=approval_wf).count() == 1


def _started(rest: APIClient, workflow_id: str) -> str:
    response = rest.post(f"/api/v1/workflows/{workflow_id}/execute", {}, format="json")
    assert response.status_code == 200, response.json()
    return str(response.json()["executionId"])


def test_an_operator_sends_signals_but_cannot_approve_and_an_approver_only_approves(approval_wf: str) -> None:
    operator, approver = client("operator"), client("approver")
    execution_id = _started(operator, approval_wf)
    signals = f"/api/v1/executions/{execution_id}/signals"
    assert operator.post(f"{signals}/order", {"item": 1}, format="json").status_code == 202
    refused = operator.post(f"{signals}/approve", {}, format="json")
    assert refused.status_code == 403 and "approver" in refused.json()["message"]
    assert operator.post(f"{signals}/{rejection_of('approve')}", {}, format="json").status_code == 403
    assert approver.post(f"{signals}/order", {"item": 2}, format="json").status_code == 403
    assert approver.post(f"{signals}/approve", {}, format="json").status_code == 202
    names = Command.objects.filter(execution_id=execution_id, type="signal").values_list(
        "payload__name", flat=True
    )
    assert sorted(names) == ["approve", "order"]


# --- audit: who did it -------------------------------------------------------------------------------------


def test_each_change_records_its_user_and_the_api_shows_it(approval_wf: str) -> None:
    editor = user_with("admin", f"editor-{uuid.uuid4().hex[:6]}")
    response = client_of(editor).put(
        f"/api/v1/workflows/{approval_wf}", {**approval_workflow(approval_wf), "name": "v2"}, format="json"
    )
    assert response.status_code == 200 and response.json()["version"] == 2
    operator = user_with("operator", f"op-{uuid.uuid4().hex[:6]}")
    rest = client_of(operator)
    execution_id = _started(rest, approval_wf)
    assert rest.post(f"/api/v1/executions/{execution_id}/pause", format="json").status_code == 409  # pending
    assert (
        rest.post(f"/api/v1/executions/{execution_id}/cancel", {"reason": "r"}, format="json").status_code
        == 202
    )

    status = rest.get(f"/api/v1/workflows/{approval_wf}/status").json()
    assert status["version"] == 2 and status["updatedBy"] == editor.username
    assert status["createdBy"].startswith("superuser-")
    versions = dict(
        WorkflowVersion.objects.filter(workflow_id=approval_wf).values_list("number", "created_by")
    )
    assert versions[1].startswith("superuser-") and versions[2] == editor.username
    detail = rest.get(f"/api/v1/executions/{execution_id}").json()
    assert detail["startedBy"] == operator.username
    cancel = Command.objects.get(execution_id=execution_id, type="cancel")
    assert cancel.payload["by"] == operator.username
    rerun = rest.post(f"/api/v1/executions/{execution_id}/rerun", format="json").json()
    assert Execution.objects.get(pk=rerun["executionId"]).started_by == operator.username


def test_the_user_role_command_gives_one_role_and_a_token() -> None:
    from io import StringIO

    from django.core.management import call_command

    name, out = f"cli-{uuid.uuid4().hex[:8]}", StringIO()
    call_command("user_role", name, "viewer", stdout=out)
    call_command("user_role", name, "operator", stdout=out)
    user = get_user_model().objects.get(username=name)
    assert list(user.groups.values_list("name", flat=True)) == ["operator"]
    token = Token.objects.get(user=user).key
    assert f"API_TOKEN={token}" in out.getvalue()
    rest = APIClient()
    rest.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert rest.get("/api/v1/workflows").status_code == 200
    call_command("user_role", name, "none", stdout=out)
    assert not user.groups.exists()


def test_the_django_admin_offers_execution_actions_to_operators_only() -> None:
    from django.contrib import admin
    from django.test import RequestFactory

    model_admin = admin.site._registry[Execution]
    for role, expected in (("viewer", False), ("operator", True), ("superuser", True)):
        request = RequestFactory().get("/admin/workflows/execution/")
        request.user = user_with(role)
        assert ("cancel_executions" in model_admin.get_actions(request)) is expected, role
        assert model_admin.has_view_permission(request)
