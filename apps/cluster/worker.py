"""The worker's part in the cluster, as a Celery consumer bootstep.

In the worker's main process, on the consumer's event loop (``c.timer``), so it never races the consumer:

- **heartbeat** every ``heartbeat-interval``: the Redis liveness key and the ``cluster_clustermember`` row;
- **self-fencing**: when no heartbeat has succeeded for three quarters of ``liveness-ttl``, the worker stops
  consuming its shard queues, because the leader may already be moving them;
- **reconcile** every ``reconcile-interval`` (sooner after a Redis pub/sub nudge): read the shards this worker
  owns from ``shard_lease``, add or cancel the ``wf.shard.<n>`` consumers locally, and recover shards it has
  just received. No remote-control broadcast is relied on (ARCHITECTURE.md §4).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from celery import Celery, bootsteps
from celery.signals import worker_init, worker_process_init, worker_process_shutdown, worker_shutdown
from celery.worker import state
from django.db import close_old_connections, connections
from prometheus_client import multiprocess

from apps.cluster import hooks, membership
from apps.cluster.identity import adopt, current, new_member_id
from apps.cluster.models import ShardLease
from apps.cluster.startup import ClusterCheck, StartRefused, refused
from workflow_engine import messaging, redis_client
from workflow_engine.tunables import engine_settings

logger = logging.getLogger(__name__)

# the main process's checks (its Redis belongs to its cluster, the shard count is the cluster's): at
# ``worker_init``, before the pool forks and anything is consumed, then at every heartbeat
_check = ClusterCheck("worker")


class ShardConsumer(bootsteps.StartStopStep):
    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.consuming: dict[int, int] = {}  # shard -> epoch we recovered it at
        self.reported: dict[int, int] = {}  # shard -> epoch whose failover we reported
        self.last_beat = time.monotonic()
        self.fenced = False
        self.refusal: StartRefused | None = None
        self.nudged = threading.Event()
        self._timers: list[Any] = []

    def start(self, c: Any) -> None:
        self.member_id = current()
        self.consumer = c
        self._timers = [
            c.timer.call_repeatedly(engine_settings.heartbeat_interval, self.heartbeat),
            c.timer.call_repeatedly(min(0.2, engine_settings.reconcile_interval), self.maybe_reconcile),
        ]
        self._last_reconcile = 0.0
        threading.Thread(target=self._listen_for_nudges, daemon=True, name="shard-nudges").start()
        self.heartbeat()
        self.reconcile()

    def stop(self, c: Any) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers = []

    def shutdown(self, c: Any) -> None:
        self.stop(c)
        if self.member_id:
            try:
                membership.leave(self.member_id)
            except Exception:
                logger.warning("could not leave the cluster cleanly", exc_info=True)

    def heartbeat(self) -> None:
        try:
            # a connection broken by a partition must be replaced here: a fenced worker does not reconcile,
            # which is the only other place this thread would drop it
            close_old_connections()
            _check.verify()
            membership.beat(self.member_id or "", ["worker"])
            self.last_beat = time.monotonic()
            if self.fenced:
                logger.warning("liveness restored; resuming", extra={"node_id": self.member_id})
                self.fenced = False
        except StartRefused as exc:
            # our Redis now belongs to another cluster (it was wiped and claimed): stop beating, so that
            # we fence ourselves and our leader moves our shards; said once, it is not going to change
            if self.refusal is None:
                logger.critical(str(exc), extra={"node_id": self.member_id, "error": exc.code})
            self.refusal = exc
        except Exception:
            logger.warning("heartbeat failed", exc_info=True, extra={"node_id": self.member_id})
        if not self.fenced and time.monotonic() - self.last_beat > engine_settings.liveness_ttl * 0.75:
            self._self_fence()

    def _self_fence(self) -> None:
        logger.error("cannot renew liveness; no longer taking work", extra={"node_id": self.member_id})
        self.fenced = True
        for shard in list(self.consuming):
            self._cancel(shard)

    def maybe_reconcile(self) -> None:
        due = time.monotonic() - self._last_reconcile >= engine_settings.reconcile_interval
        if due or self.nudged.is_set():
            self.nudged.clear()
            self.reconcile()

    def reconcile(self) -> None:
        self._last_reconcile = time.monotonic()
        if self.fenced:
            return
        try:
            owned = self._owned()
        except Exception:
            logger.warning("could not read the shard assignment", exc_info=True)
            return
        assigned = {s: e for s, (e, state) in owned.items() if state == "assigned"}
        for shard in [s for s in self.consuming if s not in assigned]:
            self._cancel(shard)
        self._hand_off({s: e for s, (e, state) in owned.items() if state == "handoff"})
        new = {s: e for s, e in assigned.items() if self.consuming.get(s) != e}
        for shard, epoch in new.items():
            self._add(shard, epoch)
        if new:
            self._recover(new)

    def _owned(self) -> dict[int, tuple[int, str]]:
        close_old_connections()
        rows = ShardLease.objects.filter(owner=self.member_id).values_list("shard_id", "epoch", "state")
        return {shard: (epoch, state) for shard, epoch, state in rows}

    def _hand_off(self, shards: dict[int, int]) -> None:
        """Planned moves: stop consuming, and release once nothing of the shard is in flight here."""
        for shard, epoch in shards.items():
            if self._in_flight(shard):
                continue  # the leader waits for us, up to handoff-timeout
            released = ShardLease.objects.filter(
                shard_id=shard, owner=self.member_id, epoch=epoch, state="handoff"
            ).update(state="released")
            if released:
                logger.info("released shard", extra={"node_id": self.member_id, "shard": shard})

    def _in_flight(self, shard: int) -> bool:
        queue = messaging.shard_queue(shard)
        requests = list(state.active_requests) + list(state.reserved_requests)
        return any((r.delivery_info or {}).get("routing_key") == queue for r in requests)

    def _add(self, shard: int, epoch: int) -> None:
        if shard not in self.consuming:
            self.consumer.add_task_queue(messaging.shard_queue(shard))
        self.consuming[shard] = epoch

    def _cancel(self, shard: int) -> None:
        self.consumer.cancel_task_queue(messaging.shard_queue(shard))
        self.consuming.pop(shard, None)

    def _recover(self, epochs: dict[int, int]) -> None:
        shards = sorted(epochs)
        report = [s for s in shards if self.reported.get(s) != epochs[s]]
        try:
            count = hooks.shards_acquired(shards, self.member_id or "", report)
            self.reported.update({s: epochs[s] for s in report})
            logger.info(
                "took shards", extra={"node_id": self.member_id, "shards": shards, "executions": count}
            )
        except Exception:
            logger.warning("recovery failed; will retry", exc_info=True)
            for shard in shards:
                self.consuming[shard] = -1  # differs from any epoch: recovered again next round

    def _listen_for_nudges(self) -> None:
        while True:
            try:
                pubsub = redis_client.client().pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(messaging.nudge_channel())
                while True:
                    if pubsub.get_message(timeout=1.0) is not None:
                        self.nudged.set()
            except Exception:
                time.sleep(1.0)


def _adopt_identity(**kwargs: Any) -> None:
    """In the main process, before the pool forks: children inherit the member id. A worker whose Redis
    belongs to another cluster, or whose shard count is not the cluster's, exits here (``EXIT_CONFIG``):
    Celery's signal catches exceptions, not ``SystemExit``."""
    try:
        _check.verify()
    except StartRefused as exc:
        raise refused(exc, "worker") from None
    except Exception:
        # PostgreSQL or Redis not reachable yet: checked again at every heartbeat, before the first beat
        logger.warning("could not check the cluster at start; checking at the first heartbeat", exc_info=True)
    if current() is None:
        adopt(new_member_id("worker"))


def _child_init(**kwargs: Any) -> None:
    """A forked child must not reuse the parent's database connections."""
    for conn in connections.all(initialized_only=True):
        conn.close()


def _child_exit(pid: int | None = None, **kwargs: Any) -> None:
    """Drop an exiting child's live gauges from the node's merged metrics."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid or os.getpid())


def _on_shutdown(**kwargs: Any) -> None:
    logger.info("worker shutting down")


def install(app: Celery) -> None:
    app.steps["consumer"].add(ShardConsumer)
    worker_init.connect(_adopt_identity, weak=False)
    worker_process_init.connect(_child_init, weak=False)
    worker_process_shutdown.connect(_child_exit, weak=False)
    worker_shutdown.connect(_on_shutdown, weak=False)
