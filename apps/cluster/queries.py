"""The cluster's read side: who is up and who leads (Redis), who owns which shard and where an execution lives
(PostgreSQL), and the stored ``CLUSTER_EVENT`` records.

Each function answers one route with plain dicts in a fixed number of queries: counts are one ``GROUP BY``
each, so the cost does not grow with the number of shards, members or executions. Lease rows are read with
all their columns and fields are looked up defensively, so a lease that gains hand-off columns or states
does not break these routes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from apps.cluster import hooks, leadership, membership
from apps.cluster.identity import role_of
from apps.cluster.models import ClusterEvent, ClusterMember, ShardLease
from workflow_engine import redis_client
from workflow_engine.times import iso
from workflow_engine.tunables import engine_settings

CLUSTER_NAME = "workflow-engine"
MEMBER_STATUSES = ("up", "down", "left")
UNREACHABLE_LISTED = 100


def leader() -> str | None:
    """The member id holding the coordinator lease, or ``None`` while no coordinator leads."""
    raw = redis_client.client().get(redis_client.key("coordinator", "leader"))
    return raw.decode() if isinstance(raw, bytes) else raw


def _owners() -> dict[int, str]:
    return {s: o for s, o in ShardLease.objects.exclude(owner=None).values_list("shard_id", "owner") if o}


def _owned_counts() -> Counter[str]:
    rows = ShardLease.objects.exclude(owner=None).order_by().values("owner").annotate(n=Count("*"))
    return Counter({str(r["owner"]): r["n"] for r in rows})


def leases_of(shard_ids: Iterable[int]) -> dict[int, tuple[str | None, int]]:
    rows = ShardLease.objects.filter(shard_id__in=list(shard_ids)).values_list("shard_id", "owner", "epoch")
    return {s: (o, int(e or 0)) for s, o, e in rows}


# --- stats, shards, members ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Health:
    """Whether work can move, and why not: shards count only when a live worker owns them."""

    status: str  # "Up", "Degraded" or "Down"
    reasons: list[str]
    live_owned: int  # shards owned by a live member


def health(
    total: int, owners: Mapping[int, str], members: list[membership.Member], leader_id: str | None
) -> Health:
    """ "Down": no shard has a live owner, so no execution moves (the last worker left or died, or none has
    joined); "Degraded": some shards have none, or no coordinator leads (nothing is allocated, failed over,
    fired or swept); "Up" otherwise. A lease keeps naming a worker that left or died until the leader moves
    it to a live one, so the owner's liveness decides, not the lease."""
    live = {m.member_id for m in members}
    live_owned = sum(1 for owner in owners.values() if owner in live)
    stale = len(owners) - live_owned
    unassigned = max(0, total - len(owners))
    reasons = []
    if live_owned < total:
        if not any(m.role == "worker" for m in members):
            lead = "no live worker"
        elif live_owned == 0:
            lead = "no shard has a live owner"
        else:
            lead = f"{total - live_owned} of {total} shards have no live owner"
        detail = [f"{stale} shards owned by members that are not up"] if stale else []
        detail += [f"{unassigned} shards unassigned"] if unassigned else []
        reasons.append(f"{lead}: {', '.join(detail)}" if detail else lead)
    if not leader_id:
        reasons.append("no coordinator leads: shards are not allocated or failed over, timers do not fire")
    if live_owned == 0 and total > 0:
        return Health("Down", reasons, live_owned)
    return Health("Degraded" if reasons else "Up", reasons, live_owned)


def cluster_stats(self_address: str, self_roles: list[str], cluster_id: str | None = None) -> dict[str, Any]:
    """``GET /api/v1/cluster/stats``: live members (Redis) with the shards and active executions each owns,
    and whether work can move (``health``).

    Three queries whatever the size of the cluster: the owned leases, one ``GROUP BY`` of the active
    executions per shard, and the term.
    """
    leader_id = leader()
    members = sorted(membership.live_members(), key=lambda m: m.member_id)
    owners = _owners()
    active = hooks.shard_load()
    shards = Counter(owners.values())
    entities: Counter[str] = Counter()
    for shard_id, n in active.items():
        if shard_id in owners:
            entities[owners[shard_id]] += n
    total = engine_settings.number_of_shards
    state = health(total, owners, members, leader_id)
    return {
        "clusterName": CLUSTER_NAME,
        "clusterId": cluster_id,
        "status": state.status,
        "reasons": state.reasons,
        "leader": leader_id,
        "term": leadership.current_term()[0],
        "members": len(members),
        "nodeCount": len({m.member_id.split(":")[0] for m in members}),
        "selfAddress": self_address,
        "selfRoles": self_roles,
        "memberList": [
            {
                "address": m.member_id,
                "host": m.host,
                "status": "Up",
                "roles": [m.role],
                "shards": shards[m.member_id],
                "entities": entities[m.member_id],
            }
            for m in members
        ],
        "sharding": {
            "totalShards": total,
            "activeShards": state.live_owned,
            "totalEntities": sum(active.values()),
        },
    }


def _shard(shard_id: int, lease: Mapping[str, Any] | None, entity_count: int) -> dict[str, Any]:
    lease = lease or {}
    owner = lease.get("owner")
    return {
        "shardId": shard_id,
        "owner": owner,
        "location": owner,
        "epoch": int(lease.get("epoch") or 0),
        "term": int(lease.get("term") or 0),
        "state": lease.get("state") or "unassigned",
        "updatedAt": iso(lease.get("updated_at")),
        "handoffTo": lease.get("handoff_to") or None,
        "previousOwner": lease.get("previous_owner") or None,
        "movedReason": lease.get("moved_reason") or None,
        "movedAt": iso(lease.get("moved_at")),
        "entityCount": entity_count,
    }


