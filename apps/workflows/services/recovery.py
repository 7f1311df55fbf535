"""Recovery of a shard by its new owner ("remember entities", ARCHITECTURE.md §4).

Every non-terminal execution of the shard gets a recovery hint: its owner applies pending commands and
re-drives node attempts that were running when the previous owner died.
"""

from __future__ import annotations

import logging

from apps.workflows.models import Execution, ExecutionStatus
from apps.workflows.services import dispatch

logger = logging.getLogger(__name__)


def active_executions(shard_ids: list[int]) -> list[tuple[str, int]]:
    """``(execution_id, shard_id)`` of non-terminal executions (partial index ``execution_shard_active``)."""
    return list(
        Execution.objects.filter(
            shard_id__in=shard_ids, status__in=[ExecutionStatus.PENDING, ExecutionStatus.RUNNING]
        ).values_list("id", "shard_id")
    )


def recover_shards(shard_ids: list[int]) -> int:
    """Send a recovery hint for each active execution of the shards; returns how many."""
    found = active_executions(shard_ids)
    for execution_id, shard_id in found:
        dispatch.apply_hint(execution_id, shard_id, recover=True)
    if found:
        logger.info("recovering executions", extra={"shards": len(shard_ids), "executions": len(found)})
    return len(found)
