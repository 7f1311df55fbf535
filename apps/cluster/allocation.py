"""Shard allocation, pure: least-shard-first, as Pekko's LeastShardAllocationStrategy.

Issue 3 adds rebalancing between live workers; here orphaned shards (no owner, or an owner whose liveness
expired) go to the live worker with the fewest shards.
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


@dataclass(frozen=True)
class Move:
    shard_id: int
    from_owner: str | None
    from_epoch: int
    to_owner: str


def orphan_moves(leases: Sequence[Lease], live: Sequence[str]) -> list[Move]:
    """A move for every shard whose owner is not live, each to the least-loaded live worker."""
    if not live:
        return []
    load = Counter({w: 0 for w in live})
    load.update(lease.owner for lease in leases if lease.owner is not None and lease.owner in load)
    moves = []
    for lease in sorted(leases, key=lambda x: x.shard_id):
        if lease.owner in load:
            continue
        target = min(load, key=lambda w: (load[w], w))
        load[target] += 1
        moves.append(Move(lease.shard_id, lease.owner, lease.epoch, target))
    return moves
