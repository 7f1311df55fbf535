"""Query budgets of the execution reads: each route costs the same number of queries for 2 executions as for
20, and for an execution of 2 nodes as for one of 20 (with ten times the events), within a fixed budget.

The requests go through the whole stack (``APIClient``: token authentication, the DRF view, the service), and
the executions run here, applied by this process as the owner of their shards (every node of these workflows
runs inline), inside the test's transaction.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.cluster import identity
from apps.cluster.models import ShardLease
from apps.workflows.models import Event
from apps.workflows.services import commands, executions
from tests.integration.test_executions import step, workflow

pytestmark = pytest.mark.django_db

WORKER = "budget-node:worker:0123456789ab"


@pytest.fixture
def rest(monkeypatch: pytest.MonkeyPatch) -> APIClient:
    """An admin's token client; this process also acts as the worker owning the shards it applies."""
    monkeypatch.setenv(identity.ENV, WORKER)
    user = get_user_model().objects.create_user(f"budget-{uuid.uuid4().hex[:8]}", is_superuser=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def chain(workflow_id: str, nodes: int) -> dict[str, Any]:
    """A source, ``nodes - 2`` maps, a sink: all inline."""
    middle = [f"m{i}" for i in range(nodes - 2)]
    ids = ["s", *middle, "k"]
    return workflow(
        workflow_id,
        [
            step("s", "sequence.numbers", "source", start=1, end=3),
            *(step(m, "map", "transform", expression="$ + 1") for m in middle),
            step("k", "console.log", "sink"),
        ],
        list(itertools.pairwise(ids)),
    )


def define(rest: APIClient, nodes: int) -> str:
    workflow_id = f"budget-{uuid.uuid4().hex[:10]}"
    response = rest.post("/api/v1/workflows", chain(workflow_id, nodes), format="json")
    assert response.status_code == 201, response.content
    return workflow_id


def run_to_end(workflow_id: str) -> str:
    execution, _ = executions.start(workflow_id)
    ShardLease.objects.update_or_create(
        shard_id=execution.shard_id, defaults={"owner": WORKER, "epoch": 1, "term": 1, "state": "assigned"}
    )
    commands.apply_pending(execution.id)
    return execution.id


def queries_of(rest: APIClient, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = rest.get(url)
    assert response.status_code == 200, response.content
    return len(captured.captured_queries)


def same_cost(rest: APIClient, small: str, large: str, budget: int) -> None:
    """Both reads cost exactly ``budget`` queries (the token lookup is one of them)."""
    costs = queries_of(rest, small), queries_of(rest, large)
    assert costs == (budget, budget), f"{small}: {costs[0]} queries; {large}: {costs[1]}; budget {budget}"


# --- lists: 2 executions against 20 -------------------------------------------------------------------------


@pytest.fixture
def two_and_twenty(rest: APIClient) -> tuple[str, str]:
    """A workflow with 2 completed executions, and one with 20."""
    few, many = define(rest, 2), define(rest, 2)
    for _ in range(2):
        run_to_end(few)
    for _ in range(20):
        run_to_end(many)
    return few, many


LISTS: list[tuple[str, Callable[[str], str], int]] = [
    # the token, the workflow's existence, the page, one grouped count of their log lines
    ("execution list", lambda w: f"/api/v1/workflows/{w}/executions?limit=50", 4),
    # the token, the page, the events of the page's executions (an unknown workflow has an empty history)
    ("history", lambda w: f"/api/history/{w}", 3),
]


@pytest.mark.parametrize(("route", "url", "budget"), LISTS, ids=[r for r, _, _ in LISTS])
def test_a_list_of_executions_costs_the_same_queries_for_2_and_for_20(
    rest: APIClient, two_and_twenty: tuple[str, str], route: str, url: Callable[[str], str], budget: int
) -> None:
    few, many = two_and_twenty
    assert len(listed(rest, url(many))) == 20 and len(listed(rest, url(few))) == 2
    same_cost(rest, url(few), url(many), budget)


def listed(rest: APIClient, url: str) -> list[Any]:
    body = rest.get(url).json()
    return body if isinstance(body, list) else body["executions"]


# --- one execution: 2 nodes against 20 ----------------------------------------------------------------------


@pytest.fixture
def small_and_large(rest: APIClient) -> tuple[tuple[str, str], tuple[str, str]]:
    """(workflow, execution) of a completed 2-node execution, and of a completed 20-node one."""
    small, large = define(rest, 2), define(rest, 20)
    pair = (small, run_to_end(small)), (large, run_to_end(large))
    events = [Event.objects.filter(execution_id=e).count() for _, e in pair]
    assert events[1] >= 5 * events[0], f"the large execution has {events} events"
    return pair


DETAILS: list[tuple[str, Callable[[str, str], str], int]] = [
    # the token, the execution with its version, its events, the latest output of each node
    ("execution", lambda w, e: f"/api/v1/executions/{e}", 4),
    # below: the token, the execution's existence (or status), then its events or its log lines
    ("events", lambda w, e: f"/api/v1/executions/{e}/events", 3),
    ("history execution", lambda w, e: f"/api/history/{w}/execution/{e}", 3),
    ("timeline", lambda w, e: f"/api/history/{w}/timeline?executionId={e}", 3),
    ("logs", lambda w, e: f"/api/v1/workflows/{w}/executions/{e}/logs", 3),
]


@pytest.mark.parametrize(("route", "url", "budget"), DETAILS, ids=[r for r, _, _ in DETAILS])
def test_an_execution_read_costs_the_same_queries_for_2_nodes_and_for_20(
    rest: APIClient,
    small_and_large: tuple[tuple[str, str], tuple[str, str]],
    route: str,
    url: Callable[[str, str], str],
    budget: int,
) -> None:
    (small_wf, small), (large_wf, large) = small_and_large
    same_cost(rest, url(small_wf, small), url(large_wf, large), budget)
