"""The leader's sweeper: every non-terminal execution must have a way forward (invariant 4).

Each sweep looks for two things a lost Celery message or a dead process can leave behind, and sends the shard
owner a new hint for each (a hint is idempotent, so a needless one costs only a query):

- a command accepted but still unprocessed after two ``sweep-interval``s (a hint lost between commit and
  publish, or dropped by a dying worker), hinted again at most every ``UNPROCESSED_QUIET`` seconds;
- a node attempt still running, with no progress for a grace period and no live claim (its worker died while
  the shard's owner lived on); the recovery hint runs it again under the same idempotency key. When the leader
  sees a worker's liveness expire it does this check at once, with the liveness TTL as the grace period.

Every re-drive counts in ``workflow_sweeper_redrives_total{reason}`` and is reported as one
``execution_redriven`` cluster event per sweep.

Re-driving is bounded: an execution re-driven ``sweeper-max-redrives`` times without moving is one the hints
cannot move (its apply keeps failing, its row stays locked...). The sweeper stops hinting it and reports it
once, as an ``execution_stuck`` cluster event (ERROR) and in ``workflow_sweeper_stuck_total{reason}``, so an
operator can act; its count starts again an hour after its last re-drive. An execution whose applies fail
ends by itself (``commands.apply_failed``), so one that is reported is one that even that could not end.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from apps.cluster import events
from apps.cluster.models import ClusterMember
from apps.workflows.engine.state import ExecutionStatus
from apps.workflows.metrics import stuck_executions, sweeper_redrives_total, workflow_sweeper_stuck_total
from apps.workflows.models import Command, Execution
from apps.workflows.services import admission, claims, dispatch
from workflow_engine.tunables import engine_settings

logger = logging.getLogger(__name__)
BATCH = 1000
REDRIVE_QUIET = 120.0  # seconds


def unprocessed_quiet() -> float:
    """How long between two hints of an execution with unprocessed commands (30 s with the default
    ``sweep-interval``)."""
    return 6 * engine_settings.sweep_interval


@dataclass
class SweepReport:
    unprocessed: list[str] = field(default_factory=list)
    lost_attempts: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)  # past sweeper-max-redrives: reported, not re-driven

    @property
    def total(self) -> int:
        return len(self.unprocessed) + len(self.lost_attempts)


def node_grace() -> float:
    """How long a running attempt may go without progress before its claim is checked."""
    return max(30.0, 3 * engine_settings.liveness_ttl)


MEMBER_RETENTION = timedelta(days=1)


def sweep() -> SweepReport:
    report = SweepReport()
    report.unprocessed = _unprocessed(report.stuck)
    report.lost_attempts = _lost_attempts(stuck=report.stuck)
    _prune_members()
    _admit_queued()
    stuck_executions.set(report.total)
    for reason, ids in (
        ("unprocessed_command", report.unprocessed),
        ("lost_node_attempt", report.lost_attempts),
    ):
        if ids:
            sweeper_redrives_total.labels(reason).inc(len(ids))
            events.record(
                "execution_redriven",
                severity="WARNING",
                reason=reason,
                count=len(ids),
                execution_ids=ids[:20],
            )
    return report


def _admit_queued() -> None:
    """Queued executions normally start when another ends; this covers a release lost to a crash."""
    workflows = Execution.objects.filter(status=ExecutionStatus.QUEUED).values_list("workflow_id", flat=True)
    for workflow_id in set(workflows[:BATCH]):
        admission.release(workflow_id)


def _prune_members() -> None:
    """Every process start is a new member row; forget the ones not seen for a day (any role)."""
    ClusterMember.objects.filter(last_seen__lt=timezone.now() - MEMBER_RETENTION).delete()


def _bounded(execution_ids: list[str], reason: str, stuck: list[str]) -> set[str]:
    """The executions still to re-drive; those past ``sweeper-max-redrives`` are reported, once, instead."""
    if not execution_ids:
        return set()
    try:
        counts = claims.count_redrives(execution_ids)
    except Exception:  # without Redis, no bound: a needless hint costs only a query
        logger.warning("could not count re-drives", exc_info=True)
        return set(execution_ids)
    limit = engine_settings.sweeper_max_redrives
    over = [e for e in execution_ids if counts[e] > limit]
    stuck.extend(over)
    _report_stuck(claims.first_report(over), reason, limit)
    return {e for e in execution_ids if counts[e] <= limit}


def _report_stuck(execution_ids: list[str], reason: str, limit: int) -> None:
    if not execution_ids:
        return
    workflow_sweeper_stuck_total.labels(reason).inc(len(execution_ids))
    logger.error(
        "executions the sweeper could not move", extra={"reason": reason, "execution_ids": execution_ids[:20]}
    )
    events.record(
        "execution_stuck",
        severity="ERROR",
        reason=reason,
        redrives=limit,
        count=len(execution_ids),
        execution_ids=execution_ids[:20],
    )


def _unprocessed(stuck: list[str]) -> list[str]:
    cutoff = timezone.now() - timedelta(seconds=2 * engine_settings.sweep_interval)
    rows = (
        Command.objects.filter(processed_at__isnull=True, created_at__lt=cutoff)
        .values_list("execution_id", "execution__shard_id")
        .distinct()[:BATCH]
    )
    shards = dict(rows)
    # a command is usually unprocessed because its hint waits behind a backlog, not because it was lost:
    # hint each execution again at most once per UNPROCESSED_QUIET, or a backlog would feed itself
    due = claims.first_redrive([(e, "", 0) for e in shards], unprocessed_quiet())
    keep = _bounded([e for e, _, _ in due], "unprocessed_command", stuck)
    for execution_id, _, _ in due:
        if execution_id in keep:
            dispatch.apply_hint(execution_id, shards[execution_id])
    return [execution_id for execution_id, _, _ in due if execution_id in keep]


def redrive_after_member_loss() -> list[str]:
    """Called by the leader when a worker's liveness expired: its node attempts lost their claims by now."""
    lost = _lost_attempts(grace=engine_settings.liveness_ttl, stuck=[])
    if lost:
        sweeper_redrives_total.labels("member_lost").inc(len(lost))
        events.record(
            "execution_redriven",
            severity="WARNING",
            reason="member_lost",
            count=len(lost),
            execution_ids=lost[:20],
        )
    return lost


def _lost_attempts(grace: float | None = None, *, stuck: list[str]) -> list[str]:
    cutoff = timezone.now() - timedelta(seconds=node_grace() if grace is None else grace)
    rows = list(
        Execution.objects.filter(
            status__in=[ExecutionStatus.RUNNING, ExecutionStatus.PAUSED], progressed_at__lt=cutoff
        )
        .exclude(Q(running_nodes=[]))
        .values_list("id", "shard_id", "running_nodes")[:BATCH]
    )
    attempts = [(e, node, attempt) for e, _, running in rows for node, attempt in running]
    alive = claims.live(attempts)
    unclaimed = [a for a in attempts if a not in alive]
    # at most one re-drive per attempt per REDRIVE_QUIET: an attempt still queued behind a backlog has no
    # claim yet, and sending it again every sweep would only grow the backlog
    due = sorted({e for e, _, _ in claims.first_redrive(unclaimed, REDRIVE_QUIET)})
    keep = _bounded(due, "lost_node_attempt", stuck)
    lost = [e for e in due if e in keep]
    shards = {e: shard for e, shard, _ in rows}
    for execution_id in lost:
        dispatch.apply_hint(execution_id, shards[execution_id], recover=True)
    return lost
