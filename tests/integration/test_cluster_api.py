"""The cluster routes against a real running node (gateway, coordinator, worker): stats, shards, members,
locations, cluster events and the plain-text monitoring status. What the routes say is checked against the
rows the coordinator wrote (``shard_lease``, ``cluster_event``), never against fixtures.

The session's database is shared with the node and never flushed, so ids are unique and assertions never
assume an empty table. Tests that need a pending execution run in-process in a rolled-back transaction, so
that no worker ever runs it.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.cluster import events, queries
from apps.cluster.models import ClusterEvent, ClusterMember, ShardLease
from apps.workflows.engine.state import ACTIVE_STATUSES
from apps.workflows.models import Execution
from tests.harness import Api, wait_for

MINIMAL: dict[str, Any] = {
    "name": "n",
    "nodes": [
        {"id": "s", "type": "source", "nodeType": "sequence.numbers", "config": {"start": 1, "end": 3}},
        {"id": "k", "type": "sink", "nodeType": "console.log", "config": {}},
    ],
    "edges": [{"id": "e1", "source": "s", "target": "k"}],
}

NEW_ROUTES = {
    "/api/v1/cluster/members",
    "/api/v1/cluster/workflow/{workflow_id}/location",
    "/api/v1/executions/{execution_id}/location",
    "/api/v1/events",
    "/api/v1/events/stats",
    "/api/v1/events/{event_type}",
    "/api/v1/events/workflow/{workflow_id}",
    "/monitoring/cluster/status",
}


def raw_get(api: Api, path: str, token: str | None = None) -> tuple[int, str, str]:
    """Status, Content-Type and text of a GET, with the given token or none at all."""
    request = urllib.request.Request(api.base + path)
    if token:
        request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def node_members(stats: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The fixture node's live members (its name is "node"), by role."""
    return {m["roles"][0]: m for m in stats["memberList"] if m["address"].startswith("node:")}


def settled_stats(api: Api) -> dict[str, Any]:
    """Stats once a leader leads and the node's worker owns every shard (it is the only live worker)."""

    def settled() -> dict[str, Any] | None:
        status, stats = api.get("/api/v1/cluster/stats")
        mine = node_members(stats) if status == 200 else {}
        if (
            "worker" in mine
            and stats["leader"]
            and mine["worker"]["shards"] == stats["sharding"]["totalShards"]
        ):
            return stats
        return None

    return wait_for("the node's worker to own every shard", settled, timeout=30)


def start_workflow(api: Api, workflow_id: str) -> str:
    assert api.post("/api/v1/workflows", {**MINIMAL, "id": workflow_id})[0] == 201
    status, body = api.post(f"/api/v1/workflows/{workflow_id}/execute")
    assert status == 200, body
    return str(body["executionId"])


# --- stats, shards, members ---------------------------------------------------------------------------------


def test_stats_show_the_live_worker_and_coordinator_the_leader_and_every_shard_owned(api: Api) -> None:
    stats = settled_stats(api)
    mine = node_members(stats)

    assert {"worker", "coordinator"} <= set(mine)
    assert stats["status"] == "Up" and stats["leader"] == mine["coordinator"]["address"]
    assert stats["term"] >= 1
    assert stats["members"] == len(stats["memberList"]) >= 2
    assert sum(m["shards"] for m in stats["memberList"]) == stats["sharding"]["totalShards"]
    assert stats["sharding"]["activeShards"] == stats["sharding"]["totalShards"]
    assert sum(m["entities"] for m in stats["memberList"]) == stats["sharding"]["totalEntities"]
    assert mine["coordinator"]["shards"] == mine["coordinator"]["entities"] == 0
    assert all(m["status"] == "Up" and {"address", "host", "roles"} <= set(m) for m in stats["memberList"])


def active_per_shard() -> dict[int, int]:
    """Pending, running and paused executions per shard, counted here."""
    counts = Counter(Execution.objects.filter(status__in=ACTIVE_STATUSES).values_list("shard_id", flat=True))
    return dict(counts)


