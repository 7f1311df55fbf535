"""Liveness: each member refreshes a Redis key with a TTL, plus its ``cluster_clustermember`` row.

The leader treats a member whose key has expired as gone. Only the Redis server's TTL decides, so no two
hosts' clocks are ever compared.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass

from django.utils import timezone

from apps.cluster.identity import role_of
from apps.cluster.models import ClusterMember
from workflow_engine import redis_client
from workflow_engine.tunables import engine_settings


@dataclass(frozen=True)
class Member:
    member_id: str
    role: str
    host: str
    pid: int


def _member_key(member_id: str) -> str:
    return redis_client.key("member", member_id)


def beat(member_id: str, roles: list[str]) -> None:
    """Refresh the member row, then the liveness key. Raises if PostgreSQL or Redis fails.

    PostgreSQL first: a member that cannot reach the database stops renewing its liveness, so the leader
    moves its shards to a worker that can make progress (mechanisms.md §6.1 rule 19). The row's state is
    the leader's to change (up, down, left); a beat only refreshes ``last_seen``.
    """
    now = timezone.now()
    if not ClusterMember.objects.filter(pk=member_id).update(last_seen=now):
        ClusterMember.objects.get_or_create(
            pk=member_id,
            defaults={
                "name": member_id.split(":")[0],
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "roles": roles,
                "state": "up",
                "started_at": now,
                "last_seen": now,
            },
        )
    ttl_ms = int(engine_settings.liveness_ttl * 1000)
    body = json.dumps(
        {"node_id": member_id, "host": socket.gethostname(), "pid": os.getpid(), "roles": roles}
    )
    redis_client.client().set(_member_key(member_id), body, px=ttl_ms)


def leave(member_id: str) -> None:
    """A clean exit: drop the liveness key so the leader moves our shards at once."""
    redis_client.client().delete(_member_key(member_id))
    ClusterMember.objects.filter(pk=member_id).update(state="left", last_seen=timezone.now())


def live_members() -> list[Member]:
    """Members whose liveness key has not expired."""
    client = redis_client.client()
    keys = list(client.scan_iter(match=_member_key("*"), count=500))
    members = []
    for raw in client.mget(keys) if keys else []:
        if raw is None:
            continue
        body = json.loads(raw)
        members.append(Member(body["node_id"], role_of(body["node_id"]), body["host"], body["pid"]))
    return members


def live_workers() -> list[str]:
    return sorted(m.member_id for m in live_members() if m.role == "worker")
