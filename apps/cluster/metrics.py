"""Cluster metrics with the original product's names (origin-product.md §7.1), really updated.

Gauges describing the whole cluster are set by the acting leader only (``livemostrecent``: the last value a
live process wrote wins when the node's exporter merges its processes).
"""

from __future__ import annotations

import collections

from django.db.models import Count
from prometheus_client import Counter, Gauge

from apps.cluster.allocation import Move
from apps.cluster.models import ClusterMember, LeaseState, ShardLease

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
    "shard_count",
    'Shards by lease state; "unassigned": no live owner (none, or a worker that left or died).',
    ["entity_type", "status"],
    multiprocess_mode="livemostrecent",
)
coordinator_term = Gauge(
    "workflow_coordinator_term", "The acting leader's fencing term.", multiprocess_mode="livemostrecent"
)


def report_cluster(live: set[str], term: int) -> None:
    """``shard_count{status="unassigned"}`` counts every shard without a LIVE owner: a lease still naming a
    worker that left or died holds no one's work, and the alert on it must fire when the last worker goes."""
    cluster_member_count.labels("up").set(len(live))
    cluster_member_count.labels("unreachable").set(ClusterMember.objects.filter(state="down").count())
    by_state: collections.Counter[str] = collections.Counter()
    rows = ShardLease.objects.order_by().values("owner", "state").annotate(n=Count("shard_id"))
    for row in rows:  # one row per (owner, state): a few per worker
        by_state[row["state"] if row["owner"] in live else LeaseState.UNASSIGNED] += row["n"]
    for state in LeaseState.values:
        shard_count.labels("Workflow", state).set(by_state.get(state, 0))
    coordinator_term.set(term)


def member_name(member_id: str) -> str:
    """``<name>:<role>:<incarnation>`` -> ``<name>``: labels must not grow with every restart."""
    return member_id.split(":")[0]


def rebalanced(move: Move) -> None:
    workflow_rebalance_total.labels(
        str(move.shard_id), member_name(move.from_owner or ""), member_name(move.to_owner)
    ).inc()