def test_shards_lists_every_shard_with_the_owner_and_epoch_its_lease_holds(api: Api, live_db: None) -> None:
    worker = node_members(settled_stats(api))["worker"]["address"]

    def reading() -> tuple[int, Any, dict[int, int]] | None:
        before = active_per_shard()
        status, body = api.get("/api/v1/cluster/shards")
        return (status, body, before) if active_per_shard() == before else None

    status, body, active = wait_for("a reading while no execution starts or ends", reading)
    leases = {lease.shard_id: lease for lease in ShardLease.objects.all()}

    assert status == 200
    assert [s["shardId"] for s in body["shards"]] == list(range(body["totalShards"]))
    assert body["activeShards"] == body["totalShards"]
    for shard in body["shards"]:
        lease = leases[shard["shardId"]]
        assert (shard["owner"], shard["location"], shard["epoch"]) == (worker, worker, lease.epoch)
        assert shard["epoch"] >= 1 and shard["state"] == lease.state
        assert shard["entityCount"] == active.get(shard["shardId"], 0)
        assert shard["previousOwner"] == (lease.previous_owner or None)
        assert shard["movedReason"] == (lease.moved_reason or None)


def test_members_join_the_member_rows_with_their_liveness(api: Api, live_db: None, uid: str) -> None:
    mine = node_members(settled_stats(api))
    now = timezone.now()
    stale = ClusterMember.objects.create(  # its row says up, but it has no liveness key: it is down
        member_id=f"gone-{uid}:worker:{uid}", name=f"gone-{uid}", host="h", pid=1, roles=["worker"],
        state="up", started_at=now, last_seen=now,
    )  # fmt: skip
    left = ClusterMember.objects.create(
        member_id=f"left-{uid}:worker:{uid}", name=f"left-{uid}", host="h", pid=2, roles=["worker"],
        state="left", started_at=now - timedelta(seconds=1), last_seen=now,
    )  # fmt: skip
    try:
        every = api.get("/api/v1/cluster/members")[1]
        up = api.get("/api/v1/cluster/members?status=up")[1]
        down = api.get("/api/v1/cluster/members?status=down")[1]
        gone = api.get("/api/v1/cluster/members?status=left&limit=1000")[1]
    finally:
        ClusterMember.objects.filter(pk__in=[stale.pk, left.pk]).delete()

    by_id = {m["nodeId"]: m for m in every["members"]}
    assert every["count"] == len(every["members"])
    assert by_id[mine["worker"]["address"]]["status"] == "up"
    assert by_id[mine["worker"]["address"]]["shards"] == mine["worker"]["shards"]
    worker = by_id[mine["worker"]["address"]]
    assert (worker["name"], worker["role"]) == ("node", "worker") and worker["pid"] > 0
    assert worker["startedAt"] <= worker["lastSeen"]
    assert (by_id[stale.pk]["status"], by_id[left.pk]["status"]) == ("down", "left")
    assert {mine["worker"]["address"], mine["coordinator"]["address"]} <= {m["nodeId"] for m in up["members"]}
    assert {m["status"] for m in up["members"]} == {"up"}
    assert stale.pk in {m["nodeId"] for m in down["members"]} and {m["status"] for m in down["members"]} == {
        "down"
    }
    assert left.pk in {m["nodeId"] for m in gone["members"]} and {m["status"] for m in gone["members"]} == {
        "left"
    }


@pytest.mark.parametrize(
    ("query", "field"), [("status=bogus", "status"), ("limit=0", "limit"), ("limit=x", "limit")]
)
def test_members_refuse_bad_filters_naming_them(api: Api, query: str, field: str) -> None:
    status, body = api.get(f"/api/v1/cluster/members?{query}")

    assert status == 400 and body["error"] == "invalid_request" and field in body["details"]


# --- locations ----------------------------------------------------------------------------------------------


def test_an_executions_location_names_the_owner_its_shard_lease_holds(
    api: Api, live_db: None, uid: str
) -> None:
    execution_id = start_workflow(api, f"loc-{uid}")
    api.wait_finished(execution_id)

    status, location = api.get(f"/api/v1/executions/{execution_id}/location")
    execution = Execution.objects.get(pk=execution_id)
    lease = ShardLease.objects.get(pk=execution.shard_id)

    assert status == 200
    assert location == {
        "executionId": execution_id,
        "workflowId": f"loc-{uid}",
        "shardId": execution.shard_id,
        "owner": lease.owner,
        "epoch": lease.epoch,
        "status": "completed",
    }
    assert lease.owner and lease.owner.startswith("node:worker:")
    assert api.get(f"/api/v1/cluster/workflow/loc-{uid}/location") == (
        200,
        {  # it finished: nothing is active
            "workflowId": f"loc-{uid}",
            "shardId": None,
            "nodeAddress": None,
            "shardIds": [],
            "executions": [],
        },
    )


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/executions/no-such-execution/location",
        "/api/v1/cluster/workflow/no-such-workflow/location",
        "/api/v1/executions/" + "x" * 300 + "/location",
        "/api/v1/cluster/workflow/" + "x" * 300 + "/location",
        "/api/v1/events/workflow/no-such-workflow",
        "/api/v1/events/" + "t" * 65,
    ],
)
def test_unknown_ids_are_404_json(api: Api, path: str) -> None:
    status, body = api.get(path)

    assert status == 404 and body["error"] == "not_found" and body["message"]


