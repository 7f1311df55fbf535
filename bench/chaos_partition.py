"""The fault campaign's network partition (``bench/chaos.py --netns``): one worker in a network namespace.

As ``tests/cluster/test_partition.py``: a namespace joined to the host by a veth pair; PostgreSQL and Redis
also listen on the host end, and the worker inside reaches them there. ``partition_worker`` sets the host
end down for a while (past the liveness TTL: the worker's shards move and its writes are fenced), then up
again (it rejoins). Needs root and iproute2 (``ip``).
"""

from __future__ import annotations

import contextlib
import random
import shutil
import subprocess
import uuid
from typing import Any

import psycopg

from devservices import PostgresServer, RedisServer

WORKER = "w2"  # the worker started inside the namespace


def ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def free_subnet() -> int:
    used = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True, timeout=30).stdout
    for n in random.sample(range(1, 255), 254):  # not the campaign's rng: the schedule must not depend on it
        if f"10.214.{n}." not in used:
            return n
    raise RuntimeError("no free 10.214.<n>.0/30 subnet")


class Netns:
    """The namespace, its veth pair, and the servers listening on the host end."""

    def __init__(self) -> None:
        if shutil.which("ip") is None:
            raise SystemExit("--netns needs iproute2 (`ip`) and root")
        uid = uuid.uuid4().hex[:6]
        n = free_subnet()
        self.namespace, self.host_if, self.inside = f"wfc-{uid}", f"wfc{uid}h", f"wfc{uid}n"
        self.host_ip, self.ns_ip, self.network = f"10.214.{n}.1", f"10.214.{n}.2", f"10.214.{n}.0/30"

    @property
    def wrap(self) -> list[str]:
        return ["ip", "netns", "exec", self.namespace]

    def create(self) -> None:
        ip("netns", "add", self.namespace)
        ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.inside)
        ip("link", "set", self.inside, "netns", self.namespace)
        ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
        ip("link", "set", self.host_if, "up")
        ip("netns", "exec", self.namespace, "ip", "addr", "add", f"{self.ns_ip}/30", "dev", self.inside)
        ip("netns", "exec", self.namespace, "ip", "link", "set", self.inside, "up")
        ip("netns", "exec", self.namespace, "ip", "link", "set", "lo", "up")

    def delete(self) -> None:
        with contextlib.suppress(RuntimeError):
            ip("link", "del", self.host_if)  # takes its peer along
        with contextlib.suppress(RuntimeError):
            ip("netns", "del", self.namespace)

    def link(self, state: str) -> None:
        ip("link", "set", self.host_if, state)

    def listen_too(self, env: Any) -> None:
        """Replace the (not yet started) servers of ``env`` by ones that also listen on the host end."""
        addresses = ("127.0.0.1", self.host_ip)
        env.pg = PostgresServer(env.pg.data_dir, env.pg.port, listen_addresses=addresses)
        env.redis = RedisServer(env.redis.data_dir, env.redis.port, listen_addresses=addresses)

    def trust(self, pg: PostgresServer) -> None:
        """Let PostgreSQL accept the namespace's clients (pg_hba.conf), once it runs."""
        with open(pg.pgdata / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {self.network} trust\n")
        with psycopg.connect(pg.url(), autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")

    def worker_env(self, env: Any) -> dict[str, str]:
        """The inside worker's URLs: the servers through the veth."""
        return {
            "DATABASE_URL": env.pg.url("bench", host=self.host_ip),
            "REDIS_URL": env.redis.url(0, host=self.host_ip),
            "WORKFLOW_CONNECTION_WAREHOUSE": env.pg.url("warehouse", host=self.host_ip),
        }
