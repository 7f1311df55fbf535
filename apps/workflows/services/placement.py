"""Where executions live: each one's stored shard, and who owns that shard now (the cluster's leases)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Count

from apps.cluster import queries as cluster_queries
from apps.cluster.models import ClusterEvent
from apps.workflows.engine.state import ACTIVE_STATUSES
from apps.workflows.models import Execution, Workflow
from workflow_engine.errors import NotFound

LOCATION_LIMIT = 100


def active_by_shard(shards: Iterable[int] | None = None) -> dict[int, int]:
    """Active executions per shard (the cluster's shard load): one ``GROUP BY`` over the partial index
    ``execution_shard_active``; only ``shards`` when given."""
    rows = Execution.objects.filter(status__in=ACTIVE_STATUSES)
    if shards is not None:
        rows = rows.filter(shard_id__in=list(shards))
    return dict(rows.order_by().values("shard_id").annotate(n=Count("*")).values_list("shard_id", "n"))


def workflow_location(workflow_id: str) -> dict[str, Any]:
    """Where the workflow's active executions (the newest ``LOCATION_LIMIT``) live: shard, owner, epoch."""
    if not Workflow.objects.filter(pk=workflow_id).exists():
        raise NotFound(f"Workflow {workflow_id!r} not found.", details={"workflowId": [workflow_id]})
    rows = list(
        Execution.objects.filter(workflow_id=workflow_id, status__in=ACTIVE_STATUSES)
        .order_by("-created_at", "-id")
        .values_list("id", "shard_id", "status")[:LOCATION_LIMIT]
    )
    leases = cluster_queries.leases_of({shard_id for _, shard_id, _ in rows})
    executions = []
    for execution_id, shard_id, status in rows:
        owner, epoch = leases.get(shard_id, (None, 0))
        executions.append(
            {
                "executionId": execution_id,
                "shardId": shard_id,
                "owner": owner,
                "epoch": epoch,
                "status": status,
            }
        )
    newest = executions[0] if executions else {}
    return {
        "workflowId": workflow_id,
        # the original's fields (one shard per workflow there): the newest active execution's shard and owner
        "shardId": newest.get("shardId"),
        "nodeAddress": newest.get("owner"),
        "shardIds": sorted({e["shardId"] for e in executions}),
        "executions": executions,
    }


def execution_location(execution_id: str) -> dict[str, Any]:
    """The execution's stored shard and who owns that shard now, at which epoch."""
    row = Execution.objects.filter(pk=execution_id).values_list("workflow_id", "shard_id", "status").first()
    if row is None:
        raise NotFound(f"Execution {execution_id!r} not found.", details={"executionId": [execution_id]})
    workflow_id, shard_id, status = row
    owner, epoch = cluster_queries.leases_of([shard_id]).get(shard_id, (None, 0))
    return {
        "executionId": execution_id,
        "workflowId": workflow_id,
        "shardId": shard_id,
        "owner": owner,
        "epoch": epoch,
        "status": status,
    }


def workflow_events(workflow_id: str, *, limit: int, since_id: int | None) -> dict[str, Any]:
    """Events about one workflow; a 404 only when the workflow neither exists nor was ever mentioned (the
    events of a deleted workflow stay readable)."""
    found = cluster_queries.cluster_events(workflow_id=workflow_id, limit=limit, since_id=since_id)
    if (
        not found["events"]
        and not Workflow.objects.filter(pk=workflow_id).exists()
        and not ClusterEvent.objects.filter(workflow_id=workflow_id).exists()
    ):
        raise NotFound(f"Workflow {workflow_id!r} not found.", details={"workflowId": [workflow_id]})
    return found
