"""The coordinator's ``tick()``, called in this process against the real PostgreSQL and Redis.

Each test runs in a transaction that rolls back (``django_db``), so its leases, term and events never reach
the session's node; its Redis keys (the leader lease, the liveness of the workers it invents) have a prefix of
their own, so the node's coordinator and worker are not seen and do not see them. Workers are real members:
``membership.beat`` writes their liveness key and member row, as a worker's heartbeat does. While a test holds
the lease rows, the node's appends wait for it: these tests are short.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from apps.cluster import leadership, membership
from apps.cluster.coordinator import Coordinator
from apps.cluster.models import ClusterEvent, CoordinatorTerm, LeaseState, MoveReason, ShardLease
from tests.harness import wait_for
from workflow_engine import redis_client
from workflow_engine.celery import app as celery_app
from workflow_engine.tunables import engine_settings

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def own_keys(settings: Any) -> Iterator[str]:
    """A Redis key prefix of this test's own; the keys are deleted at the end."""
    # Celery reads its transport options once: read them now, so that its messages keep the session's prefix
    assert celery_app.conf.broker_transport_options
    prefix = f"wfetick{uuid.uuid4().hex[:8]}:"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        "global_keyprefix": prefix,
    }
    yield prefix
    client = redis_client.client()
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def fresh_leases() -> None:
    """No lease rows: the first tick creates and allocates them all (the test's transaction rolls back)."""
    ShardLease.objects.all().delete()


def member(name: str, role: str = "worker") -> str:
    return f"{name}:{role}:{uuid.uuid4().hex[:12]}"


def beat(*workers: str) -> None:
    for worker in workers:
        membership.beat(worker, ["worker"])


def owners() -> Counter[str | None]:
    return Counter(ShardLease.objects.values_list("owner", flat=True))


def events_about(event_type: str, **payload: Any) -> list[dict[str, Any]]:
    rows = ClusterEvent.objects.filter(
        event_type=event_type, **{f"payload__{k}": v for k, v in payload.items()}
    )
    return [e.payload for e in rows.order_by("id")]


def test_the_first_tick_takes_the_lead_with_the_next_term_and_records_it() -> None:
    term_before = leadership.current_term()[0]
    me = member("tick-c", "coordinator")
    coordinator = Coordinator(me)

    assert coordinator.tick() is True

    assert coordinator.leadership.term == term_before + 1
    row = CoordinatorTerm.objects.get(pk=1)
    assert (row.term, row.leader) == (term_before + 1, me)
    assert redis_client.client().get(redis_client.key("coordinator", "leader")) == me.encode()
    [changed] = events_about("leader_changed", new_leader=me)
    assert changed["term"] == term_before + 1


def test_a_second_coordinator_does_not_lead_while_the_first_holds_the_lease() -> None:
    first, second = Coordinator(member("tick-a", "coordinator")), Coordinator(member("tick-b", "coordinator"))
    assert first.tick() is True
    term = first.leadership.term

    assert second.tick() is False
    assert second.leadership.term is None
    assert CoordinatorTerm.objects.get(pk=1).term == term, "a standby does not bump the term"
    assert first.tick() is True


