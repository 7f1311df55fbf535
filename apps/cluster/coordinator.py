"""The coordinator: one ``tick()`` is one bounded round of leader work.

Every coordinator beats its own liveness and competes for leadership; only the acting leader tracks members
and allocates shards. Each assignment is an ``UPDATE ... WHERE owner = <old> AND epoch = <old>`` in a
transaction that first checks the term, so a deposed leader's writes change nothing (invariant 6).
"""

from __future__ import annotations

import logging

from django.db import connection, transaction
from django.db.models import F

from apps.cluster import events, membership, redis_client
from apps.cluster.allocation import Lease, Move, orphan_moves
from apps.cluster.leadership import Leadership
from apps.cluster.models import ClusterNode, ShardLease
from apps.workflows.conf import engine_settings

logger = logging.getLogger(__name__)


class TermLost(Exception):
    """Another coordinator has taken over: our term is no longer current."""


class Coordinator:
    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.leadership = Leadership(node_id)
        self.members: set[str] = set()

    def tick(self) -> bool:
        """Beat, lead if we can, and allocate. Returns whether this coordinator acted as leader."""
        membership.beat(self.node_id, ["coordinator"])
        if not self.leadership.ensure():
            self.members.clear()
            return False
        live = membership.live_workers()
        self._track_members(live)
        try:
            self.allocate(live)
        except TermLost:
            self.leadership.step_down("term superseded")
            return False
        return True

    def _track_members(self, live: list[str]) -> None:
        joined, gone = set(live) - self.members, self.members - set(live)
        for node in sorted(joined):
            events.record("member_event", member_address=node, status="up", roles=["worker"])
        for node in sorted(gone):
            events.record(
                "unreachable_member", severity="ERROR", unreachable_node=node, detected_by=self.node_id
            )
            events.record("member_event", member_address=node, status="removed", roles=["worker"])
            ClusterNode.objects.filter(pk=node).update(state="down")
        self.members = set(live)

    def allocate(self, live: list[str]) -> list[Move]:
        _ensure_shards(engine_settings.number_of_shards)
        if (
            len(live) < engine_settings.min_nr_of_members
            and not ShardLease.objects.exclude(owner=None).exists()
        ):
            return []  # the first allocation waits for min-nr-of-members, as Pekko's does
        leases = [Lease(s, o, e) for s, o, e in ShardLease.objects.values_list("shard_id", "owner", "epoch")]
        moves = orphan_moves(leases, live)
        if moves:
            self._apply(moves)
            _nudge_workers()
        return moves

    def _apply(self, moves: list[Move]) -> None:
        term = self.leadership.term
        with transaction.atomic():
            _check_term(term)
            for move in moves:
                moved = ShardLease.objects.filter(
                    shard_id=move.shard_id, owner=move.from_owner, epoch=move.from_epoch
                ).update(owner=move.to_owner, epoch=F("epoch") + 1, term=term, state="assigned")
                if moved == 1 and move.from_owner:
                    events.record(
                        "shard_rebalance",
                        shard_id=move.shard_id,
                        from_node=move.from_owner,
                        to_node=move.to_owner,
                        reason="owner unreachable",
                    )
        logger.info("assigned shards", extra={"moves": len(moves), "term": term})


def _check_term(term: int | None) -> None:
    """Inside the assignment transaction: our term must still be the current one (``FOR SHARE``)."""
    with connection.cursor() as cur:
        cur.execute("SELECT term FROM cluster_coordinatorterm WHERE id = 1 FOR SHARE")
        row = cur.fetchone()
    if term is None or row is None or int(row[0]) != term:
        raise TermLost(f"term {term} is not current ({row[0] if row else None})")


def _ensure_shards(n: int) -> None:
    if ShardLease.objects.count() < n:
        ShardLease.objects.bulk_create([ShardLease(shard_id=i) for i in range(n)], ignore_conflicts=True)


def _nudge_workers() -> None:
    """A hint: workers reconcile at once instead of at their next interval."""
    try:
        redis_client.client().publish(redis_client.key(redis_client.NUDGE_CHANNEL), "1")
    except Exception:
        logger.warning("could not nudge workers", exc_info=True)
