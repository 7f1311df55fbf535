"""``GET /api/v1/executions`` (issue 12 item 1): every workflow's executions, filtered, newest first, in
cursor pages, with a count on request; every bad parameter a 400 naming it; a fixed number of
queries per page.

The requests go through the whole stack in-process (``APIClient``: token authentication, the DRF view, the
service). Executions are started by the real service (``executions.start``, inside the test's transaction, so
no worker runs them); their status, times and trigger are then set on their rows, as the engine would have.
Other tests' executions may be in the database: most requests here filter on this test's workflows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from apps.workflows.models import Execution
from apps.workflows.services import executions
from tests.conftest import make_token
from tests.integration.test_executions import minimal

pytestmark = pytest.mark.django_db

URL = "/api/v1/executions"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def client_of(role: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {make_token(f'{role}-{uuid.uuid4().hex[:8]}', role)}")
    return client


@pytest.fixture
def rest() -> APIClient:
    """A viewer: reading is for every role."""
    return client_of("viewer")


def define(admin: APIClient) -> str:
    workflow_id = f"list-{uuid.uuid4().hex[:10]}"
    response = admin.post("/api/v1/workflows", minimal(workflow_id), format="json")
    assert response.status_code == 201, response.content
    return workflow_id


@dataclass(frozen=True)
class Row:
    workflow: int  # index into the data's workflows
    status: str
    trigger: str
    minute: int  # created_at = T0 + minute
    ended: int | None = None  # ended_at = T0 + ended, in minutes


ROWS = [
    Row(0, "completed", "api", 0, ended=1),
    Row(0, "failed", "api", 10, ended=12),
    Row(0, "running", "schedule", 20),
    Row(1, "cancelled", "rerun", 20, ended=25),  # the same created_at as the row above: id breaks the tie
    Row(1, "failed", "schedule", 30, ended=31),
    Row(1, "completed", "backfill", 40, ended=45),
    Row(2, "pending", "api", 50),
    Row(2, "queued", "api", 60),
    Row(2, "cancelled", "api", 70, ended=71),
    Row(2, "failed", "rerun", 80, ended=90),
]


@dataclass
class Data:
    workflows: list[str]
    executions: list[Execution]  # in ROWS' order

    def base(self) -> list[tuple[str, str]]:
        """The filter that keeps this test's executions only."""
        return [("workflowId", w) for w in self.workflows]

    def expected(self, keep: Callable[[Row, Execution], bool]) -> list[str]:
        chosen = [e for row, e in zip(ROWS, self.executions, strict=True) if keep(row, e)]
        return [e.id for e in sorted(chosen, key=lambda e: (e.created_at, e.id), reverse=True)]


def start(workflow_id: str, row: Row) -> Execution:
    execution, _ = executions.start(
        workflow_id, trigger=row.trigger, by="" if row.trigger == "schedule" else "ann"
    )
    created = T0 + timedelta(minutes=row.minute)
    ended = None if row.ended is None else T0 + timedelta(minutes=row.ended)
    Execution.objects.filter(pk=execution.pk).update(
        status=row.status, created_at=created, started_at=created + timedelta(seconds=1), ended_at=ended
    )
    execution.refresh_from_db()
    return execution


@pytest.fixture
def data() -> Data:
    admin = client_of("admin")
    workflows = [define(admin) for _ in range(3)]
    return Data(workflows, [start(workflows[row.workflow], row) for row in ROWS])


def page(rest: APIClient, params: list[tuple[str, Any]], expect: int = 200) -> dict[str, Any]:
    response = rest.get(f"{URL}?{urlencode(params)}")
    assert response.status_code == expect, response.content
    body: dict[str, Any] = response.json()
    return body


def ids(body: dict[str, Any]) -> list[str]:
    return [item["executionId"] for item in body["executions"]]


# --- order and shape --------------------------------------------------------------------------------------


def test_it_lists_executions_of_every_workflow_newest_first_then_by_id(rest: APIClient, data: Data) -> None:
    body = page(rest, data.base())
    assert ids(body) == data.expected(lambda row, e: True)
    assert len(ids(body)) == len(ROWS) and body["nextCursor"] is None and "total" not in body
    tied = [e.id for row, e in zip(ROWS, data.executions, strict=True) if row.minute == 20]
    assert ids(body).index(max(tied)) + 1 == ids(body).index(min(tied))


