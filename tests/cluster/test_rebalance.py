"""A fourth worker joins a three-worker cluster: shards rebalance within the limits, nothing is lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from tests.cluster import checker
from tests.cluster.conftest import Scenario, poll

pytestmark = pytest.mark.cluster

REBALANCE_INTERVAL = 1.0
MAX_SIMULTANEOUS = 3  # the default max-simultaneous-rebalance
THRESHOLD = 1  # the default rebalance-threshold


class LeaseSampler(threading.Thread):
    """Counts shards in hand-off (``handoff`` or ``released``) every 100 ms."""

    def __init__(self, s: Scenario) -> None:
        super().__init__(daemon=True, name="lease-sampler")
        self.s, self.samples = s, 0
        self.peak: tuple[int, list[int]] = (0, [])
        self.errors: list[Exception] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(0.1):
            try:
                moving = [
                    shard
                    for shard, (_, _, state) in self.s.leases().items()
                    if state in ("handoff", "released")
                ]
            except Exception as exc:  # reported, not swallowed: a sampler that stops proves nothing
                self.errors.append(exc)
                continue
            self.samples += 1
            if len(moving) > self.peak[0]:
                self.peak = (len(moving), moving)


def test_a_fourth_worker_receives_shards_within_a_rebalance_interval_and_no_execution_is_lost(
    make_scenario: Callable[..., Scenario],
) -> None:
    s = make_scenario(
        env={
            "WORKFLOW_MIN_NR_OF_MEMBERS": "3",
            "WORKFLOW_REBALANCE_INTERVAL": f"{REBALANCE_INTERVAL:g}s",
            "WORKFLOW_HANDOFF_TIMEOUT": "5s",
        }
    )
    s.gateway()
    s.coordinator("c1")
    for name in ("w1", "w2", "w3"):
        s.worker(name)
    load = s.pipelines("join", 90)
    ids = s.wait_ready(["w1", "w2", "w3"])
    print(f"\nbefore: {sorted(s.spread(list(ids.values())).values())}")
    assert_stats_show_three_workers_and_the_leader(s)
    sampler = LeaseSampler(s)
    sampler.start()
    first = load.workflow_ids[:30]
    load.execution_ids = s.execute(first)  # in flight while the shards start to move

    s.worker("w4")
    new = poll_node(s, "w4")
    joined = time.monotonic()
    got = poll("the new worker to own a shard", lambda: s.owned(new), timeout=30, interval=0.05)
    print(f"w4 live; it owned a shard {got:.2f}s later (rebalance-interval {REBALANCE_INTERVAL}s)")
    assert got <= REBALANCE_INTERVAL + 3.0, f"the new worker waited {got:.2f}s for its first shard"
    load.execution_ids += s.execute(load.workflow_ids[30:])  # and more while the moves go on
    members = [*ids.values(), new]

    def balanced() -> bool:
        load_ = s.spread(members)
        settled = all(state == "assigned" for _, _, state in s.leases().values())
        return settled and max(load_.values()) - min(load_.values()) <= THRESHOLD

    took = poll("the shards to spread within the threshold", balanced, timeout=90, interval=0.2)
    sampler.halt.set()
    sampler.join()
    spread = s.spread(members)
    print(
        f"balanced {time.monotonic() - joined:.1f}s after w4 joined ({took:.1f}s polling): {dict(spread)}; "
        f"peak {sampler.peak[0]} shards in hand-off over {sampler.samples} samples"
    )
    assert not sampler.errors, sampler.errors[:3]
    assert sampler.samples > 10
    assert sampler.peak[0] <= MAX_SIMULTANEOUS, (
        f"{sampler.peak[0]} shards in hand-off at once: {sampler.peak[1]}"
    )
    rebalanced = [e for e in s.cluster_events("shard_rebalance") if e["to_node"] == new]
    assert len(rebalanced) == spread[new] and all(e["reason"] == "rebalance" for e in rebalanced), rebalanced[
        :5
    ]

    s.wait_finished(load.execution_ids, timeout=60)
    checker.check(s.db_url, expected=90, sinks=load.sinks)


def assert_stats_show_three_workers_and_the_leader(s: Scenario) -> None:
    status, stats = s.api.get("/api/v1/cluster/stats")
    assert status == 200, stats
    workers = [m for m in stats["memberList"] if "worker" in m["roles"]]
    assert len(workers) == 3 and stats["leader"] and stats["status"] == "Up", stats
    shards = [m["shards"] for m in workers]
    assert sum(shards) == stats["sharding"]["totalShards"] and max(shards) - min(shards) <= THRESHOLD, shards


def poll_node(s: Scenario, name: str) -> str:
    poll(f"{name} to be live", lambda: s.is_live(s.node_id(name)), timeout=30, interval=0.05)
    return s.node_id(name)
