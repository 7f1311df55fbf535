"""Optimistic concurrency on definitions: ETag on GET, If-Match on PUT and DELETE (412 when stale), and no
500 under concurrent writers (issue 10: 37 of 50 concurrent PUTs answered 500, a version number taken twice).

The concurrent tests commit (``live_db``): each writer is a thread with its own database connection, going
through the real URLconf, authentication and views, as gateway threads do.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.workflows.models import Workflow, WorkflowVersion
from tests.harness import ORIGINAL_MINIMAL

WRITERS = 10


def body(workflow_id: str, name: str) -> dict[str, Any]:
    return {**ORIGINAL_MINIMAL, "id": workflow_id, "name": name}


def admin_client() -> APIClient:
    user = get_user_model().objects.create_user(f"etag-{uuid.uuid4().hex[:8]}", is_superuser=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def at_once(count: int, call: Callable[[int], Any]) -> list[Any]:
    """``call(i)`` in ``count`` threads released together; their results in order."""
    barrier, results = threading.Barrier(count), [None] * count

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = call(i)
        finally:
            connection.close()  # each thread's own connection

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


@pytest.fixture
def created(live_db: None) -> tuple[APIClient, str]:
    rest, workflow_id = admin_client(), f"etag-{uuid.uuid4().hex[:10]}"
    assert rest.post("/api/v1/workflows", body(workflow_id, "v1"), format="json").status_code == 201
    return rest, workflow_id


def versions(workflow_id: str) -> list[int]:
    return sorted(WorkflowVersion.objects.filter(workflow_id=workflow_id).values_list("number", flat=True))


def test_concurrent_puts_all_succeed_with_contiguous_versions(created: tuple[APIClient, str]) -> None:
    rest, workflow_id = created
    path = f"/api/v1/workflows/{workflow_id}"
    answers = at_once(WRITERS, lambda i: rest.put(path, body(workflow_id, f"w{i}"), format="json"))

    assert [a.status_code for a in answers] == [200] * WRITERS, [a.json() for a in answers]
    assert sorted(a.json()["version"] for a in answers) == list(range(2, WRITERS + 2))
    assert versions(workflow_id) == list(range(1, WRITERS + 2))
    current = Workflow.objects.select_related("current_version").get(pk=workflow_id).current_version
    assert current is not None and current.number == WRITERS + 1
    assert Workflow.objects.get(pk=workflow_id).name == current.definition["name"]


def test_concurrent_puts_with_the_same_if_match_let_exactly_one_win(created: tuple[APIClient, str]) -> None:
    rest, workflow_id = created
    path = f"/api/v1/workflows/{workflow_id}"
    etag = rest.get(path)["ETag"]
    answers = at_once(
        WRITERS, lambda i: rest.put(path, body(workflow_id, f"w{i}"), format="json", HTTP_IF_MATCH=etag)
    )

    assert sorted(a.status_code for a in answers) == [200] + [412] * (WRITERS - 1)
    refused = next(a.json() for a in answers if a.status_code == 412)
    assert refused["error"] == "precondition_failed" and "If-Match" in refused["details"]
    assert versions(workflow_id) == [1, 2]


@pytest.mark.django_db
def test_get_gives_an_etag_that_a_put_checks_and_renews() -> None:
    rest, workflow_id = admin_client(), f"etag-{uuid.uuid4().hex[:10]}"
    path = f"/api/v1/workflows/{workflow_id}"
    created = rest.post("/api/v1/workflows", body(workflow_id, "v1"), format="json")
    first = rest.get(path)["ETag"]
    assert created["ETag"] == first and first.startswith('"1-')

    updated = rest.put(path, body(workflow_id, "v2"), format="json", HTTP_IF_MATCH=first)
    assert updated.status_code == 200 and updated.json()["version"] == 2
    second = updated["ETag"]
    assert second == rest.get(path)["ETag"] and second.startswith('"2-')

    stale = rest.put(path, body(workflow_id, "v3"), format="json", HTTP_IF_MATCH=first)
    assert stale.status_code == 412
    assert stale.json()["error"] == "precondition_failed" and second in stale.json()["message"]
    assert versions(workflow_id) == [1, 2]
    # several tags, a weakened one, and "*" match as RFC 9110 and proxies would have them
    assert (
        rest.put(path, body(workflow_id, "v2"), HTTP_IF_MATCH=f'"x", W/{second}', format="json").status_code
        == 200
    )
    assert rest.put(path, body(workflow_id, "v4"), HTTP_IF_MATCH="*", format="json").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["1-abc", '"unclosed', "", 'W/"a"b"'])
def test_a_malformed_if_match_is_a_400_naming_the_header(header: str) -> None:
    rest, workflow_id = admin_client(), f"etag-{uuid.uuid4().hex[:10]}"
    rest.post("/api/v1/workflows", body(workflow_id, "v1"), format="json")
    response = rest.put(
        f"/api/v1/workflows/{workflow_id}", body(workflow_id, "v2"), format="json", HTTP_IF_MATCH=header
    )
    assert response.status_code == 400 and "If-Match" in response.json()["details"]


@pytest.mark.django_db
def test_delete_with_a_stale_etag_is_refused_and_with_the_current_one_deletes() -> None:
    rest, workflow_id = admin_client(), f"etag-{uuid.uuid4().hex[:10]}"
    path = f"/api/v1/workflows/{workflow_id}"
    first = rest.post("/api/v1/workflows", body(workflow_id, "v1"), format="json")["ETag"]
    second = rest.put(path, body(workflow_id, "v2"), format="json")["ETag"]

    assert rest.delete(path, HTTP_IF_MATCH=first).status_code == 412
    assert Workflow.objects.filter(pk=workflow_id).exists()
    assert rest.delete(path, HTTP_IF_MATCH=second).status_code == 200
    assert not Workflow.objects.filter(pk=workflow_id).exists()
    assert rest.delete(path, HTTP_IF_MATCH=second).status_code == 404
