"""Throughput benchmark: durable workflows against the same work as a plain Celery chain (issue 6, req. 2).

    .venv/bin/python bench/throughput.py            # --runs 300 --reps 3 --concurrency 2

It starts its own PostgreSQL and Redis (devservices), one coordinator and ONE engine worker
of concurrency C, and one worker of the plain Celery app in ``bench/celery_baseline.py`` with the same
concurrency on the same Redis (another database number). For each scenario, N runs of each contender are
started from Python as fast as possible (ours: ``apps.workflows.client.start``; Celery: ``apply_async``
of a chain or chord), and the clock stops when the last one has completed (ours: the Execution rows,
polled; Celery: a Redis counter the last task increments). Contenders alternate, in reversed order every
other repetition; the median completions per second of each and their ratio ours/celery are reported.

Scenarios: ``linear3`` (sequence.numbers → map → aggregate.count vs a three-task chain), ``linear10`` (eight
maps between them vs a ten-task chain), ``fan10`` (ten maps in parallel, fan-in to the count vs a chord).
Results: a table on stdout and ``bench/results/throughput.json``. Only one engine worker runs, and both
workers are idle while the other contender is measured.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import BenchEnv, wait, write_result  # noqa: E402

SCENARIOS = ("linear3", "linear10", "fan10")
TERMINAL = ("completed", "failed", "cancelled")


def definition(scenario: str) -> dict[str, Any]:
    source = {"id": "numbers", "nodeType": "sequence.numbers", "config": {"start": 1, "end": 1}}
    sink = {"id": "count", "nodeType": "aggregate.count", "config": {}}

    def double(i: int) -> dict[str, Any]:
        return {"id": f"double{i}", "nodeType": "map", "config": {"expression": "value * 2"}}

    if scenario == "fan10":
        maps = [double(i) for i in range(10)]
        edges = [{"id": f"a{i}", "source": "numbers", "target": f"double{i}"} for i in range(10)]
        edges += [{"id": f"b{i}", "source": f"double{i}", "target": "count"} for i in range(10)]
    else:
        maps = [double(i) for i in range(1 if scenario == "linear3" else 8)]
        chain = ["numbers", *(m["id"] for m in maps), "count"]
        edges = [
            {"id": f"e{i}", "source": a, "target": b} for i, (a, b) in enumerate(itertools.pairwise(chain))
        ]
    nodes = [source, *maps, sink]
    return {"id": f"bench-{scenario}", "name": f"throughput {scenario}", "nodes": nodes, "edges": edges}


def finished_since(workflow_id: str, since: Any) -> int:
    """Executions of the workflow created since ``since`` that have finished: one cheap indexed query, so
    that polling costs about what reading Celery's Redis counter does."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM workflows_execution WHERE workflow_id = %s AND created_at >= %s "
            "AND status IN ('completed', 'failed', 'cancelled')",
            [workflow_id, since],
        )
        return int(cur.fetchone()[0])


def run_ours(scenario: str, n: int) -> dict[str, Any]:
    from django.utils import timezone

    from apps.workflows import client
    from apps.workflows.models import Execution

    since = timezone.now()
    t0 = time.perf_counter()
    ids = [client.start(f"bench-{scenario}") for _ in range(n)]
    started = time.perf_counter() - t0
    wait(
        f"{n} executions of {scenario}",
        lambda: finished_since(f"bench-{scenario}", since) >= n,
        timeout=600,
        interval=0.02,
    )
    elapsed = time.perf_counter() - t0
    failed = Execution.objects.filter(id__in=ids).exclude(status="completed").count()
    if failed:
        raise SystemExit(f"{failed} executions of {scenario} did not complete")
    return {"seconds": elapsed, "start_seconds": started, "per_second": n / elapsed}