def test_an_item_has_the_workflow_list_items_fields_and_where_it_came_from(
    rest: APIClient, data: Data
) -> None:
    first = data.executions[-1]
    item = page(rest, [*data.base(), ("limit", 1)])["executions"][0]
    assert item == {
        "executionId": first.id,
        "workflowId": data.workflows[2],
        "version": 1,
        "status": "failed",
        "trigger": "rerun",
        "startedBy": "ann",
        "createdAt": "2026-03-01T13:20:00.000Z",
        "startTime": "2026-03-01T13:20:01.000Z",
        "endTime": "2026-03-01T13:30:00.000Z",
        "logsCount": 0,
    }
    own = rest.get(f"/api/v1/workflows/{data.workflows[2]}/executions?limit=1").json()[0]
    assert {k: item[k] for k in own} == own  # the same fields as the workflow's list, with the same values


def test_without_a_filter_it_lists_every_execution_in_the_same_order(rest: APIClient, data: Data) -> None:
    listed = ids(page(rest, [("limit", 1000)]))
    mine = data.expected(lambda row, e: True)
    assert [i for i in listed if i in set(mine)] == mine


# --- filters ----------------------------------------------------------------------------------------------

at = T0.isoformat()
FILTERS: list[tuple[str, list[tuple[str, Any]], Callable[[Row, Execution], bool]]] = [
    ("one status", [("status", "failed")], lambda r, e: r.status == "failed"),
    (
        "repeated statuses",
        [("status", "failed"), ("status", "cancelled")],
        lambda r, e: r.status in ("failed", "cancelled"),
    ),
    (
        "comma-separated and repeated statuses",
        [("status", "failed,cancelled"), ("status", "queued")],
        lambda r, e: r.status in ("failed", "cancelled", "queued"),
    ),
    ("one trigger", [("trigger", "schedule")], lambda r, e: r.trigger == "schedule"),
    ("two triggers", [("trigger", "rerun,backfill")], lambda r, e: r.trigger in ("rerun", "backfill")),
    (
        "started after, ISO with Z",
        [("startedAfter", "2026-03-01T12:40:00Z")],
        lambda r, e: r.minute >= 40,
    ),
    (
        "started before, ISO with an offset",
        [("startedBefore", "2026-03-01T13:20:00+01:00")],  # 12:20Z, excluded
        lambda r, e: r.minute < 20,
    ),
    (
        "started in a range, epoch milliseconds",
        [
            ("startedAfter", int((T0 + timedelta(minutes=20)).timestamp() * 1000)),
            ("startedBefore", int((T0 + timedelta(minutes=60)).timestamp() * 1000)),
        ],
        lambda r, e: 20 <= r.minute < 60,
    ),
    (
        "ended after",
        [("endedAfter", "2026-03-01T12:31:00Z")],
        lambda r, e: r.ended is not None and r.ended >= 31,
    ),
    (
        "ended in a range",
        [("endedAfter", "2026-03-01T12:10:00Z"), ("endedBefore", "2026-03-01T12:45:00Z")],
        lambda r, e: r.ended is not None and 10 <= r.ended < 45,
    ),
    (
        "status, trigger and started range combined",
        [("status", "failed,cancelled"), ("trigger", "api,rerun"), ("startedAfter", "2026-03-01T12:05:00Z")],
        lambda r, e: r.status in ("failed", "cancelled") and r.trigger in ("api", "rerun") and r.minute >= 5,
    ),
]


@pytest.mark.parametrize(("name", "params", "keep"), FILTERS, ids=[f[0] for f in FILTERS])
def test_each_filter_and_their_combinations_select_exactly_their_rows(
    rest: APIClient,
    data: Data,
    name: str,
    params: list[tuple[str, Any]],
    keep: Callable[[Row, Execution], bool],
) -> None:
    expected = data.expected(keep)
    assert expected, "a filter that selects nothing proves little"
    assert ids(page(rest, [*data.base(), *params])) == expected


def test_the_workflow_filter_takes_one_or_several_workflows(rest: APIClient, data: Data) -> None:
    one, two, three = data.workflows
    assert ids(page(rest, [("workflowId", two)])) == data.expected(lambda r, e: r.workflow == 1)
    both = page(rest, [("workflowId", f"{one},{three}")])
    assert ids(both) == data.expected(lambda r, e: r.workflow in (0, 2))
    assert ids(page(rest, [("workflowId", "no-such-workflow")])) == []  # a filter, not a lookup: no 404


