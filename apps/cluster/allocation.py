"""Shard allocation, pure: least-shard-first, as Pekko's LeastShardAllocationStrategy.

Two kinds of moves: an orphaned shard (no owner, or an owner whose liveness expired) goes at once to the live
worker with the fewest shards; and, every ``rebalance-interval``, when the most and least loaded live workers
differ by more than ``rebalance-threshold``, at most ``max-simultaneous-rebalance`` shards start a planned
hand-off from the most to the least loaded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Lease:
    shard_id: int
    owner: str | None
    epoch: int
    state: str = "assigned"
    handoff_to: str = ""


@dataclass(frozen=True)
class Move:
    shard_id: int
    from_owner: str | None
    from_epoch: int
    to_owner: str


def loads(leases: Sequence[Lease], live: Sequence[str]) -> Counter[str]:
    """Shards per live worker, counting a shard in hand-off towards its target (it is on its way there)."""
    load = Counter({w: 0 for w in live})
    for lease in leases:
        holder = lease.handoff_to if lease.state == "handoff" and lease.handoff_to in load else lease.owner
        if holder is not None and holder in load:
            load[holder] += 1
    return load


def _least(load: Counter[str]) -> str:
    return min(load, key=lambda w: (load[w], w))


def orphan_moves(leases: Sequence[Lease], live: Sequence[str]) -> list[Move]:
    """A move for every shard whose owner is not live, each to the least-loaded live worker."""
    if not live:
        return []
    load = loads(leases, live)
    moves = []
    for lease in sorted(leases, key=lambda x: x.shard_id):
        if lease.owner in load:
            continue
        target = _least(load)
        load[target] += 1
        moves.append(Move(lease.shard_id, lease.owner, lease.epoch, target))
    return moves


def rebalance_moves(leases: Sequence[Lease], live: Sequence[str], threshold: int, limit: int) -> list[Move]:
    """Planned hand-offs from the most to the least loaded live worker, within the limits."""
    if len(live) < 2 or any(lease.owner not in live for lease in leases):
        return []  # orphans first: they move without a hand-off
    load = loads(leases, live)
    in_flight = sum(lease.state in ("handoff", "released") for lease in leases)
    movable = sorted((le for le in leases if le.state == "assigned"), key=lambda x: -x.shard_id)
    moves: list[Move] = []
    while len(moves) + in_flight < limit:
        source, target = max(load, key=lambda w: (load[w], w)), _least(load)
        if load[source] - load[target] <= threshold:
            break
        lease = next((le for le in movable if le.owner == source), None)
        if lease is None:
            break
        movable.remove(lease)
        load[source] -= 1
        load[target] += 1
        moves.append(Move(lease.shard_id, lease.owner, lease.epoch, target))
    return moves
