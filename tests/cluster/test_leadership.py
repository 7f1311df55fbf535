"""Coordinator leadership: a Redis lease fenced by a PostgreSQL term; the standby takes over a dead leader."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.cluster import checker
from tests.cluster.conftest import LEADER_LEASE_TTL, Scenario, poll

pytestmark = pytest.mark.cluster

MARGIN = 2.0  # the standby's tick, a loaded machine


def test_when_the_leader_is_sigkilled_the_standby_leads_within_the_lease_ttl_and_new_executions_complete(
    make_scenario: Callable[..., Scenario],
) -> None:
    s = make_scenario(env={"WORKFLOW_MIN_NR_OF_MEMBERS": "2"})
    s.gateway()
    s.coordinator("c1")
    s.coordinator("c2")
    s.worker("w1")
    s.worker("w2")
    before, after = s.pipelines("before", 10), s.pipelines("after", 10)
    s.wait_ready(["w1", "w2"])
    term, leader = poll_leader(s)
    standby = s.node_id("c2" if leader.startswith("c1:") else "c1")
    before.execution_ids = s.execute(before.workflow_ids)

    s.proc(leader.split(":")[0]).kill()
    killed = time.monotonic()
    took = poll("the standby to lead", lambda: s.term()[1] == standby, timeout=20)
    print(f"\nleader {leader} SIGKILLed; {standby} leads after {took:.2f}s (lease TTL {LEADER_LEASE_TTL}s)")
    assert took <= LEADER_LEASE_TTL + MARGIN, f"the standby took {took:.2f}s to lead"
    new_term, new_leader = s.term()
    assert new_term > term and new_leader == standby
    assert s.redis.get("wfe:coordinator:leader") == standby.encode()
    changes = [e for e in s.cluster_events("leader_changed") if e["term"] == new_term]
    assert [(e["old_leader"], e["new_leader"]) for e in changes] == [(leader, standby)], changes

    after.execution_ids = s.execute(after.workflow_ids)
    done = s.wait_finished(before.execution_ids + after.execution_ids, timeout=60)
    print(
        f"executions started after the kill done {time.monotonic() - killed:.1f}s after it ({done:.1f}s wait)"
    )
    checker.check(s.db_url, expected=20, sinks={**before.sinks, **after.sinks})


def poll_leader(s: Scenario) -> tuple[int, str]:
    poll("a leader", lambda: s.term()[0] > 0, timeout=30)
    return s.term()
