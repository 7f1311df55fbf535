"""Idempotency-Key (issue 10): a retry with the same key and body gets the first answer; the same key with a
different body is a 409 naming the key (as Stripe does); keys are scoped per user, so one user's key never
returns (or blocks) another's execution or command.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.workflows.models import Command, Execution
from tests.harness import ORIGINAL_MINIMAL

pytestmark = pytest.mark.django_db


def operator(name: str) -> APIClient:
    user = get_user_model().objects.create_user(f"{name}-{uuid.uuid4().hex[:8]}")
    user.groups.add(Group.objects.get(name="operator"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def workflow_id() -> str:
    workflow_id = f"idem-{uuid.uuid4().hex[:10]}"
    admin = get_user_model().objects.create_user(f"admin-{uuid.uuid4().hex[:8]}", is_superuser=True)
    client = APIClient()
    client.force_authenticate(admin)
    response = client.post("/api/v1/workflows", {**ORIGINAL_MINIMAL, "id": workflow_id}, format="json")
    assert response.status_code == 201
    return workflow_id


def execute(client: APIClient, workflow_id: str, body: Any, key: str) -> Any:
    return client.post(
        f"/api/v1/workflows/{workflow_id}/execute", body, format="json", HTTP_IDEMPOTENCY_KEY=key
    )


def test_the_same_key_and_body_return_the_first_execution(workflow_id: str) -> None:
    alice = operator("alice")
    first = execute(alice, workflow_id, {"input": {"a": 1, "b": 2}}, "k1").json()
    again = execute(alice, workflow_id, {"input": {"b": 2, "a": 1}}, "k1").json()  # key order is not content
    assert again["executionId"] == first["executionId"] and again["duplicate"] is True


def test_the_same_key_with_a_different_body_is_a_409_naming_the_key(workflow_id: str) -> None:
    alice = operator("alice")
    first = execute(alice, workflow_id, {"input": {"day": "monday"}}, "order-42")
    assert first.status_code == 200

    response = execute(alice, workflow_id, {"input": {"day": "tuesday"}}, "order-42")

    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "conflict"
    assert body["message"] == "Idempotency-Key 'order-42' was already used with a different request body."
    assert "Idempotency-Key" in body["details"]
    assert Execution.objects.filter(workflow_id=workflow_id).count() == 1


def test_keys_are_scoped_per_user(workflow_id: str) -> None:
    alice, bob = operator("alice"), operator("bob")
    mine = execute(alice, workflow_id, {"input": {}}, "shared").json()
    theirs = execute(bob, workflow_id, {"input": {"other": True}}, "shared")
    assert theirs.status_code == 200 and theirs.json()["status"] == "started"
    assert theirs.json()["executionId"] != mine["executionId"]
    started_by = set(Execution.objects.filter(workflow_id=workflow_id).values_list("started_by", flat=True))
    assert len(started_by) == 2


def test_a_control_command_key_with_another_body_is_a_409_and_is_per_user(workflow_id: str) -> None:
    alice, bob = operator("alice"), operator("bob")
    execution_id = execute(alice, workflow_id, {}, "start").json()["executionId"]
    cancel = f"/api/v1/executions/{execution_id}/cancel"

    assert alice.post(cancel, {"reason": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="c").status_code == 202
    assert alice.post(cancel, {"reason": "a"}, format="json", HTTP_IDEMPOTENCY_KEY="c").status_code == 202
    refused = alice.post(cancel, {"reason": "b"}, format="json", HTTP_IDEMPOTENCY_KEY="c")
    assert refused.status_code == 409 and "'c'" in refused.json()["message"]
    assert bob.post(cancel, {"reason": "b"}, format="json", HTTP_IDEMPOTENCY_KEY="c").status_code == 202
    reasons = Command.objects.filter(execution_id=execution_id, type="cancel").values_list(
        "payload__reason", flat=True
    )
    assert sorted(reasons) == ["a", "b"]


def test_a_user_key_cannot_take_a_schedules_fire(workflow_id: str) -> None:
    """A schedule's fire uses the key ``schedule:<id>:<time>``; a user sending that key starts their own."""
    from apps.workflows.services import executions

    key = "schedule:sch_x:2026-01-01T00:00:00+00:00"
    by_user = execute(operator("mallory"), workflow_id, {"input": {}}, key).json()
    fired, created = executions.start(workflow_id, idempotency_key=key, trigger="schedule")
    assert created and fired.id != by_user["executionId"]