@pytest.fixture
def rest() -> APIClient:
    user = get_user_model().objects.create_user(
        f"cl-{uuid.uuid4().hex[:8]}", password="secret-password", is_superuser=True
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.mark.django_db
def test_a_workflows_location_lists_its_active_executions_and_their_shard_owners(
    rest: APIClient, uid: str
) -> None:
    workflow_id = f"active-{uid}"
    assert rest.post("/api/v1/workflows", {**MINIMAL, "id": workflow_id}, format="json").status_code == 201
    started = [rest.post(f"/api/v1/workflows/{workflow_id}/execute").json()["executionId"] for _ in range(3)]

    body = rest.get(f"/api/v1/cluster/workflow/{workflow_id}/location").json()

    shards = dict(Execution.objects.filter(pk__in=started).values_list("id", "shard_id"))
    leases = {lease.shard_id: lease for lease in ShardLease.objects.filter(shard_id__in=shards.values())}
    assert body["workflowId"] == workflow_id
    assert [e["executionId"] for e in body["executions"]] == started[::-1]  # newest first
    assert body["shardIds"] == sorted(set(shards.values()))
    for item in body["executions"]:
        lease = leases.get(item["shardId"])
        assert item["shardId"] == shards[item["executionId"]] and item["status"] == "pending"
        assert (item["owner"], item["epoch"]) == ((lease.owner, lease.epoch) if lease else (None, 0))


@pytest.mark.django_db
def test_the_cluster_reads_cost_a_fixed_number_of_queries(django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(3):  # owned leases, active executions per shard (GROUP BY), term
        queries.cluster_stats("self", ["api-gateway"])
    with django_assert_num_queries(2):  # leases, active executions per shard
        queries.cluster_shards()
    with django_assert_num_queries(1):
        queries.event_stats()


# --- cluster events -----------------------------------------------------------------------------------------


def test_events_include_the_leader_and_member_events_the_running_node_produced(api: Api) -> None:
    mine = node_members(settled_stats(api))
    leader, worker = mine["coordinator"]["address"], mine["worker"]["address"]

    status, body = api.get("/api/v1/events?event_type=leader_changed&limit=1000")
    joins = api.get("/api/v1/events/member_event?limit=1000")[1]["events"]

    assert status == 200 and body["count"] == len(body["events"])
    assert any(e["new_leader"] == leader for e in body["events"])
    assert {e["event_type"] for e in body["events"]} == {"leader_changed"}
    assert any(e["member_address"] == worker and e["status"] == "up" for e in joins)
    for event in body["events"] + joins:
        assert {"id", "timestamp", "event_type", "severity"} <= set(event) and event["severity"] == "INFO"
    ids = [e["id"] for e in body["events"]]
    assert ids == sorted(ids, reverse=True)  # newest first
    assert api.get("/api/v1/events/leader_changed?limit=1000")[1] == body


def test_events_filter_by_workflow_type_limit_and_since_id(api: Api, live_db: None, uid: str) -> None:
    workflow_id = f"ev-{uid}"
    for n in range(3):
        events.record(
            "workflow_failover", severity="WARNING", workflow_id=workflow_id,
            failed_node=f"dead-{n}", new_node="node:worker:x", downtime_seconds=n,
        )  # fmt: skip
    try:
        every = api.get(f"/api/v1/events?workflow_id={workflow_id}")[1]
        newest = api.get(f"/api/v1/events?workflow_id={workflow_id}&limit=2")[1]
        since = api.get(
            f"/api/v1/events?workflow_id={workflow_id}&since_id={every['events'][-1]['id']}&limit=1"
        )[1]
        by_path = api.get(f"/api/v1/events/workflow/{workflow_id}")[1]
        other_type = api.get(f"/api/v1/events?workflow_id={workflow_id}&event_type=leader_changed")[1]
    finally:
        ClusterEvent.objects.filter(workflow_id=workflow_id).delete()

    assert every["count"] == 3
    assert [e["failed_node"] for e in every["events"]] == ["dead-2", "dead-1", "dead-0"]
    assert every["events"][0] | {"timestamp": None, "id": None} == {
        "timestamp": None,
        "id": None,
        "event_type": "workflow_failover",
        "severity": "WARNING",
        "workflow_id": workflow_id,
        "failed_node": "dead-2",
        "new_node": "node:worker:x",
        "downtime_seconds": 2,
    }
    assert newest["events"] == every["events"][:2]
    assert since["events"] == [every["events"][1]]  # the oldest one after since_id
    assert by_path == every
    assert other_type == {"events": [], "count": 0}


@pytest.mark.parametrize(
    "route", ["/api/v1/events", "/api/v1/events/member_event", "/api/v1/events/workflow/w"]
)
@pytest.mark.parametrize("limit", ["0", "-1", "x", "5000", ""])
def test_events_refuse_a_bad_limit_naming_it(api: Api, route: str, limit: str) -> None:
    status, body = api.get(f"{route}?limit={limit}")

    assert status == 400 and body["error"] == "invalid_request" and "limit" in body["details"], body


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since_id=-1", "since_id"),
        ("since_id=99999999999999999999", "since_id"),
        ("event_type=" + "t" * 65, "event_type"),
        ("event_type=", "event_type"),
        ("workflow_id=%00", "workflow_id"),
    ],
)
def test_events_refuse_other_bad_filters_naming_them(api: Api, query: str, field: str) -> None:
    status, body = api.get(f"/api/v1/events?{query}")

    assert status == 400 and field in body["details"], body