def test_the_leader_allocates_every_shard_to_the_live_workers_evenly(fresh_leases: None) -> None:
    w1, w2 = member("tick-w1"), member("tick-w2")
    beat(w1, w2)
    coordinator = Coordinator(member("tick-c", "coordinator"))

    assert coordinator.tick() is True

    shards = engine_settings.number_of_shards
    assert owners() == {w1: shards // 2, w2: shards - shards // 2}
    leases = list(ShardLease.objects.all())
    assert {(le.epoch, le.term, le.state, le.moved_reason) for le in leases} == {
        (1, coordinator.leadership.term, LeaseState.ASSIGNED, MoveReason.INITIAL)
    }
    assert [e["status"] for e in events_about("member_event", member_address=w1)] == ["up"]
    assert [e["status"] for e in events_about("member_event", member_address=w2)] == ["up"]
    assert events_about("shard_rebalance", to_node=w1) == [], "a first allocation is no rebalance"


def test_a_new_member_gets_shards_through_planned_hand_offs(fresh_leases: None, settings: Any) -> None:
    settings.WORKFLOW_ENGINE = {**settings.WORKFLOW_ENGINE, "rebalance-interval": "100ms"}
    w1, w2, w3 = member("tick-w1"), member("tick-w2"), member("tick-w3")
    beat(w1, w2)
    coordinator = Coordinator(member("tick-c", "coordinator"))
    assert coordinator.tick() is True
    before = {le.shard_id: le.epoch for le in ShardLease.objects.all()}

    beat(w3)

    def handing_off() -> list[ShardLease]:
        assert coordinator.tick() is True
        return list(ShardLease.objects.filter(state=LeaseState.HANDOFF))

    moving = wait_for("hand-offs to the new member", handing_off, timeout=10)
    limit = engine_settings.max_simultaneous_rebalance
    assert len(moving) == limit and {le.handoff_to for le in moving} == {w3}
    assert [e["status"] for e in events_about("member_event", member_address=w3)] == ["up"]
    assert owners()[w3] == 0, "a planned move waits for the owner to let go"

    # the owners stop consuming and release (apps/cluster/worker.py), and the next tick completes the moves
    ShardLease.objects.filter(state=LeaseState.HANDOFF).update(state=LeaseState.RELEASED)
    assert coordinator.tick() is True

    moved = list(ShardLease.objects.filter(owner=w3))
    assert sorted(le.shard_id for le in moved) == sorted(le.shard_id for le in moving)
    assert all(le.epoch == before[le.shard_id] + 1 for le in moved), "the move fences the old owner"
    assert {(le.state, le.moved_reason) for le in moved} == {(LeaseState.ASSIGNED, MoveReason.REBALANCE)}
    rebalanced = events_about("shard_rebalance", to_node=w3)
    assert sorted(e["shard_id"] for e in rebalanced) == sorted(le.shard_id for le in moved)
    assert {e["reason"] for e in rebalanced} == {MoveReason.REBALANCE}


def test_the_shards_of_a_worker_whose_liveness_expired_fail_over_with_events(fresh_leases: None) -> None:
    w1, w2, me = member("tick-w1"), member("tick-w2"), member("tick-c", "coordinator")
    beat(w1, w2)
    coordinator = Coordinator(me)
    assert coordinator.tick() is True
    lost = {le.shard_id: le.epoch for le in ShardLease.objects.filter(owner=w2)}

    redis_client.client().delete(redis_client.key("member", w2))  # as when its key's TTL runs out
    assert coordinator.tick() is True

    assert owners() == {w1: engine_settings.number_of_shards}
    for lease in ShardLease.objects.filter(shard_id__in=lost):
        assert (lease.epoch, lease.previous_owner, lease.moved_reason) == (
            lost[lease.shard_id] + 1,
            w2,
            MoveReason.FAILOVER,
        )
    [unreachable] = events_about("unreachable_member", unreachable_node=w2)
    assert unreachable["detected_by"] == me and unreachable["severity"] == "ERROR"
    assert [e["status"] for e in events_about("member_event", member_address=w2)] == ["up", "removed"]
    failovers = events_about("shard_rebalance", from_node=w2)
    assert sorted(e["shard_id"] for e in failovers) == sorted(lost)
    assert {(e["to_node"], e["reason"]) for e in failovers} == {(w1, MoveReason.FAILOVER)}


def test_a_leader_whose_term_was_superseded_steps_down_and_moves_nothing(fresh_leases: None) -> None:
    w1, w2 = member("tick-w1"), member("tick-w2")
    beat(w1, w2)
    coordinator = Coordinator(member("tick-c", "coordinator"))
    assert coordinator.tick() is True
    usurper = member("tick-usurper", "coordinator")
    new_term, _ = leadership.bump_term(usurper)  # another coordinator took over
    leases_before = list(ShardLease.objects.values_list("shard_id", "owner", "epoch", "term"))

    membership.leave(w2)  # a move is due: the deposed leader would make it
    assert coordinator.tick() is False

    assert coordinator.leadership.term is None
    assert list(ShardLease.objects.values_list("shard_id", "owner", "epoch", "term")) == leases_before
    assert events_about("shard_rebalance", from_node=w2) == []
    assert CoordinatorTerm.objects.get(pk=1).term == new_term
    assert coordinator.tick() is False, "its lease no longer makes it the leader"
