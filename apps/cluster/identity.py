"""This process's identity in the cluster: ``<node name>:<role>:<incarnation>``.

The incarnation is new at every start, so a restarted worker is a new member and its predecessor's shards
move only when the predecessor's liveness expires. A Celery worker sets ``WORKFLOW_NODE_ID`` in its main
process before the pool forks, so its children carry the same identity.
"""

from __future__ import annotations

import os
import uuid

from django.conf import settings

ENV = "WORKFLOW_NODE_ID"


def new_member_id(role: str) -> str:
    return f"{settings.WORKFLOW_NODE_NAME}:{role}:{uuid.uuid4().hex[:12]}"


def current() -> str | None:
    return os.environ.get(ENV) or None


def adopt(member_id: str) -> None:
    os.environ[ENV] = member_id


def role_of(member_id: str) -> str:
    parts = member_id.split(":")
    return parts[-2] if len(parts) >= 3 else "unknown"
