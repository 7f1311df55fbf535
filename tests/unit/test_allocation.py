"""Shard allocation: least-shard-first, only shards whose owner is not live move."""

from __future__ import annotations

from apps.cluster.allocation import Lease, orphan_moves
from apps.cluster.sharding import shard_of


def test_unowned_shards_are_spread_evenly_over_live_workers() -> None:
    moves = orphan_moves([Lease(i, None, 0) for i in range(10)], ["a", "b", "c"])
    counts = {w: sum(m.to_owner == w for m in moves) for w in "abc"}
    assert len(moves) == 10 and sorted(counts.values()) == [3, 3, 4]


def test_only_the_shards_of_a_dead_worker_move_and_they_go_to_the_least_loaded() -> None:
    leases = [Lease(0, "a", 1), Lease(1, "a", 1), Lease(2, "b", 1), Lease(3, "dead", 4), Lease(4, "dead", 2)]
    moves = orphan_moves(leases, ["a", "b"])
    assert [(m.shard_id, m.from_owner, m.from_epoch, m.to_owner) for m in moves] == [
        (3, "dead", 4, "b"),
        (4, "dead", 2, "a"),
    ]


def test_nothing_moves_without_live_workers() -> None:
    assert orphan_moves([Lease(0, "gone", 3)], []) == []


def test_the_shard_of_an_execution_is_stable_and_in_range() -> None:
    shards = {shard_of(f"exec_{i}", 100) for i in range(2000)}
    assert shards <= set(range(100)) and len(shards) == 100
    assert shard_of("exec_abc", 100) == shard_of("exec_abc", 100)
