"""Cluster events: a ``CLUSTER_EVENT: {json}`` log line and a row served by ``GET /api/v1/events``.

Event types and fields are the original's (origin-product.md §7.2): ``member_event``, ``leader_changed``,
``unreachable_member``, ``reachable_member``, ``shard_rebalance``, ``workflow_failover`` ...
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.utils import timezone

from apps.cluster.models import ClusterEvent
from workflow_engine import logs

logger = logging.getLogger("ClusterEvents")
logs.never_limit(logger.name)  # each line is one event: counted by whoever greps them, never folded

_LEVELS = {"INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR, "DEBUG": logging.DEBUG}


def record(event_type: str, *, severity: str = "INFO", workflow_id: str = "", **fields: Any) -> None:
    """Store and log one event. Call inside the transaction of the change it describes, if there is one."""
    now = timezone.now()
    payload = {"timestamp": now.isoformat(), "event_type": event_type, "severity": severity, **fields}
    if workflow_id:
        payload["workflow_id"] = workflow_id
    ClusterEvent.objects.create(
        created_at=now, event_type=event_type, severity=severity, workflow_id=workflow_id, payload=payload
    )
    logger.log(_LEVELS.get(severity, logging.INFO), "CLUSTER_EVENT: %s", json.dumps(payload, default=str))
