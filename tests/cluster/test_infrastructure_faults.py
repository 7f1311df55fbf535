"""Redis and PostgreSQL restarts under load: nothing is lost, the cluster rebuilds, the gateway says 503."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import pytest

from tests.cluster import checker
from tests.cluster.conftest import Scenario, csv_workload, http_status, poll

pytestmark = pytest.mark.cluster


def test_after_redis_restarts_with_its_data_gone_all_executions_complete_and_leadership_and_shards_rebuild(
    make_scenario: Callable[..., Scenario],
) -> None:
    s = make_scenario(env={"WORKFLOW_MIN_NR_OF_MEMBERS": "2"})
    s.gateway()
    s.coordinator("c1")
    s.coordinator("c2")
    s.worker("w1")
    s.worker("w2")
    load = s.pipelines("wipe", 40)
    slow = csv_workload(s, "wipe-csv", executions=6, rows=30_000)  # node tasks that end during the outage
    s.wait_ready(["w1", "w2"])
    poll("a leader", lambda: s.term()[0] > 0, timeout=30)
    term_before = s.term()[0]
    load.execution_ids = s.execute(load.workflow_ids)
    slow.execution_ids = s.execute(slow.workflow_ids)
    executions = load.execution_ids + slow.execution_ids

    # queued hints and node tasks, liveness keys, the leader's lease: all gone, for a few seconds
    s.redis_server.stop()
    s.redis_server.wipe_data()
    down, ready = time.monotonic(), Counter[int]()
    while time.monotonic() - down < 3.0:
        ready[http_status(s.api.base + "/health/ready")] += 1
        time.sleep(0.2)
    s.redis_server.start()
    in_flight = s.statuses(executions)
    print(f"\nRedis down {time.monotonic() - down:.1f}s, its data wiped, with executions {dict(in_flight)}")
    assert set(ready) == {503}, f"/health/ready answered {dict(ready)} while Redis was down"
    assert in_flight["completed"] < len(executions), "everything finished before the wipe"
    took = s.wait_finished(executions, timeout=90)
    print(f"all executions done {took:.1f}s after Redis came back")
    # a known Celery/kombu crash (as the consumer reconnects, so possibly after Redis is back); supervisors
    # restart it: the cluster must carry on with the workers left
    survivors = [name for name in ("w1", "w2") if s.proc(name).alive()]
    for name in {"w1", "w2"} - set(survivors):
        crash = [line for line in s.proc(name).log_tail(200).splitlines() if "Unrecoverable error" in line]
        print(f"WARNING: worker {name} exited when Redis went away: {crash[-1][:300] if crash else '?'}")
    assert survivors, "every worker exited when Redis went away"
    checker.check(s.db_url, expected=len(executions), sinks={**load.sinks, **slow.sinks})
    term, leader = s.term()
    assert term > term_before, "a new leader took the lease with a higher term"
    poll(
        "the lease to be held by the leader",
        lambda: s.redis.get("wfe:coordinator:leader") == leader.encode(),
        10,
    )
    assert any(e["term"] == term for e in s.cluster_events("leader_changed"))
    ready_ids = s.wait_ready(survivors, timeout=30)
    assert sum(s.spread(list(ready_ids.values())).values()) == len(s.leases())
    print(f"leadership term {term_before} -> {term}; {survivors} own every shard again")


def test_postgresql_restarted_under_load_makes_the_gateway_answer_503_and_every_execution_completes(
    make_scenario: Callable[..., Scenario],
) -> None:
    s = make_scenario(dedicated_pg=True, env={"WORKFLOW_MIN_NR_OF_MEMBERS": "2"})
    assert s.postgres is not None
    s.gateway()
    s.coordinator("c1")
    s.worker("w1")
    s.worker("w2")
    load = s.pipelines("pgdown", 40)
    s.wait_ready(["w1", "w2"])
    load.execution_ids = s.execute(load.workflow_ids)

    s.postgres.stop()
    down = time.monotonic()
    seen: dict[str, Counter[int]] = {"/api/v1/workflows": Counter(), "/health/ready": Counter()}
    while time.monotonic() - down < 3.0:  # the outage: what clients see meanwhile
        seen["/api/v1/workflows"][s.api.get("/api/v1/workflows")[0]] += 1
        seen["/health/ready"][http_status(s.api.base + "/health/ready")] += 1
        time.sleep(0.1)
    s.postgres.start()
    print(f"\nPostgreSQL down {time.monotonic() - down:.1f}s; the gateway answered {seen}")
    for path, statuses in seen.items():
        assert set(statuses) == {503}, f"{path} answered {dict(statuses)} while PostgreSQL was down"

    took = s.wait_finished(load.execution_ids, timeout=90)
    print(f"all executions done {took:.1f}s after PostgreSQL came back")
    checker.check(s.db_url, expected=40, sinks=load.sinks)
    assert s.api.get("/api/v1/workflows")[0] == 200
