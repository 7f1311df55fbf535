"""Redis behind Sentinel (issue 16): real ``redis-server`` master, replica and sentinels on loopback.

The master is SIGKILLed, the sentinels promote the replica, and every client of the engine (the leases and
liveness keys, the Celery broker, the gateways' rate limits) finds the new master by itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import kombu
import pytest
import redis

from devservices.sentinel import SentinelCluster
from tests.cluster import checker
from tests.cluster.conftest import Scenario, csv_workload, poll
from workflow_engine import env, redis_client

pytestmark = pytest.mark.cluster


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelCluster]:
    cluster = SentinelCluster(tmp_path / "sentinel", down_after_ms=500, failover_timeout_ms=2000)
    cluster.start()
    yield cluster
    cluster.stop()


def _until_written(client: redis.Redis, key: str, timeout: float = 20) -> float:
    """Seconds until a write succeeds again (the first ones fail while there is no master)."""
    started = time.monotonic()
    while True:
        try:
            client.set(key, "1")
            return time.monotonic() - started
        except (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError):
            if time.monotonic() - started > timeout:
                raise
            time.sleep(0.1)


def test_the_engines_client_the_broker_and_the_rate_limit_cache_follow_the_master_sentinel_names(
    sentinels: SentinelCluster,
) -> None:
    url = sentinels.url(db=1)
    client = redis_client.connect(url, socket_timeout=1, socket_connect_timeout=1)
    client.set("before", "1")
    cache = redis.Redis(connection_pool=redis_client.SentinelPool.from_url(url, socket_timeout=1))
    assert cache.ping()
    config = env.parse_sentinel_url(url)
    with kombu.Connection(config.kombu_url(), transport_options=config.kombu_options()) as broker:
        queue = broker.SimpleQueue("sentinel-check")
        queue.put({"n": 1})
        time.sleep(0.3)  # replication is asynchronous: let the replica have the message before the kill

        old = sentinels.kill_master()
        new = sentinels.wait_failover(old)
        took = _until_written(client, "after")
        print(f"\nmaster {old} killed; {new} promoted; the engine's client wrote again after {took:.1f}s")

        assert client.get("before") == b"1", "the replica had the data"
        assert redis.Redis(port=new, db=1).get("after") == b"1", "written to the promoted master"
        message = queue.get(timeout=10)  # kombu reconnects through the sentinels by itself
        assert message.payload == {"n": 1}
        message.ack()
        queue.close()
    assert cache.ping()


def test_when_the_redis_master_is_killed_sentinel_promotes_the_replica_and_the_cluster_carries_on(
    make_scenario: Callable[..., Scenario], sentinels: SentinelCluster
) -> None:
    s = make_scenario(env={"WORKFLOW_MIN_NR_OF_MEMBERS": "2", "REDIS_URL": sentinels.url()})
    s.redis_url = sentinels.url()
    s.gateway()
    s.coordinator("c1")
    s.worker("w1")
    s.worker("w2")
    load = s.pipelines("sentinel", 40)
    slow = csv_workload(s, "sentinel-csv", executions=4, rows=30_000)  # node tasks running across the switch
    s.wait_ready(["w1", "w2"])
    poll("a leader", lambda: s.term()[0] > 0, timeout=30)
    term_before, leader_before = s.term()
    before = s.execute(load.workflow_ids[:20]) + s.execute(slow.workflow_ids)

    in_flight = s.statuses(before)
    old = sentinels.kill_master()
    killed = time.monotonic()
    new = sentinels.wait_failover(old)
    promoted = time.monotonic() - killed
    after = s.execute(load.workflow_ids[20:], retry_unavailable=True)
    took = s.wait_finished(before + after, timeout=60)
    print(f"\nmaster {old} killed with executions {dict(in_flight)}; {new} promoted after {promoted:.1f}s")
    print(f"all done {took:.1f}s after the promotion")
    assert in_flight["completed"] < len(before), "everything finished before the kill"

    checker.check(s.db_url, expected=len(before) + len(after), sinks={**load.sinks, **slow.sinks})
    term, leader = s.term()
    assert term >= term_before, "the PostgreSQL term never goes back"
    poll("the lease on the new master", lambda: s.redis.get("wfe:coordinator:leader") == leader.encode(), 15)
    print(f"leadership {leader_before} term {term_before} -> {leader} term {term}")
    for name in ("c1", "w1", "w2"):
        assert s.proc(name).alive(), f"{name} exited in the failover:\n{s.proc(name).log_tail(40)}"
    ready = s.wait_ready(["w1", "w2"], timeout=30)
    assert sum(s.spread(list(ready.values())).values()) == len(s.leases()), "every shard owned again"
    status, _ = s.api.get("/health/ready")
    assert status == 200
