"""A worker cut off by a network namespace: its shards move, its writes are fenced, it rejoins afterwards."""

from __future__ import annotations

import contextlib
import random
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from tests.cluster import checker
from tests.cluster.conftest import (
    LIVENESS_TTL,
    Scenario,
    appends_held,
    blocked_backends,
    csv_workload,
    ended,
    poll,
    stalled_backends,
    transaction_ids,
)
from tests.harness import wait_for

pytestmark = pytest.mark.cluster


@dataclass(frozen=True)
class Veth:
    """A network namespace joined to the host by a veth pair: ``host_ip`` outside, ``ns_ip`` inside."""

    namespace: str
    host_if: str
    host_ip: str
    ns_ip: str
    network: str

    @property
    def wrap(self) -> list[str]:
        return ["ip", "netns", "exec", self.namespace]

    def link(self, state: str) -> None:
        ip("link", "set", self.host_if, state)


def ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"ip {' '.join(args)}: {done.stderr.strip()}"


def free_subnet() -> int:
    used = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True, timeout=30).stdout
    for n in random.sample(range(1, 255), 254):
        if f"10.213.{n}." not in used:
            return n
    raise AssertionError("no free 10.213.<n>.0/30 subnet")


@pytest.fixture
def veth() -> Iterator[Veth]:
    if shutil.which("ip") is None:
        pytest.skip("iproute2 (`ip`) is not installed")
    uid = uuid.uuid4().hex[:6]
    n = free_subnet()
    net = Veth(f"wfe-{uid}", f"wfe{uid}h", f"10.213.{n}.1", f"10.213.{n}.2", f"10.213.{n}.0/30")
    inside = f"wfe{uid}n"
    try:
        ip("netns", "add", net.namespace)
        ip("link", "add", net.host_if, "type", "veth", "peer", "name", inside)
        ip("link", "set", inside, "netns", net.namespace)
        ip("addr", "add", f"{net.host_ip}/30", "dev", net.host_if)
        ip("link", "set", net.host_if, "up")
        ip("netns", "exec", net.namespace, "ip", "addr", "add", f"{net.ns_ip}/30", "dev", inside)
        ip("netns", "exec", net.namespace, "ip", "link", "set", inside, "up")
        ip("netns", "exec", net.namespace, "ip", "link", "set", "lo", "up")
        yield net
    finally:
        with contextlib.suppress(AssertionError):
            ip("link", "del", net.host_if)  # takes its peer along
        with contextlib.suppress(AssertionError):
            ip("netns", "del", net.namespace)


def test_a_worker_cut_off_mid_transaction_loses_its_shards_is_fenced_and_rejoins_when_its_link_returns(
    veth: Veth, make_scenario: Callable[..., Scenario]
) -> None:
    """The link goes down while the worker is inside a commit, past its fence (the lease row held FOR SHARE).

    Its shards must move anyway, and its executions complete while it is cut off; that transaction must never
    commit; when the link returns the worker rejoins (ARCHITECTURE.md §4, mechanisms.md §6.2 cases 10, 11).
    """
    s = make_scenario(
        dedicated_pg=True,
        listen=[veth.host_ip],
        trust=[veth.network],
        env={"WORKFLOW_MIN_NR_OF_MEMBERS": "2"},
    )
    assert s.postgres is not None
    s.gateway()
    s.coordinator("c1")
    s.worker("host")
    through_veth = {
        "DATABASE_URL": s.postgres.url("workflow", host=veth.host_ip),
        "REDIS_URL": s.redis_server.url(host=veth.host_ip),
    }
    s.worker("cut", env=through_veth, wrap=veth.wrap)
    load = csv_workload(s, "cut", executions=12, rows=30_000)
    ids = s.wait_ready(["host", "cut"])
    cut = ids["cut"]
    owned = s.owned(cut)
    load.execution_ids = s.execute(load.workflow_ids)
    running_there = "SELECT 1 FROM workflows_execution WHERE shard_id = ANY(%s) AND status = 'running'"
    wait_for("it to run executions of its shards", lambda: s.rows(running_there, [list(owned)]), timeout=30)

    with appends_held(s, list(owned)) as mine:  # its next append waits after its fence; cut off there
        applying = wait_for(
            "its append to wait", lambda: blocked_backends(s, mine, client_addr=veth.ns_ip), timeout=30
        )
        xids = transaction_ids(s, applying)
        veth.link("down")
    down = time.monotonic()
    stalled = stalled_backends(s, client_addr=veth.ns_ip)  # ours and any it was cut off in anyway
    in_flight = s.active_in(list(owned))
    print(f"\nlink down with {in_flight} executions in flight on its shards, inside transaction(s) {xids}")
    try:
        most = poll(
            "all its shards but those its stalled transactions hold to move",
            lambda: len(s.owned(cut)) <= len(stalled),
            timeout=LIVENESS_TTL + 4,
        )
        moved = poll("the cut-off worker's shards to move", lambda: not s.owned(cut), timeout=30)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; sessions meanwhile:\n{s.sessions()}") from None
    print(f"all but {len(stalled)} of its shards moved {most:.2f}s after link down, all {most + moved:.2f}s")
    took = s.wait_finished(load.execution_ids, timeout=60)
    print(f"all executions done {took:.1f}s later, with the worker still cut off")
    leases = s.leases()
    assert all(leases[shard][0] == ids["host"] and leases[shard][1] > epoch for shard, epoch in owned.items())
    assert not s.is_live(cut)

    veth.link("up")
    up = time.monotonic()
    rejoined = poll("the worker's liveness to return", lambda: s.is_live(cut), timeout=60, interval=0.2)
    poll(
        "a reachable_member event",
        lambda: any(e["reachable_node"] == cut for e in s.cluster_events("reachable_member")),
        timeout=15,
    )
    print(f"link up after {up - down:.1f}s down; the worker rejoined {rejoined:.2f}s later")
    outcomes = wait_for("its cut-off transactions to end", lambda: ended(s, xids), timeout=30)
    assert set(outcomes.values()) == {"aborted"}, f"a cut-off owner's transaction committed: {outcomes}"
    checker.check(s.db_url, expected=len(load.execution_ids), sinks=load.sinks)
