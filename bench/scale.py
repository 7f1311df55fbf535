"""Scale benchmark: throughput and failover time with 1, 2, 3, 4 workers, and the write volume of one
execution (issue 16, item 6).

    .venv/bin/python bench/scale.py            # --runs 150 --volume-runs 100 --max-workers 4, about 3 minutes

It starts its own PostgreSQL and Redis (devservices) and one coordinator, then:

1. **Write volume**, with one worker: for each scenario of ``bench/throughput.py`` (``linear3``, ``linear10``,
   ``fan10``, inline nodes only) and the workflow of ``bench/failover.py`` (``tasks3``: two of its three nodes
   run as Celery tasks), ``--volume-runs`` executions, and the deltas of PostgreSQL's counters over that
   window: rows inserted, updated and deleted by table (``pg_stat_user_tables``), WAL bytes
   (``pg_current_wal_lsn()``), WAL records and full-page images (``pg_stat_wal``), commits
   (``pg_stat_database.xact_commit``, read-only transactions included), transaction ids consumed (the
   snapshot's ``xmax``: transactions and subtransactions that wrote) and Redis commands. The cluster's own
   background (beats, leader ticks, BRPOP polls) is measured over an idle window first and subtracted at the
   same rate. Each window waits ``SETTLE`` seconds at its end, because backends flush their statistics lazily.
2. **Workers up**: for k = 1 .. ``--max-workers``, once the shards are spread evenly over k workers,
   ``--runs`` executions of ``linear3`` and of ``fan10`` started as fast as possible (completions per second);
   then, for k ≥ 2, a failover: a feeder starts executions at ``--rate`` per second, the worker owning the
   most shards is SIGKILLed and a replacement joins afterwards. Reported: when the victim's shards were owned
   again (their ``moved_at``), and, for every execution of those shards in flight at the kill, its first new
   event (resumed) and its end (finished).
3. **Workers down**: k = ``--max-workers`` .. 1 again (the newest worker stopped with SIGTERM), throughput
   only, so that each k is measured twice, early and late in the run, against the drift of a shared machine.

Engine settings are the defaults except ``rebalance-interval`` 0.5 s and ``max-simultaneous-rebalance`` 50,
so that a new worker gets its shards in seconds instead of minutes; failover (``liveness-ttl``,
``heartbeat-interval``, ``reconcile-interval``) is at its defaults. Results: tables on stdout and
``bench/results/scale.json``. On a machine of two cores, three and four workers (each a main process and
``--concurrency`` pool processes) measure contention for the same cores, not added capacity.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import failover as fo  # noqa: E402
import throughput as tp  # noqa: E402
from common import BenchEnv, wait, write_result  # noqa: E402

SETTLE = 11.0  # a backend flushes its statistics at most every 1 s when busy and within 10 s when idle
IDLE_WINDOW = 15.0
# scenario -> workflow: the three of bench/throughput.py (inline nodes only: an execution is one apply), and
# the three-node workflow of bench/failover.py, whose file.csv and file.text run as Celery tasks
VOLUME_WORKFLOWS = {
    "linear3": "bench-linear3",
    "linear10": "bench-linear10",
    "fan10": "bench-fan10",
    "tasks3": "failover-bench",
}
RATE_SCENARIOS = ("linear3", "fan10")
SCALARS = ("wal_bytes", "wal_records", "wal_fpi", "commits", "xids", "redis_commands")
ENV = {
    "WORKFLOW_MIN_NR_OF_MEMBERS": "1",
    "WORKFLOW_REBALANCE_INTERVAL": "0.5s",
    "WORKFLOW_MAX_SIMULTANEOUS_REBALANCE": "50",
}

# --- write volume -----------------------------------------------------------------------------------------


def counters(redis_client: Any) -> dict[str, Any]:
    """PostgreSQL's and Redis's cumulative counters, read at once."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables")
        tables = {name: (ins, upd, dele) for name, ins, upd, dele in cur.fetchall()}
        cur.execute(
            "SELECT pg_current_wal_lsn()::text, xact_commit, "
            "pg_snapshot_xmax(pg_current_snapshot())::text::bigint "
            "FROM pg_stat_database WHERE datname = current_database()"
        )
        lsn, commits, next_xid = cur.fetchone()
        cur.execute("SELECT pg_wal_lsn_diff(%s, '0/0')::bigint", [lsn])
        wal = int(cur.fetchone()[0])
        cur.execute("SELECT wal_records, wal_fpi FROM pg_stat_wal")
        wal_records, wal_fpi = cur.fetchone()
    redis_commands = int(redis_client.info("stats")["total_commands_processed"])
    return {
        "tables": tables,
        "wal_bytes": wal,
        "wal_records": wal_records,
        "wal_fpi": wal_fpi,
        "commits": commits,
        "xids": next_xid,
        "redis_commands": redis_commands,
        "t": time.monotonic(),
    }


def delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    rows = {}
    for name, (ins, upd, dele) in after["tables"].items():
        b = before["tables"].get(name, (0, 0, 0))
        changed = (ins - b[0], upd - b[1], dele - b[2])
        if any(changed):
            rows[name] = dict(zip(("inserted", "updated", "deleted"), changed, strict=True))
    scalars = {k: after[k] - before[k] for k in SCALARS}
    return {"seconds": after["t"] - before["t"], "rows": rows, **scalars}


def window(redis_client: Any, action: Any) -> dict[str, Any]:
    before = counters(redis_client)
    action()
    time.sleep(SETTLE)
    return delta(before, counters(redis_client))


def per_execution(work: dict[str, Any], idle: dict[str, Any], n: int) -> dict[str, Any]:
    """The work window's deltas less the idle rate over the same time, per execution."""
    scale = work["seconds"] / idle["seconds"]

    def net(value: float, background: float) -> float:
        return round((value - background * scale) / n, 2)

    rows = {}
    for name, counts in work["rows"].items():
        base = idle["rows"].get(name, {})
        row = {kind: net(v, base.get(kind, 0)) for kind, v in counts.items()}
        if any(abs(v) >= 0.05 for v in row.values()):
            rows[name] = row
    out: dict[str, Any] = {k: net(work[k], idle[k]) for k in SCALARS}
    out["rows"] = rows
    out["rows_written"] = round(sum(sum(r.values()) for r in rows.values()), 2)
    return out


def write_volume(redis_client: Any, runs: int) -> dict[str, Any]:
    time.sleep(SETTLE)  # the warm-up's statistics land before the idle window, not in it
    idle = window(redis_client, lambda: time.sleep(IDLE_WINDOW))
    out: dict[str, Any] = {"idle_per_second": idle_rates(idle)}
    for scenario in VOLUME_WORKFLOWS:
        work = window(redis_client, functools.partial(run_quietly, VOLUME_WORKFLOWS[scenario], runs))
        out[scenario] = per_execution(work, idle, runs)
        v = out[scenario]
        print(
            f"volume {scenario:<9} per execution: {v['rows_written']:6.1f} rows, "
            f"{v['wal_bytes'] / 1024:6.1f} KiB WAL, {v['commits']:5.1f} commits, {v['xids']:5.1f} xids, "
            f"{v['redis_commands']:5.1f} Redis commands",
            flush=True,
        )
    return out


def idle_rates(idle: dict[str, Any]) -> dict[str, float]:
    return {k: round(idle[k] / idle["seconds"], 1) for k in SCALARS}


def run_quietly(workflow_id: str, n: int) -> None:
    """``n`` executions started as fast as possible; the finished count is polled every 0.5 s only, so that
    the poll's own commits stay a small part of the window."""
    from django.utils import timezone

    from apps.workflows import client

    since = timezone.now()
    for _ in range(n):
        client.start(workflow_id)
    wait(
        f"{n} executions of {workflow_id}",
        lambda: tp.finished_since(workflow_id, since) >= n,
        timeout=600,
        interval=0.5,
    )


# --- workers ----------------------------------------------------------------------------------------------


def settled(workers: list[Any]) -> bool:
    """Every shard assigned to one of the live ``workers``, and the spread within one shard."""
    from apps.cluster.models import ShardLease

    live = {p.env["WORKFLOW_NODE_NAME"] for p in workers if p.alive()}
    load = fo.owners()
    if len(load) != len(live) or any(owner.split(":", 1)[0] not in live for owner in load):
        return False
    if (
        ShardLease.objects.exclude(state="assigned").exists()
        or ShardLease.objects.filter(owner=None).exists()
    ):
        return False
    return max(load.values()) - min(load.values()) <= 1


def resize(env: BenchEnv, workers: list[Any], k: int, concurrency: int, names: list[int]) -> None:
    while len(workers) < k:
        names[0] += 1
        workers.append(env.cluster.start_worker(f"w{names[0]}", concurrency=concurrency))
    while len(workers) > k:
        workers.pop().stop()
    wait(f"shards spread over {k} workers", lambda: settled(workers), timeout=120, interval=0.2)
    tp.run_ours("linear3", 10)  # warm-up: new pool processes import and connect


def throughput(k: int, runs: int, phase: str) -> dict[str, float]:
    out = {}
    for scenario in RATE_SCENARIOS:
        sample = tp.run_ours(scenario, runs)
        out[scenario] = round(sample["per_second"], 1)
        print(f"{phase:<4} {k} workers {scenario:<8} {sample['per_second']:7.1f}/s", flush=True)
    return out


