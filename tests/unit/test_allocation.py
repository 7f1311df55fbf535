"""Shard allocation: least-shard-first, only shards whose owner is not live move."""

from __future__ import annotations

from apps.cluster.allocation import Lease, orphan_moves, rebalance_moves
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


def spread(owners: dict[str, int]) -> list[Lease]:
    leases, shard = [], 0
    for owner, count in owners.items():
        for _ in range(count):
            leases.append(Lease(shard, owner, 1))
            shard += 1
    return leases


def test_a_new_worker_gets_at_most_max_simultaneous_rebalance_shards_per_round() -> None:
    moves = rebalance_moves(spread({"a": 34, "b": 33, "c": 33}), ["a", "b", "c", "d"], threshold=1, limit=3)
    assert len(moves) == 3 and {m.to_owner for m in moves} == {"d"}
    assert all(m.from_owner in ("a", "b", "c") for m in moves)


def test_no_rebalance_when_the_spread_is_within_the_threshold() -> None:
    assert rebalance_moves(spread({"a": 34, "b": 33, "c": 33}), ["a", "b", "c"], threshold=1, limit=3) == []
    assert rebalance_moves(spread({"a": 36, "b": 33, "c": 31}), ["a", "b", "c"], threshold=5, limit=3) == []


def test_hand_offs_in_flight_count_against_the_limit_and_towards_their_target() -> None:
    leases = spread({"a": 50, "b": 50})
    leases[0] = Lease(0, "a", 1, "handoff", "c")
    leases[1] = Lease(1, "a", 1, "released", "c")
    moves = rebalance_moves(leases, ["a", "b", "c"], threshold=1, limit=3)
    assert len(moves) == 1 and moves[0].to_owner == "c"


def test_orphans_are_moved_before_any_rebalance() -> None:
    leases = [*spread({"a": 10}), Lease(99, "dead", 3)]
    assert rebalance_moves(leases, ["a", "b"], threshold=1, limit=3) == []
    assert [(m.shard_id, m.to_owner) for m in orphan_moves(leases, ["a", "b"])] == [(99, "b")]


def test_repeated_rounds_converge_to_an_even_spread() -> None:
    leases = spread({"a": 50, "b": 50})
    live = ["a", "b", "c", "d"]
    for _ in range(40):
        moves = rebalance_moves(leases, live, threshold=1, limit=3)
        if not moves:
            break
        moved = {m.shard_id: m.to_owner for m in moves}
        leases = [Lease(le.shard_id, moved.get(le.shard_id, le.owner), le.epoch + 1) for le in leases]
    counts = sorted(sum(le.owner == w for le in leases) for w in live)
    assert counts[-1] - counts[0] <= 1 and sum(counts) == 100
