"""Recovery of a shard by its new owner ("remember entities", ARCHITECTURE.md §4).

Every non-terminal execution of the shard gets a recovery hint: its owner applies pending commands and
re-drives node attempts that were running when the previous owner died. When the shard moved because its
previous owner's liveness expired, each recovered execution is a ``workflow_failover`` cluster event, with the
time since the dead owner was last seen as ``downtime_seconds``.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from apps.cluster import events
from apps.cluster.metrics import member_name
from apps.cluster.models import ClusterMember, MoveReason, ShardLease
from apps.workflows.engine.state import ACTIVE_STATUSES
from apps.workflows.metrics import workflow_failover_total
from apps.workflows.models import Execution
from apps.workflows.services import dispatch

logger = logging.getLogger(__name__)


def active_executions(shard_ids: list[int]) -> list[tuple[str, int, str]]:
    """``(execution_id, shard_id, workflow_id)`` of active executions (index ``execution_shard_active``)."""
    return list(
        Execution.objects.filter(shard_id__in=shard_ids, status__in=ACTIVE_STATUSES).values_list(
            "id", "shard_id", "workflow_id"
        )
    )


def recover_shards(shard_ids: list[int], new_owner: str, report: list[int] | None = None) -> int:
    """Send a recovery hint for each active execution of the shards; returns how many.

    ``report`` names the shards whose arrival is new to this worker (not a re-take after self-fencing):
    only their failovers are reported, so each move is counted once.
    """
    found = active_executions(shard_ids)
    for execution_id, shard_id, _ in found:
        dispatch.apply_hint(execution_id, shard_id, recover=True)
    _report_failovers(shard_ids if report is None else report, found, new_owner)
    if found:
        logger.info("recovering executions", extra={"shards": len(shard_ids), "executions": len(found)})
    return len(found)


def _report_failovers(shard_ids: list[int], found: list[tuple[str, int, str]], new_owner: str) -> None:
    failed = dict(
        ShardLease.objects.filter(shard_id__in=shard_ids, moved_reason=MoveReason.FAILOVER)
        .exclude(previous_owner="")
        .values_list("shard_id", "previous_owner")
    )
    if not failed:
        return
    seen = dict(ClusterMember.objects.filter(pk__in=set(failed.values())).values_list("pk", "last_seen"))
    now = timezone.now()
    for execution_id, shard_id, workflow_id in found:
        dead = failed.get(shard_id)
        if dead is None:
            continue
        downtime = (now - seen[dead]).total_seconds() if dead in seen else None
        events.record(
            "workflow_failover",
            severity="WARNING",
            workflow_id=workflow_id,
            execution_id=execution_id,
            failed_node=dead,
            new_node=new_owner,
            shard_id=shard_id,
            downtime_seconds=round(downtime, 3) if downtime is not None else None,
        )
        workflow_failover_total.labels(workflow_id, member_name(dead), member_name(new_owner)).inc()
