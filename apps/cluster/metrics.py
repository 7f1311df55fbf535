"""Cluster metrics with the original product's names (origin-product.md §7.1), really updated.

Gauges describing the whole cluster are set by the acting leader only (``livemostrecent``: the last value a
live process wrote wins when the node's exporter merges its processes).
"""

from __future__ import annotations

from django.db.models import Count
from prometheus_client import Counter, Gauge

from apps.cluster.allocation import Move

workflow_failover_total = Counter(
    "workflow_failover_total",
    "Executions recovered by a new owner after their owner's liveness expired.",
    ["workflow_id", "from_node", "to_node"],
)
workflow_rebalance_total = Counter(
    "workflow_rebalance_total",
    "Shards moved from one owner to another.",
    ["shard_id", "from_node", "to_node"],
)
cluster_member_count = Gauge(
    "cluster_member_count",
    "Live cluster members (every role).",
    ["status"],
    multiprocess_mode="livemostrecent",
)
shard_count = Gauge(
    "shard_count", "Shards by lease state.", ["entity_type", "status"], multiprocess_mode="livemostrecent"
)
coordinator_term = Gauge(
    "workflow_coordinator_term", "The acting leader's fencing term.", multiprocess_mode="livemostrecent"
)
sweeper_redrives_total = Counter(
    "workflow_sweeper_redrives_total", "Executions the sweeper woke up again, by reason.", ["reason"]
)
stuck_executions = Gauge(
    "workflow_stuck_executions",
    "Non-terminal executions the last sweep had to re-drive.",
    multiprocess_mode="livemostrecent",
)


def report_cluster(live_members: int, term: int) -> None:
    from apps.cluster.models import ClusterNode, LeaseState, ShardLease

    cluster_member_count.labels("up").set(live_members)
    cluster_member_count.labels("unreachable").set(ClusterNode.objects.filter(state="down").count())
    by_state = dict(
        ShardLease.objects.values("state").annotate(n=Count("shard_id")).values_list("state", "n")
    )
    for state in LeaseState.values:
        shard_count.labels("Workflow", state).set(by_state.get(state, 0))
    coordinator_term.set(term)


def node_name(node_id: str) -> str:
    """``<name>:<role>:<incarnation>`` -> ``<name>``: labels must not grow with every restart."""
    return node_id.split(":")[0]


def rebalanced(move: Move) -> None:
    workflow_rebalance_total.labels(
        str(move.shard_id), node_name(move.from_owner or ""), node_name(move.to_owner)
    ).inc()