def test_event_stats_count_the_stored_events(api: Api, live_db: None) -> None:
    def matching() -> tuple[dict[str, Any], dict[str, Any]] | None:
        stats = api.get("/api/v1/events/stats")[1]
        rows = list(ClusterEvent.objects.values_list("event_type", "severity", "created_at"))
        since = timezone.now() - timedelta(hours=24)
        expected = {
            "total": len(rows),
            "byType": dict(Counter(t for t, _, _ in rows)),
            "bySeverity": dict(Counter(s for _, s, _ in rows)),
            "last24h": sum(1 for _, _, at in rows if at >= since),
        }
        return (stats, expected) if stats == expected else None  # the node may record one meanwhile

    stats, _ = wait_for("stats to match the stored events", matching, timeout=10, interval=0.5)
    assert stats["total"] >= 2 and stats["byType"]["leader_changed"] >= 1 and stats["last24h"] >= 1


# --- monitoring text, authentication, schema ----------------------------------------------------------------


def test_the_monitoring_status_is_text_naming_the_leader_and_the_members(api: Api) -> None:
    mine = node_members(settled_stats(api))

    status, content_type, text = raw_get(api, "/monitoring/cluster/status", api.token)
    lines = text.splitlines()

    assert status == 200 and content_type.startswith("text/plain")
    assert lines[0] == "Cluster Status:"
    assert lines[1] == "Self: node (roles: coordinator, worker, api-gateway)"
    assert lines[2] == f"Leader: {mine['coordinator']['address']}"
    assert lines[3].startswith("Members: ") and int(lines[3].split(": ")[1]) >= 2
    assert f"  - {mine['worker']['address']} (Up, roles: worker)" in lines
    assert f"  - {mine['coordinator']['address']} (Up, roles: coordinator)" in lines
    assert any(line.startswith("Unreachable: ") for line in lines)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/cluster/stats",
        "/api/v1/cluster/shards",
        "/api/v1/cluster/members",
        "/api/v1/cluster/workflow/w/location",
        "/api/v1/executions/e/location",
        "/api/v1/events",
        "/api/v1/events/stats",
        "/api/v1/events/member_event",
        "/api/v1/events/workflow/w",
        "/monitoring/cluster/status",
    ],
)
def test_every_cluster_route_answers_401_json_without_a_token(api: Api, path: str) -> None:
    status, content_type, text = raw_get(api, path)

    assert status == 401 and content_type.startswith("application/json")
    assert json.loads(text)["error"] == "not_authenticated"


@pytest.mark.django_db
def test_the_openapi_schema_lists_every_cluster_route_with_a_summary() -> None:
    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    paths = json.loads(response.content)["paths"]

    assert NEW_ROUTES - set(paths) == set()
    assert all(paths[p]["get"].get("summary") for p in NEW_ROUTES)
    assert "text/plain" in paths["/monitoring/cluster/status"]["get"]["responses"]["200"]["content"]
