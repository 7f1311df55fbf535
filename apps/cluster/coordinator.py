"""The coordinator: one ``tick()`` is one bounded round of leader work.

Every coordinator beats its own liveness and competes for leadership; only the acting leader tracks members,
allocates shards, rebalances them with a hand-off, and sweeps for stuck executions. Each assignment is an
``UPDATE ... WHERE owner = <old> AND epoch = <old>`` in a transaction that first checks the term, so a deposed
leader's writes change nothing (invariant 6).
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.db import OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from apps.cluster import events, hooks, membership, metrics
from apps.cluster.allocation import Lease, Move, loads, orphan_moves, rebalance_moves
from apps.cluster.leadership import Leadership
from apps.cluster.models import ClusterMember, LeaseState, MoveReason, ShardLease
from apps.cluster.startup import ClusterCheck
from workflow_engine import messaging
from workflow_engine.tunables import engine_settings

logger = logging.getLogger(__name__)


class TermLost(Exception):
    """Another coordinator has taken over: our term is no longer current."""


class Coordinator:
    def __init__(self, member_id: str) -> None:
        self.member_id = member_id
        self.leadership = Leadership(member_id)
        self.check = ClusterCheck("coordinator")
        self.members: set[str] = set()
        self._last_rebalance = time.monotonic()
        self._last_sweep = 0.0
        self._redrive_at: float | None = None

    def tick(self) -> bool:
        """Beat, lead if we can, and do the leader's work. Returns whether this coordinator led.

        Raises ``StartRefused`` when this cluster's Redis belongs to another cluster or the number of shards
        changed (``apps/cluster/startup.py``): before beating, so a refused coordinator never joins."""
        self.check.verify()
        membership.beat(self.member_id, ["coordinator"])
        if not self.leadership.ensure():
            self.members.clear()
            return False
        try:
            self._lead()
        except TermLost:
            self.leadership.step_down("term superseded")
            return False
        return True

    def _lead(self) -> None:
        live_members = membership.live_members()
        live = sorted(m.member_id for m in live_members if m.role == "worker")
        self._track_members(live)
        self.allocate(live)
        now = time.monotonic()
        if now - self._last_rebalance >= engine_settings.rebalance_interval:
            self._last_rebalance = now
            self.rebalance(live)
        self._sweep(now)
        metrics.report_cluster({m.member_id for m in live_members}, self.leadership.term or 0)

    def _sweep(self, now: float) -> None:
        """The apps' leader work (``hooks``): every tick (a timer fires within a tick of its time), after
        members were lost, and every ``sweep-interval``."""
        hooks.leader_tick()
        if self._redrive_at is not None and now >= self._redrive_at:
            self._redrive_at = None
            hooks.members_lost()
        if now - self._last_sweep >= engine_settings.sweep_interval:
            self._last_sweep = now
            hooks.sweep()

    # --- membership --------------------------------------------------------------------------------------

    def _track_members(self, live: list[str]) -> None:
        joined, gone = set(live) - self.members, self.members - set(live)
        if joined:
            self._joined(sorted(joined))
        if gone:
            self._gone(sorted(gone))
        self.members = set(live)

    def _joined(self, members: list[str]) -> None:
        down = set(ClusterMember.objects.filter(pk__in=members, state="down").values_list("pk", flat=True))
        for member in members:
            if member in down:  # it was cut off or paused, and its liveness is back
                events.record("reachable_member", reachable_node=member)
            events.record("member_event", member_address=member, status="up", roles=["worker"])
        ClusterMember.objects.filter(pk__in=members).exclude(state="up").update(state="up")

    def _gone(self, members: list[str]) -> None:
        left = set(ClusterMember.objects.filter(pk__in=members, state="left").values_list("pk", flat=True))
        for member in members:
            if member not in left:  # its liveness expired: it died, hangs or is cut off
                events.record(
                    "unreachable_member",
                    severity="ERROR",
                    unreachable_node=member,
                    detected_by=self.member_id,
                )
            events.record("member_event", member_address=member, status="removed", roles=["worker"])
        ClusterMember.objects.filter(pk__in=[m for m in members if m not in left]).update(state="down")
        if set(members) - left:
            # node attempts it ran for other shards' owners: checked once their claims have expired too
            self._redrive_at = time.monotonic() + engine_settings.heartbeat_interval

    # --- allocation --------------------------------------------------------------------------------------

    def allocate(self, live: list[str]) -> list[Move]:
        """Orphaned shards at once; released and timed-out hand-offs to their target."""
        _ensure_shards(engine_settings.number_of_shards)
        if (
            len(live) < engine_settings.min_nr_of_members
            and not ShardLease.objects.exclude(owner=None).exists()
        ):
            return []  # the first allocation waits for min-nr-of-members, as Pekko's does
        leases = _leases()
        orphans = orphan_moves(leases, live)
        left = _left({m.from_owner for m in orphans if m.from_owner})
        moves: list[tuple[Move, str]] = [(m, _orphan_reason(m, left)) for m in orphans]
        moves += self._handoffs_to_complete(leases, live)
        if moves:
            self._apply(moves)
        return [m for m, _ in moves]

    def _handoffs_to_complete(self, leases: list[Lease], live: list[str]) -> list[tuple[Move, str]]:
        if not live:
            return []
        deadline = timezone.now() - timedelta(seconds=engine_settings.handoff_timeout)
        timed_out = set(
            ShardLease.objects.filter(state=LeaseState.HANDOFF, handoff_started_at__lt=deadline).values_list(
                "shard_id", flat=True
            )
        )
        load = loads(leases, live)
        done: list[tuple[Move, str]] = []
        for lease in leases:
            if lease.owner not in load or (
                lease.state != LeaseState.RELEASED and lease.shard_id not in timed_out
            ):
                continue
            target = lease.handoff_to if lease.handoff_to in load else min(load, key=lambda w: (load[w], w))
            reason = (
                MoveReason.REBALANCE if lease.state == LeaseState.RELEASED else MoveReason.HANDOFF_TIMEOUT
            )
            done.append((Move(lease.shard_id, lease.owner, lease.epoch, target), reason))
        return done

    def _apply(self, moves: list[tuple[Move, str]]) -> None:
        """One transaction per move: a shard whose lease row is locked (its owner paused inside an append)
        waits for the next round instead of holding up every other move."""
        term = self.leadership.term
        counts = hooks.shard_load([m.shard_id for m, _ in moves])
        done = 0
        for move, reason in moves:
            try:
                with transaction.atomic():
                    _check_term(term)
                    _lock_timeout("1s")
                    if not _move(move, term or 0, reason):
                        continue
                    done += 1
                    if move.from_owner:
                        events.record(
                            "shard_rebalance",
                            shard_id=move.shard_id,
                            from_node=move.from_owner,
                            to_node=move.to_owner,
                            entity_count=counts.get(move.shard_id, 0),
                            reason=reason,
                        )
            except OperationalError:
                logger.warning("shard lease busy; moving it next round", extra={"shard": move.shard_id})
                continue
            if move.from_owner:
                metrics.rebalanced(move)
        logger.info("assigned shards", extra={"moves": done, "term": term})
        _nudge_workers()

    def rebalance(self, live: list[str]) -> list[Move]:
        """Start planned hand-offs when the spread exceeds ``rebalance-threshold``."""
        moves = rebalance_moves(
            _leases(), live, engine_settings.rebalance_threshold, engine_settings.max_simultaneous_rebalance
        )
        if not moves:
            return []
        with transaction.atomic():
            _check_term(self.leadership.term)
            for move in moves:
                ShardLease.objects.filter(
                    shard_id=move.shard_id,
                    owner=move.from_owner,
                    epoch=move.from_epoch,
                    state=LeaseState.ASSIGNED,
                ).update(
                    state=LeaseState.HANDOFF, handoff_to=move.to_owner, handoff_started_at=timezone.now()
                )
        logger.info("hand-offs started", extra={"moves": [(m.shard_id, m.to_owner) for m in moves]})
        _nudge_workers()
        return moves


def _left(owners: set[str]) -> set[str]:
    """Owners that stopped cleanly (``membership.leave``) rather than died."""
    return set(ClusterMember.objects.filter(pk__in=owners, state="left").values_list("pk", flat=True))


def _orphan_reason(move: Move, left: set[str]) -> str:
    if not move.from_owner:
        return MoveReason.INITIAL
    return MoveReason.MEMBER_LEFT if move.from_owner in left else MoveReason.FAILOVER


def _leases() -> list[Lease]:
    rows = ShardLease.objects.values_list("shard_id", "owner", "epoch", "state", "handoff_to")
    return [Lease(*row) for row in rows]


def _move(move: Move, term: int, reason: str) -> bool:
    """Compare-and-set the owner; bumping the epoch fences the previous owner's appends."""
    moved = ShardLease.objects.filter(
        shard_id=move.shard_id, owner=move.from_owner, epoch=move.from_epoch
    ).update(
        owner=move.to_owner,
        epoch=F("epoch") + 1,
        term=term,
        state=LeaseState.ASSIGNED,
        handoff_to="",
        handoff_started_at=None,
        previous_owner=move.from_owner or "",
        moved_reason=reason,
        moved_at=timezone.now(),
    )
    return moved == 1


def _lock_timeout(value: str) -> None:
    with connection.cursor() as cur:
        cur.execute(f"SET LOCAL lock_timeout = '{value}'")


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
        messaging.nudge_members()
    except Exception:
        logger.warning("could not nudge workers", exc_info=True)