def cluster_shards() -> dict[str, Any]:
    """``GET /api/v1/cluster/shards``: every shard's lease and its active executions (two queries)."""
    leases = {row["shard_id"]: row for row in ShardLease.objects.values()}
    counts = hooks.shard_load()
    shards = [_shard(s, leases.get(s), counts.get(s, 0)) for s in range(engine_settings.number_of_shards)]
    return {
        "entityType": "Workflow",
        "totalShards": engine_settings.number_of_shards,
        "activeShards": sum(1 for s in shards if s["owner"]),
        "shards": shards,
    }


def _member_status(member: ClusterMember, live: set[str]) -> str:
    """Redis decides: a row still marked "up" whose liveness key expired is down (not yet noticed)."""
    if member.member_id in live:
        return "up"
    return "down" if member.state in ("up", "down") else member.state


def _with_status(
    rows: QuerySet[ClusterMember], status: str | None, live: set[str]
) -> QuerySet[ClusterMember]:
    """The same rule as ``_member_status``, as a filter, so that ``limit`` applies after it."""
    if status == "up":
        return rows.filter(pk__in=live)
    if status == "down":
        return rows.exclude(pk__in=live).filter(state__in=("up", "down"))
    if status is not None:
        return rows.exclude(pk__in=live).filter(state=status)
    return rows


def cluster_members(*, status: str | None, limit: int) -> dict[str, Any]:
    """``GET /api/v1/cluster/members``: every member row, newest first, with its liveness from Redis."""
    live = {m.member_id for m in membership.live_members()}
    rows = _with_status(ClusterMember.objects.order_by("-started_at", "member_id"), status, live)
    owned = _owned_counts()
    members = [
        {
            "nodeId": member.member_id,
            "name": member.name,
            "role": role_of(member.member_id),
            "host": member.host,
            "pid": member.pid,
            "status": _member_status(member, live),
            "startedAt": iso(member.started_at),
            "lastSeen": iso(member.last_seen),
            "shards": owned[member.member_id],
        }
        for member in rows[:limit]
    ]
    return {"members": members, "count": len(members)}


# --- cluster events -----------------------------------------------------------------------------------------


def _event(
    event_id: int, created_at: datetime, event_type: str, severity: str, payload: Any
) -> dict[str, Any]:
    """The stored ``CLUSTER_EVENT`` JSON plus its ``id``; the columns fill in what an odd payload lacks."""
    body: dict[str, Any] = {"timestamp": iso(created_at), "event_type": event_type, "severity": severity}
    if isinstance(payload, Mapping):
        body.update(payload)
    body["id"] = event_id
    return body


def cluster_events(
    *, event_type: str | None = None, workflow_id: str | None = None, limit: int, since_id: int | None = None
) -> dict[str, Any]:
    """The newest ``limit`` events, newest first. With ``since_id``: the *oldest* ``limit`` events after it
    (still answered newest first), so that a client polling with the highest id it has seen misses none."""
    rows = ClusterEvent.objects.all()
    if event_type is not None:
        rows = rows.filter(event_type=event_type)  # index cluster_event_type_recent
    if workflow_id is not None:
        rows = rows.filter(workflow_id=workflow_id)
    columns = ("id", "created_at", "event_type", "severity", "payload")
    if since_id is None:
        picked = list(rows.order_by("-id").values_list(*columns)[:limit])
    else:
        picked = list(rows.filter(id__gt=since_id).order_by("id").values_list(*columns)[:limit])[::-1]
    events = [_event(*row) for row in picked]
    return {"events": events, "count": len(events)}


def event_stats() -> dict[str, Any]:
    """Counts by type and severity and over the last 24 hours, in one ``GROUP BY``."""
    since = timezone.now() - timedelta(hours=24)
    rows = (
        ClusterEvent.objects.order_by()
        .values("event_type", "severity")
        .annotate(n=Count("*"), recent=Count("id", filter=Q(created_at__gte=since)))
    )
    by_type: Counter[str] = Counter()
    by_severity: Counter[str] = Counter()
    recent = 0
    for row in rows:
        by_type[row["event_type"]] += row["n"]
        by_severity[row["severity"]] += row["n"]
        recent += row["recent"]
    return {
        "total": sum(by_type.values()),
        "byType": dict(sorted(by_type.items())),
        "bySeverity": dict(sorted(by_severity.items())),
        "last24h": recent,
    }


# --- the monitoring text ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterStatus:
    """What ``GET /monitoring/cluster/status`` prints."""

    self_name: str
    self_roles: list[str]
    leader: str | None
    members: list[membership.Member]
    unreachable: list[str]  # the newest UNREACHABLE_LISTED of them
    unreachable_count: int
    health: Health
    total_shards: int


def cluster_status(self_name: str, self_roles: list[str]) -> ClusterStatus:
    """Live members from Redis; unreachable members are the rows the leader marked "down"."""
    down = ClusterMember.objects.filter(state="down")
    leader_id = leader()
    members = sorted(membership.live_members(), key=lambda m: m.member_id)
    total = engine_settings.number_of_shards
    return ClusterStatus(
        self_name=self_name,
        self_roles=self_roles,
        leader=leader_id,
        members=members,
        unreachable=list(
            down.order_by("-last_seen").values_list("member_id", flat=True)[:UNREACHABLE_LISTED]
        ),
        unreachable_count=down.count(),
        health=health(total, _owners(), members, leader_id),
        total_shards=total,
    )
