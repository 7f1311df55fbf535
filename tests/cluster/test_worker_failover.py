"""Workers die or hang mid-flight: their shards move, the fence holds, and every execution completes once."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable

import pytest

from tests.cluster import checker
from tests.cluster.conftest import (
    LIVENESS_TTL,
    Scenario,
    appends_held,
    blocked_backends,
    busiest,
    csv_workload,
    ended,
    executions_held,
    poll,
    stalled_backends,
    transaction_ids,
)
from tests.harness import Proc, wait_for

pytestmark = pytest.mark.cluster


def first_event_after(s: Scenario, shards: dict[int, int], since: float) -> float | None:
    """Seconds from ``since`` (wall clock) to the first event written at a newer epoch in ``shards``."""
    rows = s.rows(
        "SELECT min(ev.created_at) FROM workflows_event ev "
        "JOIN workflows_execution e ON e.id = ev.execution_id "
        "JOIN unnest(%s::int[], %s::bigint[]) AS old(shard_id, epoch) ON old.shard_id = e.shard_id "
        "WHERE ev.epoch > old.epoch",
        [list(shards), list(shards.values())],
    )
    first = rows[0][0]
    return None if first is None else first.timestamp() - since


def test_a_worker_sigkilled_with_200_executions_in_flight_loses_its_shards_and_every_execution_completes(
    scenario: Scenario,
) -> None:
    s = scenario
    t0 = time.monotonic()
    s.gateway()
    s.coordinator("c1")
    s.coordinator("c2")
    print(f"\ngateway up {time.monotonic() - t0:.1f}s")
    load = s.pipelines("kill", 200)
    print(f"defined {time.monotonic() - t0:.1f}s")
    # accepted before any worker runs: all 200 are in flight once the workers take their shards
    load.execution_ids = s.execute(load.workflow_ids)
    print(f"executed {time.monotonic() - t0:.1f}s")
    for name in ("w1", "w2", "w3"):
        s.worker(name)
    ids = s.wait_ready(["w1", "w2", "w3"])
    print(f"ready {time.monotonic() - t0:.1f}s")
    victim = ids["w2"]
    owned = s.owned(victim)
    poll(
        "the victim to be running executions of its shards",
        lambda: s.rows(
            "SELECT 1 FROM workflows_execution WHERE shard_id = ANY(%s) AND status = 'running' LIMIT 1",
            [list(owned)],
        ),
        timeout=30,
        interval=0.02,
    )
    s.proc("w2").kill()
    killed_at, killed_wall = time.monotonic(), time.time()
    in_flight = s.active_in(list(owned))
    print(f"\nSIGKILL w2 owning {len(owned)} shards with {in_flight} executions in flight")
    assert in_flight > 0, "the victim's executions all finished before the kill; the scenario proves nothing"

    moved = poll("the victim's shards to move", lambda: not s.owned(victim), timeout=30, interval=0.05)
    took = s.wait_finished(load.execution_ids, timeout=120)
    resumed = first_event_after(s, owned, killed_wall)
    assert resumed is not None, "no event of the killed worker's executions at a newer epoch"
    print(
        f"shards moved {moved:.2f}s after SIGKILL; first new event of its executions {resumed:.2f}s "
        f"after it; all done {took:.1f}s after it"
    )

    checker.check(s.db_url, expected=200, execution_ids=load.execution_ids, sinks=load.sinks)
    leases = s.leases()
    survivors = {ids["w1"], ids["w3"]}
    for shard, epoch in owned.items():
        owner, new_epoch, state = leases[shard]
        assert owner in survivors and new_epoch > epoch and state == "assigned", (shard, epoch, leases[shard])
    failovers = [e for e in s.cluster_events("workflow_failover") if e["failed_node"] == victim]
    assert failovers, "no workflow_failover event for the killed worker's executions"
    assert all(e["new_node"] in survivors and e["shard_id"] in owned for e in failovers), failovers[:3]
    moves = [e for e in s.cluster_events("shard_rebalance") if e["from_node"] == victim]
    assert {e["shard_id"] for e in moves} == set(owned), "a shard_rebalance event for each of its shards"
    assert all(e["reason"] == "failover" for e in moves), moves[:3]
    assert any(e["unreachable_node"] == victim for e in s.cluster_events("unreachable_member"))
    print(f"failover: {len(failovers)} workflow_failover events, {time.monotonic() - killed_at:.1f}s in all")


def test_a_worker_paused_past_its_ttl_is_fenced_then_rejoins_and_nothing_is_applied_twice(
    make_scenario: Callable[..., Scenario],
) -> None:
    """The zombie is paused inside an apply transaction, before its fence; on SIGCONT it must not commit."""
    s = make_scenario(env={"WORKFLOW_MIN_NR_OF_MEMBERS": "3"})
    s.gateway()
    s.coordinator("c1")
    for name in ("w1", "w2", "w3"):
        s.worker(name)
    load = csv_workload(s, "pause", executions=9, rows=60_000)
    ids = s.wait_ready(["w1", "w2", "w3"])
    load.execution_ids = s.execute(load.workflow_ids)
    name, owned = wait_for("a worker to run executions of its shards", lambda: busiest(s, ids), timeout=30)
    zombie, victim = s.proc(name), ids[name]

    with executions_held(s, list(owned)) as mine:  # its next apply waits before its fence; paused there
        blocked = wait_for("its apply to wait", lambda: blocked_backends(s, mine, zombie), timeout=30)
        zombie.signal(signal.SIGSTOP)
        stopped = time.monotonic()
    xids = transaction_ids(s, blocked)
    print(f"\nSIGSTOP {name} owning {len(owned)} shards, inside apply transaction(s) {xids}")
    moved = poll("the paused worker's shards to move", lambda: not s.owned(victim), timeout=30)
    print(f"its shards moved {time.monotonic() - stopped:.2f}s after SIGSTOP ({moved:.2f}s polling)")
    assert not s.is_live(victim)

    zombie.signal(signal.SIGCONT)
    rejoined = poll("the paused worker's liveness to return", lambda: s.is_live(victim), timeout=30)
    outcomes = wait_for("its late transactions to end", lambda: ended(s, xids), timeout=30)
    assert set(outcomes.values()) == {"aborted"}, f"a stale owner's transaction committed: {outcomes}"
    poll(
        "a reachable_member event",
        lambda: any(e["reachable_node"] == victim for e in s.cluster_events("reachable_member")),
        timeout=15,
    )
    print(
        f"it rejoined {rejoined:.2f}s after SIGCONT; late commits: {outcomes}; fence refusals logged: "
        f"{len(fence_refusals(zombie))}"
    )
    took = s.wait_finished(load.execution_ids, timeout=90)
    print(f"all done {took:.1f}s after it rejoined")
    checker.check(s.db_url, expected=len(load.execution_ids), sinks=load.sinks)


def test_a_worker_paused_inside_a_commit_does_not_hold_up_the_failover_of_its_shards(
    make_scenario: Callable[..., Scenario],
) -> None:
    """Paused after its fence, before COMMIT: its transaction holds the shard lease row ``FOR SHARE``.

    The leader must still move its shards (ARCHITECTURE.md §4, mechanisms.md §6.2 case 6): a paused or
    cut-off worker must not hold failover up for as long as its session lingers, and its transaction, which
    passed the fence before the move, must never commit after it.
    """
    s = make_scenario(env={"WORKFLOW_MIN_NR_OF_MEMBERS": "2"})
    s.gateway()
    s.coordinator("c1")
    s.worker("w1")
    s.worker("w2")
    load = csv_workload(s, "commit", executions=6, rows=30_000)
    ids = s.wait_ready(["w1", "w2"])
    load.execution_ids = s.execute(load.workflow_ids)
    name, owned = wait_for("a worker to run executions of its shards", lambda: busiest(s, ids), timeout=30)
    zombie, victim = s.proc(name), ids[name]

    with appends_held(s, list(owned)) as mine:  # its next append waits after its fence; paused there
        blocked = wait_for("its append to wait", lambda: blocked_backends(s, mine, zombie), timeout=30)
        zombie.signal(signal.SIGSTOP)
    xids = transaction_ids(s, blocked)
    stalled = stalled_backends(s, zombie)  # ours and any it was paused in anyway
    print(f"\nSIGSTOP {name} owning {len(owned)} shards, inside commit(s) {xids}")
    try:
        most = poll(
            "all its shards but those its stalled transactions hold to move",
            lambda: len(s.owned(victim)) <= len(stalled),
            timeout=LIVENESS_TTL + 4,
        )
        moved = poll("the paused worker's shards to move", lambda: not s.owned(victim), timeout=30)
        print(
            f"all but {len(stalled)} of its shards moved {most:.2f}s after SIGSTOP, all {most + moved:.2f}s"
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}; sessions meanwhile:\n{s.sessions()}") from None
    finally:
        zombie.signal(signal.SIGCONT)
    outcomes = wait_for("its late transactions to end", lambda: ended(s, xids), timeout=30)
    assert set(outcomes.values()) == {"aborted"}, f"a stale owner's transaction committed: {outcomes}"
    s.wait_finished(load.execution_ids, timeout=60)
    checker.check(s.db_url, expected=len(load.execution_ids), sinks=load.sinks)


def fence_refusals(proc: Proc) -> list[str]:
    """Executions the worker tried to apply after losing their shard (the task logs each refusal)."""
    found = []
    for line in proc.log_tail(100_000).splitlines():
        if "hint for a shard we do not own" in line:
            found.append(json.loads(line)["execution_id"])
    return found