def test_the_id_prefix_filter_matches_the_start_of_ids_only_and_takes_wildcards_literally(
    rest: APIClient, data: Data
) -> None:
    target = data.executions[3].id
    assert ids(page(rest, [("idPrefix", target[:12])])) == [target]
    assert ids(page(rest, [("idPrefix", target)])) == [target]
    assert ids(page(rest, [("idPrefix", target[1:])])) == []
    assert ids(page(rest, [*data.base(), ("idPrefix", "exec_%")])) == []
    assert ids(page(rest, [*data.base(), ("idPrefix", "exec")])) == data.expected(lambda r, e: True)


# --- cursor pages and the count ---------------------------------------------------------------------------


def test_cursor_pages_walk_every_row_once_in_order_while_new_executions_start(
    rest: APIClient, data: Data
) -> None:
    expected = data.expected(lambda r, e: True)
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(len(ROWS)):
        body = page(rest, [*data.base(), ("limit", 3), *([("cursor", cursor)] if cursor else [])])
        seen += ids(body)
        executions.start(data.workflows[0])  # a new execution, above the cursor
        executions.start(data.workflows[2])
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert seen == expected and len(set(seen)) == len(seen)
    newest = ids(page(rest, data.base()))
    assert len(newest) == len(ROWS) + 8 and newest[8:] == expected


def test_the_last_page_has_no_next_cursor_and_a_full_last_page_is_followed_by_an_empty_one(
    rest: APIClient, data: Data
) -> None:
    first = page(rest, [*data.base(), ("limit", 5)])
    second = page(rest, [*data.base(), ("limit", 5), ("cursor", first["nextCursor"])])
    assert len(ids(second)) == 5 and second["nextCursor"] is None
    exact = page(rest, [*data.base(), ("limit", len(ROWS))])
    assert len(ids(exact)) == len(ROWS) and exact["nextCursor"] is None


def test_count_adds_the_total_of_every_matching_row_whatever_the_page(rest: APIClient, data: Data) -> None:
    failed = data.expected(lambda r, e: r.status == "failed")
    first = page(rest, [*data.base(), ("status", "failed"), ("limit", 1), ("count", "true")])
    assert first["total"] == len(failed) == 3
    after = [("cursor", first["nextCursor"]), ("count", "true")]
    assert page(rest, [*data.base(), ("status", "failed"), ("limit", 1), *after])["total"] == 3
    assert page(rest, [*data.base(), ("count", "true")])["total"] == len(ROWS)
    assert "total" not in page(rest, [*data.base(), ("count", "false")])


# --- bad input: a 400 naming the parameter ----------------------------------------------------------------

BAD: list[tuple[str, list[tuple[str, Any]], str]] = [
    ("unknown status", [("status", "done")], "status.0"),
    ("unknown status among good ones", [("status", "failed,done")], "status.1"),
    ("empty status", [("status", "")], "status.0"),
    ("unknown trigger", [("trigger", "cron")], "trigger.0"),
    ("naive time", [("startedAfter", "2026-03-01T12:00:00")], "startedAfter"),
    ("date without time", [("startedBefore", "2026-03-01")], "startedBefore"),
    ("not a time", [("endedAfter", "yesterday")], "endedAfter"),
    ("negative epoch", [("endedBefore", "-5")], "endedBefore"),
    ("huge epoch", [("startedAfter", "9" * 40)], "startedAfter"),
    ("epoch past year 9999", [("startedAfter", "999999999999999")], "startedAfter"),
    ("limit 0", [("limit", "0")], "limit"),
    ("limit over 1000", [("limit", "1001")], "limit"),
    ("limit not a number", [("limit", "ten")], "limit"),
    ("limit of 5000 digits", [("limit", "9" * 5000)], "limit"),
    ("count not a boolean", [("count", "maybe")], "count"),
    ("tampered cursor", [("cursor", "tampered")], "cursor"),
    ("empty cursor", [("cursor", "")], "cursor"),
    ("a NUL in an id prefix", [("idPrefix", "exec\x00")], "idPrefix"),
    ("a NUL in a workflow id", [("workflowId", "w\x00")], "workflowId.0"),
    ("a NUL in a time", [("startedAfter", "2026\x00")], "startedAfter"),
    ("a NUL in a status", [("status", "failed\x00")], "status.0"),
    ("a workflow id too long to exist", [("workflowId", "w" * 201)], "workflowId.0"),
    ("an id prefix too long", [("idPrefix", "e" * 201)], "idPrefix"),
    ("101 repeated statuses", [("status", "failed")] * 101, "status"),
    ("10,000 comma-separated statuses", [("status", ",".join(["failed"] * 10_000))], "status"),
    ("101 workflows", [("workflowId", ",".join(f"w{i}" for i in range(101)))], "workflowId"),
]


