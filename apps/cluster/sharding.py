"""Shards: which shard an execution lives in, and the fence every journal append passes (invariant 1)."""

from __future__ import annotations

import hashlib

from workflow_engine.errors import EngineError
from workflow_engine.tunables import engine_settings


class ShardNotOwned(EngineError):
    """This worker does not own the execution's shard at the current epoch (a fence failure)."""

    code = "shard_not_owned"
    status = 409


def shard_of(execution_id: str, number_of_shards: int | None = None) -> int:
    """Computed once at creation and stored; routing always uses the stored value."""
    n = number_of_shards or engine_settings.number_of_shards
    digest = hashlib.blake2b(execution_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n


def queue_name(shard_id: int) -> str:
    return f"wf.shard.{shard_id}"


# ``FOR SHARE`` (not ``KEY SHARE``) conflicts with the coordinator's ``UPDATE`` of the lease, so an epoch bump
# waits for in-flight appends of the old owner, and appends after the bump see the new owner.
FENCE_SQL = "SELECT owner, epoch FROM cluster_shardlease WHERE shard_id = %s FOR SHARE"


def check_owner(shard_id: int, owner: str | None, member_id: str | None) -> None:
    """``ShardNotOwned`` unless ``member_id`` is the owner read under the fence."""
    if owner is None or member_id is None or owner != member_id:
        raise ShardNotOwned(f"shard {shard_id} is owned by {owner!r}, not {member_id!r}")
