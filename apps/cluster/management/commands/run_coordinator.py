"""``manage.py run_coordinator``: compete for leadership; while leading, track members and allocate shards.

Each loop is one ``Coordinator.tick()``; SIGTERM or SIGINT ends the loop after the current tick and gives the
lease up, so a standby leads at once.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import Any

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from apps.cluster import identity, membership
from apps.cluster.coordinator import Coordinator
from apps.cluster.startup import StartRefused, refused
from workflow_engine.tunables import engine_settings

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run a coordinator: leader election, membership, shard allocation."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--tick", type=float, default=None, help="seconds between rounds (default 0.25)")

    def handle(self, *args: Any, **options: Any) -> None:
        os.environ.setdefault("WORKFLOW_PROCESS_ROLE", "coordinator")
        _ = engine_settings.number_of_shards  # validate the configuration before anything else
        member_id = identity.new_member_id("coordinator")
        identity.adopt(member_id)
        self.stopping = False
        self.refusal: StartRefused | None = None
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        coordinator = Coordinator(member_id)
        tick = options["tick"] or min(0.25, engine_settings.heartbeat_interval)
        logger.info("coordinator started", extra={"node_id": member_id})
        while not self.stopping:
            self._tick(coordinator)
            if not self.stopping:
                time.sleep(tick)
        self._leave(coordinator)
        if self.refusal is not None:
            raise refused(self.refusal, "coordinator")

    def _tick(self, coordinator: Coordinator) -> None:
        try:
            coordinator.tick()
        except StartRefused as exc:
            # a configuration error: exit (EXIT_CONFIG) rather than retry, naming what to change
            self.refusal = exc
            self.stopping = True
        except Exception:
            # PostgreSQL or Redis unreachable: keep trying; leadership lapses by itself if it lasts
            logger.warning("coordinator round failed", exc_info=True)
            close_old_connections()

    def _stop(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def _leave(self, coordinator: Coordinator) -> None:
        coordinator.leadership.release()
        try:
            membership.leave(coordinator.member_id)
        except Exception:
            logger.warning("could not leave cleanly", exc_info=True)
        logger.info("coordinator stopped", extra={"node_id": coordinator.member_id})