def run_celery(scenario: str, n: int, redis_client: Any) -> dict[str, Any]:
    import celery_baseline as cb

    counter = f"bench:done:{uuid.uuid4().hex}"
    t0 = time.perf_counter()
    for _ in range(n):
        if scenario == "fan10":
            cb.fan(10, counter).apply_async()
        else:
            cb.linear(3 if scenario == "linear3" else 10, counter).apply_async()
    started = time.perf_counter() - t0
    wait(
        f"{n} Celery runs of {scenario}",
        lambda: int(redis_client.get(counter) or 0) >= n,
        timeout=600,
        interval=0.02,
    )
    elapsed = time.perf_counter() - t0
    redis_client.delete(counter)
    return {"seconds": elapsed, "start_seconds": started, "per_second": n / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=300, help="runs per contender, scenario and repetition")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = parser.parse_args()
    scenarios = [s for s in args.scenarios.split(",") if s]
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {s: {"ours": [], "celery": []} for s in scenarios}
    with BenchEnv("throughput") as env:
        baseline_url = env.redis.url(1)
        os.environ["BASELINE_REDIS_URL"] = baseline_url
        import redis

        from apps.workflows import client
        from tests.harness import Proc

        for scenario in scenarios:
            client.create_workflow(definition(scenario))
        env.cluster.start_coordinator()
        env.cluster.start_worker("w0", concurrency=args.concurrency)
        baseline_argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "celery_baseline",
            "worker",
            "-P",
            "prefork",
            "-c",
            str(args.concurrency),
            "-n",
            "baseline@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "WARNING",
        ]
        baseline_env = {**env.proc_env, "BASELINE_REDIS_URL": baseline_url, "PYTHONPATH": str(ROOT / "bench")}
        baseline = Proc("celery-baseline", baseline_argv, baseline_env, env.workdir / "baseline.log").start()
        env.cluster.procs.append(baseline)  # stopped with the cluster
        redis_client = redis.Redis.from_url(baseline_url)
        # warm-up: both sides up and through their first runs (connections, imports, shard ownership)
        for scenario in scenarios:
            run_ours(scenario, 5)
            run_celery(scenario, 5, redis_client)
        for rep in range(args.reps):
            for scenario in scenarios:
                order = ("ours", "celery") if rep % 2 == 0 else ("celery", "ours")
                for who in order:
                    if who == "ours":
                        sample = run_ours(scenario, args.runs)
                    else:
                        sample = run_celery(scenario, args.runs, redis_client)
                    samples[scenario][who].append(sample)
                    print(
                        f"rep {rep + 1} {scenario:<9} {who:<7} {sample['per_second']:8.1f}/s "
                        f"({args.runs} in {sample['seconds']:.2f}s, starts {sample['start_seconds']:.2f}s)",
                        flush=True,
                    )
    report(samples, args)


def report(samples: dict[str, dict[str, list[dict[str, Any]]]], args: Any) -> None:
    rows = {}
    for scenario, by in samples.items():
        ours = statistics.median(s["per_second"] for s in by["ours"])
        base = statistics.median(s["per_second"] for s in by["celery"])
        ratios = [o["per_second"] / c["per_second"] for o, c in zip(by["ours"], by["celery"], strict=True)]
        rows[scenario] = {
            "ours_per_second": round(ours, 1),
            "celery_per_second": round(base, 1),
            "ratio": round(ours / base, 3),
            "ratio_per_rep": [round(r, 3) for r in ratios],
            "samples": {k: [{m: round(v, 3) for m, v in s.items()} for s in v] for k, v in by.items()},
        }
    summary = {
        "runs": args.runs,
        "reps": args.reps,
        "concurrency": args.concurrency,
        "scenarios": rows,
    }
    path = write_result("throughput", summary)
    print(f"\n{'scenario':<10} {'ours /s':>9} {'celery /s':>10} {'ours/celery':>12}  per rep")
    for scenario, row in rows.items():
        print(
            f"{scenario:<10} {row['ours_per_second']:>9} {row['celery_per_second']:>10} {row['ratio']:>12}  "
            f"{row['ratio_per_rep']}"
        )
    print(
        f"({args.runs} runs per contender and repetition, {args.reps} repetitions, medians, concurrency "
        f"{args.concurrency}; written to {path})"
    )


if __name__ == "__main__":
    main()
