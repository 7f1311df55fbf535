"""The fault campaign's high-availability topology (``bench/chaos.py --ha``) and its two failovers.

Redis runs under Sentinel (``devservices.sentinel``: a master, a replica, three sentinels) and every process
gets ``REDIS_URL`` in the ``sentinel://`` form. PostgreSQL gets a synchronous streaming standby
(``devservices.replica``), and every process a multi-host ``DATABASE_URL`` over both servers with
``target_session_attrs=read-write``. Synchronous, so an acknowledged commit survives the promotion and the
checker may demand that nothing is lost (with an asynchronous standby the last commits may be; see
docs/reliability.md).

- ``sentinel_failover``: SIGKILL the Redis master; the sentinels promote the replica; the killed server is
  started again and the sentinels make it the new master's replica, ready for the next failover.
- ``promote_replica``: SIGKILL the PostgreSQL primary and promote the standby. There is no standby after it
  (rebuilding one is not done here), so the schedule holds at most one promotion per campaign, and a later
  ``restart_postgres`` restarts the promoted server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devservices import PostgresServer, free_port
from devservices.replica import make_replica, make_synchronous, promote
from devservices.sentinel import SentinelCluster

STANDBY = "chaos_standby"


class Ha:
    """The sentinels and the standby of one campaign, and the URLs that reach through a failover."""

    def __init__(self, env: Any) -> None:
        self.env = env
        self.sentinels = SentinelCluster(
            env.workdir / "sentinel", down_after_ms=500, failover_timeout_ms=2000
        )
        self.primary_port = env.pg.port
        self.standby_port = free_port()
        self.standby: PostgresServer | None = None

    def pg_url(self, database: str) -> str:
        """Both servers, the writable one wins: the same URL before and after a promotion."""
        hosts = f"127.0.0.1:{self.primary_port},127.0.0.1:{self.standby_port}"
        return f"postgresql://postgres@{hosts}/{database}?target_session_attrs=read-write"

    def configure(self) -> None:
        """Start the sentinels, and point the campaign's processes at them and at both PostgreSQL servers
        (before ``BenchEnv`` starts: it migrates through ``DATABASE_URL``)."""
        self.sentinels.start()
        self.env.extra_env["REDIS_URL"] = self.sentinels.url()
        self.env.extra_env["DATABASE_URL"] = self.pg_url("bench")

    def start_standby(self, workdir: Path) -> None:
        self.standby = make_replica(self.env.pg, workdir / "standby", self.standby_port, name=STANDBY)
        make_synchronous(self.env.pg, STANDBY)

    def stop(self) -> None:
        if self.standby is not None:
            self.standby.stop()
        self.sentinels.stop()

    def promote_standby(self) -> None:
        """SIGKILL the primary, promote the standby; ``env.pg`` is the promoted server from then on."""
        if self.standby is None:
            raise RuntimeError("no standby left to promote (at most one promotion per campaign)")
        self.env.pg.kill()
        promote(self.standby)
        self.env.pg, self.standby = self.standby, None

    def failover_redis(self) -> tuple[int, int]:
        """SIGKILL the Redis master and wait for the promotion; then bring the killed server back as the new
        master's replica. The old and the new master's ports."""
        old = self.sentinels.kill_master()
        new = self.sentinels.wait_failover(old)
        node = next(n for n in self.sentinels.data if n.port == old)
        node.start()
        self.sentinels.wait_synced(old)
        return old, new
