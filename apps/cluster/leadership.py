"""Coordinator leadership: a Redis lease fenced by a PostgreSQL term (invariant 6).

The lease is ``SET key node NX PX ttl``, renewed every third of the TTL by a compare-and-``PEXPIRE``. After
winning it the new leader increments the term in PostgreSQL; every assignment it writes is conditioned on that
term. A leader that has not renewed for two thirds of the TTL stops acting, before its lease can expire and a
standby can take over.
"""

from __future__ import annotations

import logging
import time

from django.db import connection, transaction

from apps.cluster import events
from workflow_engine import redis_client
from workflow_engine.tunables import engine_settings

logger = logging.getLogger(__name__)

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


def bump_term(member_id: str) -> tuple[int, str]:
    """Increment the fencing term; returns (new term, previous leader)."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT leader FROM cluster_coordinatorterm WHERE id = 1 FOR UPDATE")
        row = cur.fetchone()
        cur.execute(
            "INSERT INTO cluster_coordinatorterm (id, term, leader, updated_at) VALUES (1, 1, %s, now()) "
            "ON CONFLICT (id) DO UPDATE SET term = cluster_coordinatorterm.term + 1, "
            "leader = EXCLUDED.leader, "
            "updated_at = now() RETURNING term",
            [member_id],
        )
        term = cur.fetchone()[0]
    return int(term), (row[0] if row else "")


def current_term() -> tuple[int, str]:
    with connection.cursor() as cur:
        cur.execute("SELECT term, leader FROM cluster_coordinatorterm WHERE id = 1")
        row = cur.fetchone()
    return (int(row[0]), row[1]) if row else (0, "")


class Leadership:
    """One coordinator's view of the lease. ``ensure()`` once per tick says whether it may act now."""

    def __init__(self, member_id: str) -> None:
        self.member_id = member_id
        self.term: int | None = None
        self._renewed_at = 0.0

    @property
    def key(self) -> str:
        return redis_client.key("coordinator", "leader")

    @property
    def _ttl(self) -> float:
        return engine_settings.leader_lease_ttl

    def ensure(self) -> bool:
        now = time.monotonic()
        if self.term is None:
            return self._try_acquire(now)
        if now - self._renewed_at >= self._ttl / 3:
            self._renew(now)
        return self.is_acting(time.monotonic())

    def is_acting(self, now: float) -> bool:
        """Leading and inside the safe part of the lease (two thirds of the TTL since the last renewal)."""
        return self.term is not None and now - self._renewed_at < self._ttl * 2 / 3

    def _try_acquire(self, now: float) -> bool:
        won = redis_client.client().set(self.key, self.member_id, nx=True, px=int(self._ttl * 1000))
        if not won:
            return False
        self._renewed_at = now
        self.term, previous = bump_term(self.member_id)
        events.record(
            "leader_changed", old_leader=previous or None, new_leader=self.member_id, term=self.term
        )
        logger.info("became leader", extra={"node_id": self.member_id, "term": self.term})
        return True

    def _renew(self, started: float) -> None:
        try:
            ok = redis_client.client().eval(_RENEW, 1, self.key, self.member_id, int(self._ttl * 1000))
        except Exception:
            logger.warning("lease renewal failed", exc_info=True)
            ok = None
        if ok:
            self._renewed_at = started
        elif ok == 0 or time.monotonic() - self._renewed_at >= self._ttl * 2 / 3:
            self.step_down("lease lost" if ok == 0 else "could not renew in time")

    def step_down(self, reason: str) -> None:
        if self.term is not None:
            logger.warning(
                "stepping down", extra={"node_id": self.member_id, "term": self.term, "reason": reason}
            )
        self.term = None

    def release(self) -> None:
        """On a clean exit: give the lease up so a standby leads at once."""
        if self.term is not None:
            try:
                redis_client.client().eval(_RELEASE, 1, self.key, self.member_id)
            except Exception:
                logger.warning("could not release the lease", exc_info=True)
        self.term = None
