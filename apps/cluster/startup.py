"""What a process checks before it takes part in its cluster, and keeps checking while it runs.

- **The cluster's id** (``ClusterIdentity``, written by the first migration) claims the Redis the process is
  given (``wfe:cluster`` under ``REDIS_KEY_PREFIX``). A Redis claimed by another cluster is refused: two
  clusters on one Redis consume each other's shard queues, apply the other's wake-ups against their own
  database and leave the other's executions waiting for its sweeper.
- **The number of shards** (``WORKFLOW_NUMBER_OF_SHARDS``) must be the one the cluster's shard leases were
  made with: every execution keeps the shard it was given, so a changed count would route new executions
  to shards nobody owns, or leave old ones in shards that no longer exist.

A refusal is a configuration error that a restart does not cure: the process logs one line naming what to
change and exits with ``EXIT_CONFIG`` (78, sysexits' ``EX_CONFIG``). PostgreSQL or Redis being unreachable is
not a refusal: the checks run again at the next tick or heartbeat.
"""

from __future__ import annotations

import logging
import uuid
from functools import lru_cache

from django.conf import settings
from django.db import connections

from apps.cluster.models import ClusterIdentity, ShardLease
from workflow_engine import redis_client
from workflow_engine.tunables import engine_settings

logger = logging.getLogger(__name__)

EXIT_CONFIG = 78
SHARD_COUNT_PROCEDURE = 'docs/operations.md, "Changing the number of shards"'


class StartRefused(Exception):
    """A configuration error an operator must fix; restarting the process does not help."""

    code = "start_refused"


class RedisOfAnotherCluster(StartRefused):
    code = "redis_of_another_cluster"


class ShardCountChanged(StartRefused):
    code = "shard_count_changed"


def cluster_id() -> str:
    """This cluster's id from PostgreSQL. A database that lost the row (restored from a backup made before
    it existed) gets a new id: it is then a new cluster."""
    identity, _ = ClusterIdentity.objects.get_or_create(pk=1, defaults={"cluster_id": str(uuid.uuid4())})
    return identity.cluster_id


@lru_cache(maxsize=1)
def known_cluster_id() -> str:
    """``cluster_id()`` read once per process, for answers that show it (a database keeps its id)."""
    return cluster_id()


def check_shard_count() -> None:
    stored = ShardLease.objects.count()
    asked = engine_settings.number_of_shards
    if stored and stored != asked:
        raise ShardCountChanged(
            f"WORKFLOW_NUMBER_OF_SHARDS is {asked}, but this cluster's database was set up with {stored} "
            f"shards (table cluster_shardlease). The number of shards is fixed for the life of a cluster: "
            f"every execution keeps the shard it was given. Set WORKFLOW_NUMBER_OF_SHARDS={stored} again on "
            f"every node, or move to a new cluster with the count you want ({SHARD_COUNT_PROCEDURE})."
        )


def check_redis(own_id: str) -> None:
    held = redis_client.claim(own_id)
    if held != own_id:
        claim_key = redis_client.key(redis_client.CLAIM)
        raise RedisOfAnotherCluster(
            f"The Redis at REDIS_URL={redis_client.safe_url()} belongs to cluster {held} (key {claim_key}), "
            f"not to this cluster {own_id} (its id is in PostgreSQL, table cluster_clusteridentity). Two "
            f"clusters on one Redis take each other's wake-ups. Give this cluster a Redis of its own: "
            f"another database number in REDIS_URL (redis://host:6379/1), another Redis instance, or another "
            f"REDIS_KEY_PREFIX (now {redis_client.key('')!r}). If cluster {held} no longer exists, release "
            f"its claim: redis-cli -u <REDIS_URL> DEL {claim_key}"
        )


class ClusterCheck:
    """One process's checks: the cluster id and the shard count once, the Redis claim at every ``verify``
    (a Redis wiped and claimed by another cluster while we run is caught at the next tick or heartbeat)."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.cluster_id: str | None = None

    def verify(self) -> str:
        """Raises ``StartRefused``; PostgreSQL and Redis errors propagate (try again later)."""
        if self.cluster_id is None:
            own_id = cluster_id()
            check_shard_count()
            check_redis(own_id)
            self.cluster_id = own_id
            logger.info(
                "cluster checked",
                extra={
                    "cluster_id": own_id,
                    "role": self.role,
                    "shards": engine_settings.number_of_shards,
                    "node_name": settings.WORKFLOW_NODE_NAME,
                },
            )
            return own_id
        check_redis(self.cluster_id)
        return self.cluster_id


def refused(exc: StartRefused, role: str) -> SystemExit:
    """Log the refusal as one line and return the exit to raise."""
    logger.critical(str(exc), extra={"error": exc.code, "role": role, "exit_code": EXIT_CONFIG})
    return SystemExit(EXIT_CONFIG)


def check_gateway() -> None:
    """At gateway start (``workflow_engine/wsgi.py``, in each gunicorn worker): a gateway publishes wake-ups
    too, so it refuses what a worker refuses. Unlike a worker it starts with PostgreSQL or Redis down
    (``/health/ready`` says so), so only a definite answer refuses. Raising makes gunicorn stop with "Worker
    failed to boot" rather than restart the worker forever."""
    try:
        ClusterCheck("api-gateway").verify()
    except StartRefused as exc:
        logger.critical(str(exc), extra={"error": exc.code, "role": "api-gateway"})
        raise
    except Exception:
        logger.warning("could not check the cluster at start", exc_info=True)
    finally:
        connections.close_all()  # opened by this thread only, which serves no request