def failover_run(workers: list[Any], rate: float) -> dict[str, Any]:
    """SIGKILL the worker owning the most shards while a feeder runs; when its shards moved, and when each of
    their executions in flight resumed and finished (seconds after the kill)."""
    from django.db.models import Max, Min

    from apps.cluster.models import ShardLease
    from apps.workflows.models import Event, Execution

    feeder = fo.Feeder(rate)
    feeder.start()
    time.sleep(2)
    load = fo.owners()
    victim_id = max(load, key=lambda o: load[o])
    victim = next(p for p in workers if victim_id.startswith(p.env["WORKFLOW_NODE_NAME"] + ":"))
    shards = list(ShardLease.objects.filter(owner=victim_id).values_list("shard_id", flat=True))
    fo.burst(fo.BURST)  # so that the victim's shards surely hold executions in flight
    killed = datetime.fromtimestamp(time.time(), tz=UTC)
    victim.kill()
    in_flight = list(
        Execution.objects.filter(shard_id__in=shards, status__in=["pending", "running"]).values_list(
            "id", flat=True
        )
    )
    wait(
        "the victim's shards to move",
        lambda: not ShardLease.objects.filter(shard_id__in=shards, owner=victim_id).exists(),
        timeout=60,
    )
    time.sleep(3)
    feeder.stopped.set()
    feeder.join()
    wait(
        "all executions to finish",
        lambda: not Execution.objects.filter(status__in=["pending", "running"]).exists(),
    )
    workers.remove(victim)
    moved = ShardLease.objects.filter(shard_id__in=shards).aggregate(
        first=Min("moved_at"), last=Max("moved_at")
    )
    resumed = [
        (row["first"] - killed).total_seconds()
        for row in Event.objects.filter(execution_id__in=in_flight, created_at__gt=killed)
        .values("execution_id")
        .annotate(first=Min("created_at"))
    ]
    ended = [
        (at - killed).total_seconds()
        for at in Execution.objects.filter(id__in=in_flight).values_list("ended_at", flat=True)
        if at is not None
    ]
    return {
        "victim_shards": len(shards),
        "in_flight": len(in_flight),
        "shards_moved_first_s": round((moved["first"] - killed).total_seconds(), 2),
        "shards_moved_last_s": round((moved["last"] - killed).total_seconds(), 2),
        "resumed_p50_s": round(statistics.median(resumed), 2) if resumed else None,
        "resumed_max_s": round(max(resumed), 2) if resumed else None,
        "finished_p50_s": round(statistics.median(ended), 2) if ended else None,
        "finished_max_s": round(max(ended), 2) if ended else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=150, help="executions per throughput sample")
    parser.add_argument("--volume-runs", type=int, default=100, help="executions per write-volume window")
    parser.add_argument("--max-workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=2, help="pool processes per worker")
    parser.add_argument("--rate", type=float, default=4.0, help="executions started per second in failover")
    parser.add_argument("--skip-volume", action="store_true")
    args = parser.parse_args()
    env = BenchEnv("scale", extra_env=dict(ENV))
    with env:
        import redis

        from apps.workflows import client
        from apps.workflows.services import definitions

        for scenario in ("linear3", "linear10", "fan10"):
            client.create_workflow(tp.definition(scenario))
        definitions.create(fo.workflow(env.workdir))
        env.cluster.start_coordinator()
        workers: list[Any] = []
        names = [-1]
        resize(env, workers, 1, args.concurrency, names)
        volume = (
            None
            if args.skip_volume
            else write_volume(redis.Redis.from_url(env.redis.url(0)), args.volume_runs)
        )
        rates: dict[int, list[dict[str, float]]] = {}
        failovers: dict[int, dict[str, Any]] = {}
        up = range(1, args.max_workers + 1)
        for k in up:
            resize(env, workers, k, args.concurrency, names)
            rates.setdefault(k, []).append(throughput(k, args.runs, "up"))
            if k >= 2:
                failovers[k] = failover_run(workers, args.rate)
                print(f"failover with {k} workers: {failovers[k]}", flush=True)
        for k in reversed(up):
            resize(env, workers, k, args.concurrency, names)
            rates[k].append(throughput(k, args.runs, "down"))
    report(volume, rates, failovers, args)


def report(
    volume: dict[str, Any] | None,
    rates: dict[int, list[dict[str, float]]],
    failovers: dict[int, dict[str, Any]],
    args: Any,
) -> None:
    throughput_rows = {
        k: {
            s: {"samples": [r[s] for r in rs], "median": statistics.median(r[s] for r in rs)}
            for s in RATE_SCENARIOS
        }
        for k, rs in rates.items()
    }
    summary = {
        "runs": args.runs,
        "volume_runs": args.volume_runs,
        "concurrency": args.concurrency,
        "settings": "defaults, but rebalance-interval 0.5s and max-simultaneous-rebalance 50",
        "write_volume_per_execution": volume,
        "throughput_per_second": throughput_rows,
        "failover": failovers,
    }
    path = write_result("scale", summary)
    print(f"\n{'workers':>7} " + " ".join(f"{s + ' /s':>18}" for s in RATE_SCENARIOS) + "   failover")
    for k, row in throughput_rows.items():
        cells = " ".join(f"{row[s]['median']:>7} {row[s]['samples']!s:>10}" for s in RATE_SCENARIOS)
        f = failovers.get(k)
        tail = (
            f"moved {f['shards_moved_last_s']}s, resumed p50 {f['resumed_p50_s']}s "
            f"max {f['resumed_max_s']}s, "
            f"finished max {f['finished_max_s']}s ({f['in_flight']} in flight)"
            if f
            else "-"
        )
        print(f"{k:>7} {cells}   {tail}")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
