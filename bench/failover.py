"""Failover benchmark: SIGKILL a worker that owns shards with running executions; how long until each of
those executions moves again?

For every execution that lives in a shard of the killed worker and was not finished at the kill, the time from
the SIGKILL to its first new journal event. Reported as p50 and max per run and over all runs, at the
default engine settings (liveness-ttl, heartbeat, lease TTL, reconcile interval are not changed).

    .venv/bin/python bench/failover.py --runs 5

It starts its own PostgreSQL and Redis (devservices), one coordinator and three Celery
workers, feeds executions at a steady rate, kills the worker owning the most shards, and starts a
replacement before the next run. Results: a table on stdout and ``bench/results/failover.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "bench"))

from common import BenchEnv, wait, write_result  # noqa: E402


def workflow(workdir: Path) -> dict[str, Any]:
    files = workdir / "files"  # the default file root, <data dir>/files
    files.mkdir(parents=True, exist_ok=True)
    source = files / "rows.csv"
    source.write_text("n\n" + "\n".join(str(i) for i in range(100)) + "\n")
    nodes = [
        {"id": "read", "nodeType": "file.csv", "config": {"path": str(source)}},
        {"id": "double", "nodeType": "map", "config": {"expression": "n * 2"}},
        {
            "id": "write",
            "nodeType": "file.text",
            "type": "sink",
            "config": {"path": str(files / "out" / "result.txt")},
        },
    ]
    edges = [
        {"id": "e1", "source": "read", "target": "double"},
        {"id": "e2", "source": "double", "target": "write"},
    ]
    return {"id": "failover-bench", "name": "failover bench", "nodes": nodes, "edges": edges}


def owners() -> dict[str, int]:
    from django.db.models import Count

    from apps.cluster.models import ShardLease

    rows = ShardLease.objects.exclude(owner=None).values("owner").annotate(n=Count("shard_id"))
    return {r["owner"]: r["n"] for r in rows}


class Feeder(threading.Thread):
    """Starts executions at a steady rate until stopped."""

    def __init__(self, rate: float) -> None:
        super().__init__(daemon=True)
        self.rate, self.stopped, self.started = rate, threading.Event(), 0

    def run(self) -> None:
        from django.db import connection

        from apps.workflows.services import executions

        while not self.stopped.wait(1 / self.rate):
            executions.start("failover-bench", trigger="bench")
            self.started += 1
        connection.close()


BURST = 12


def burst(count: int) -> None:
    from apps.workflows.services import executions

    for _ in range(count):
        executions.start("failover-bench", trigger="bench")


def one_run(cluster: Any, rate: float) -> dict[str, Any]:
    from django.db.models import Min

    from apps.cluster.models import ShardLease
    from apps.workflows.models import Event, Execution

    feeder = Feeder(rate)
    feeder.start()
    time.sleep(3)
    load = owners()
    victim_id = max(load, key=lambda k: load[k])
    victim = next(
        p for p in cluster.procs if p.alive() and victim_id.startswith(p.env["WORKFLOW_NODE_NAME"] + ":")
    )
    shards = list(ShardLease.objects.filter(owner=victim_id).values_list("shard_id", flat=True))
    burst(BURST)  # so that the victim's shards surely hold executions in flight when it dies
    victim.kill()
    killed_at = time.time()
    kill_dt = datetime.fromtimestamp(killed_at, tz=UTC)
    in_flight = list(
        Execution.objects.filter(shard_id__in=shards, status__in=["pending", "running"]).values_list(
            "id", flat=True
        )
    )
    time.sleep(8)
    feeder.stopped.set()
    feeder.join()
    wait(
        "all executions to finish",
        lambda: not Execution.objects.filter(status__in=["pending", "running"]).exists(),
    )
    firsts = (
        Event.objects.filter(execution_id__in=in_flight, created_at__gt=kill_dt)
        .values("execution_id")
        .annotate(first=Min("created_at"))
    )
    gaps = sorted((row["first"].timestamp() - killed_at) for row in firsts)
    if os.environ.get("BENCH_DEBUG"):
        moved = ShardLease.objects.filter(shard_id__in=shards).values_list("moved_at", flat=True)
        moved_gaps = sorted(m.timestamp() - killed_at for m in moved if m)
        print(
            "moved after",
            [round(g, 2) for g in moved_gaps[:1] + moved_gaps[-1:]],
            "gaps",
            [round(g, 2) for g in sorted(row["first"].timestamp() - killed_at for row in firsts)],
        )
        for row in firsts:
            gap = row["first"].timestamp() - killed_at
            if gap > 6:
                evs = Event.objects.filter(execution_id=row["execution_id"]).order_by("seq")
                print(
                    row["execution_id"],
                    [
                        (
                            e.type,
                            e.payload.get("nodeId"),
                            e.epoch,
                            round(e.created_at.timestamp() - killed_at, 2),
                        )
                        for e in evs
                    ],
                )
    return {
        "victim": victim_id,
        "shards": len(shards),
        "executions": len(in_flight),
        "gaps": gaps,
        "p50": statistics.median(gaps) if gaps else None,
        "max": max(gaps) if gaps else None,
        "started": feeder.started,
        "victim_proc": victim,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rate", type=float, default=4.0, help="executions started per second")
    args = parser.parse_args()
    with BenchEnv("failover", extra_env={"WORKFLOW_MIN_NR_OF_MEMBERS": "3"}) as env:
        from apps.workflows.services import definitions

        definitions.create(workflow(env.workdir))
        cluster = env.cluster
        cluster.start_coordinator()
        for i in range(3):
            cluster.start_worker(f"w{i}")
        wait("three workers to own shards", lambda: len(owners()) == 3)
        results = []
        for run in range(args.runs):
            result = one_run(cluster, args.rate)
            if result["gaps"]:
                print(
                    f"run {run + 1}: killed {result['victim']} ({result['shards']} shards, "
                    f"{result['executions']} executions in flight): p50 {result['p50']:.2f}s "
                    f"max {result['max']:.2f}s",
                    flush=True,
                )
            else:
                print(f"run {run + 1}: no execution was in flight in the killed worker's shards; not counted")
            result.pop("victim_proc")
            results.append(result)
            cluster.start_worker(f"w{3 + run}")
            wait("the replacement worker", lambda: len(owners()) >= 2)
    report(results, args)


def report(results: list[dict[str, Any]], args: Any) -> None:
    gaps = [g for r in results for g in r["gaps"]]
    summary = {
        "runs": len(results),
        "executions_measured": len(gaps),
        "p50_seconds": round(statistics.median(gaps), 3) if gaps else None,
        "p95_seconds": round(statistics.quantiles(gaps, n=20)[-1], 3) if len(gaps) >= 20 else None,
        "max_seconds": round(max(gaps), 3) if gaps else None,
        "per_run": [
            {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items() if k != "gaps"}
            for r in results
        ],
        "settings": "defaults (liveness-ttl 3s, heartbeat-interval 1s, leader-lease-ttl 6s, reconcile 1s); "
        "min-nr-of-members 3 for an even initial spread",
        "rate_per_second": args.rate,
    }
    path = write_result("failover", summary)
    print(f"\n{'runs':>6} {'executions':>11} {'p50 (s)':>9} {'p95 (s)':>9} {'max (s)':>9}")
    print(
        f"{summary['runs']:>6} {summary['executions_measured']:>11} {summary['p50_seconds']!s:>9} "
        f"{summary['p95_seconds']!s:>9} {summary['max_seconds']!s:>9}"
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
