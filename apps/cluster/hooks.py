"""What the apps above the cluster do when it changes hands.

The cluster leases shards and elects a leader; it knows nothing of executions or schedules. The apps that do
register here, in their ``AppConfig.ready()``, and the cluster calls them:

- ``on_shards_acquired``: a worker has just been given shards (at a new epoch): recover what they hold.
  Returns how many things it recovered, for the log.
- ``on_leader_tick``: every coordinator tick of the acting leader (durable timers, schedules).
- ``on_sweep``: every ``sweep-interval`` on the leader (the stuck-execution sweeper).
- ``on_members_lost``: once after workers died, when their claims have expired too.
- ``set_shard_load``: how many live entities each shard holds (events, the cluster status and the API).

A failing leader hook is logged and tried again at the next tick; it never stops the others or the
coordinator. A failing ``on_shards_acquired`` propagates: the worker recovers those shards again next round.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TypeVar

logger = logging.getLogger(__name__)

ShardsAcquired = Callable[[list[int], str, list[int]], int]
LeaderWork = Callable[[], object]  # what it returns (a count, a report) is for its own callers
ShardLoad = Callable[[Iterable[int] | None], dict[int, int]]

_shards_acquired: list[ShardsAcquired] = []
_leader_tick: list[LeaderWork] = []
_sweep: list[LeaderWork] = []
_members_lost: list[LeaderWork] = []
_shard_load: list[ShardLoad] = []


Hook = TypeVar("Hook")


def _add(hooks: list[Hook], fn: Hook) -> Hook:
    if fn not in hooks:  # ready() may run twice (tests, reloads): once is enough
        hooks.append(fn)
    return fn


def on_shards_acquired(fn: ShardsAcquired) -> ShardsAcquired:
    return _add(_shards_acquired, fn)


def on_leader_tick(fn: LeaderWork) -> LeaderWork:
    return _add(_leader_tick, fn)


def on_sweep(fn: LeaderWork) -> LeaderWork:
    return _add(_sweep, fn)


def on_members_lost(fn: LeaderWork) -> LeaderWork:
    return _add(_members_lost, fn)


def set_shard_load(fn: ShardLoad) -> ShardLoad:
    _shard_load[:] = [fn]
    return fn


def shards_acquired(shards: list[int], member_id: str, report: list[int]) -> int:
    """Run every ``on_shards_acquired`` hook; ``report``: the shards whose failover is to be reported."""
    return sum(fn(shards, member_id, report) for fn in _shards_acquired)


def leader_tick() -> None:
    _run_all(_leader_tick, "leader tick")


def sweep() -> None:
    _run_all(_sweep, "sweep")


def members_lost() -> None:
    _run_all(_members_lost, "members lost")


def shard_load(shards: Iterable[int] | None = None) -> dict[int, int]:
    """Live entities per shard (only ``shards`` when given); empty when no app registered a count."""
    return _shard_load[0](shards) if _shard_load else {}


def _run_all(hooks: list[LeaderWork], what: str) -> None:
    for fn in hooks:
        try:
            fn()
        except Exception:
            logger.exception("%s hook failed; trying again next tick", what, extra={"hook": fn.__qualname__})