@pytest.mark.parametrize(("name", "params", "field"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_parameter_is_a_400_naming_it(
    rest: APIClient, name: str, params: list[tuple[str, Any]], field: str
) -> None:
    body = page(rest, params, expect=400)
    assert body["error"] == "invalid_request"
    assert list(body["details"]) == [field], body


def test_10000_repeated_parameters_are_refused_whole_by_django_as_a_400(rest: APIClient) -> None:
    """Past ``DATA_UPLOAD_MAX_NUMBER_FIELDS`` (1,000) Django refuses the query string before any parameter is
    read, so the answer cannot name one; it is still a 400 in the one error shape, never a 500."""
    body = page(rest, [("status", "failed")] * 10_000, expect=400)
    assert body["error"] == "bad_request"


def test_a_cursor_altered_by_one_character_is_a_400_naming_it(rest: APIClient, data: Data) -> None:
    cursor = page(rest, [*data.base(), ("limit", 2)])["nextCursor"]
    key, signature = cursor.rsplit(":", 1)
    forged = f"{key[:-1]}{'A' if key[-1] != 'A' else 'B'}:{signature}"
    body = page(rest, [*data.base(), ("cursor", forged)], expect=400)
    assert list(body["details"]) == ["cursor"]


def test_the_time_rule_is_named_in_the_error(rest: APIClient) -> None:
    body = page(rest, [("startedAfter", "noon")], expect=400)
    assert "ISO 8601 with a timezone" in body["details"]["startedAfter"][0]
    assert "epoch milliseconds" in body["details"]["startedAfter"][0]


# --- queries ----------------------------------------------------------------------------------------------


def queries_of(rest: APIClient, url: str) -> tuple[int, int, int]:
    """(rows listed, every query, the queries of the list itself: those reading the workflows tables)."""
    with CaptureQueriesContext(connection) as captured:
        response = rest.get(url)
    assert response.status_code == 200, response.content
    sql = [q["sql"] for q in captured.captured_queries]
    return len(response.json()["executions"]), len(sql), sum('"workflows_' in q for q in sql)


def test_a_page_costs_the_same_queries_for_2_rows_and_for_20(rest: APIClient) -> None:
    admin = client_of("admin")
    few, many = define(admin), define(admin)
    for _ in range(2):
        executions.start(few)
    for _ in range(20):
        executions.start(many)
    rest.get(f"{URL}?limit=1")  # the token's first use records it (once per interval): not the list's cost
    rows, every, own = queries_of(rest, f"{URL}?workflowId={few}")
    # the page (with each row's version number), then the log line counts of its rows; the rest is the
    # authentication and role check every route makes
    assert (rows, own) == (2, 2)
    assert queries_of(rest, f"{URL}?workflowId={many}") == (20, every, 2)
    # count=true: one more
    assert queries_of(rest, f"{URL}?workflowId={few}&count=true") == (2, every + 1, 3)
    assert queries_of(rest, f"{URL}?workflowId={many}&status=pending,queued&count=true") == (20, every + 1, 3)


PARAMETERS = [
    "workflowId",
    "status",
    "trigger",
    "startedAfter",
    "startedBefore",
    "endedAfter",
    "endedBefore",
    "idPrefix",
    "limit",
    "cursor",
    "count",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.lists(st.tuples(st.sampled_from(PARAMETERS), st.text(max_size=40)), max_size=6))
def test_no_query_string_gets_a_server_error(rest: APIClient, params: list[tuple[str, str]]) -> None:
    """Any text in any parameter (NUL, surrogates escaped by the URL, huge numbers): a 200 or a 400."""
    response = rest.get(f"{URL}?{urlencode([(k, v.encode('utf-8', 'surrogatepass')) for k, v in params])}")
    assert response.status_code in (200, 400), (params, response.content)
