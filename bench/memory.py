"""Memory benchmark: a worker's RSS with 1,000 executions in flight, and over a soak (issue 6, req. 6).

    .venv/bin/python bench/memory.py                  # --in-flight 1000 --soak-seconds 600; ~12 minutes
    .venv/bin/python bench/memory.py --soak-seconds 60 --bounded-cache 0   # a quick look

It starts its own PostgreSQL and Redis (devservices), one coordinator and one Celery worker
of concurrency 2 (``--concurrency``). The worker's memory is its resident set summed over the main process
and its prefork children (psutil); PSS (proportional set size, pages shared after the fork counted once) is
reported next to it. The engine's entity cache size is the ``workflow_entity_count`` gauge (per process,
summed over the worker's processes), read from the worker's prometheus_client multiprocess directory, which
the benchmark gives it (``PROMETHEUS_MULTIPROC_DIR``, as ``run_node`` does). The worker runs under
bench/worker_probe.py (``--no-probe``: not), which reports the length of its main process's event-loop timer
heap.

Part A, in flight: a workflow that parks (``sequence.numbers`` → ``wait.signal`` "go" → ``aggregate.count``).
``--in-flight`` executions are started with ``apps.workflows.client.start``; once every one is ``running``
and its ``NodeWaiting`` event is in the journal, the worker's memory is compared with its memory idle just
before (after a warm-up). Then each is signalled through the service the REST API uses
(``apps.workflows.services.control.signal``), and once all have completed the memory is read again. With
``--bounded-cache N`` (default 100; 0 skips it) Part A runs again on a fresh worker started with
``WORKFLOW_MAX_CACHED_ENTITIES=N``, to show the bound of the cache.

Part B, soak: a fresh worker at the default engine settings (``max-cached-entities`` 10000,
``passivate-idle-entity-after`` 120 s), ``--rate`` three-node executions per second (bench/throughput.py's
``linear3``, started on a fixed schedule) plus ``--park-rate`` parking ones per second, each signalled
``--park-hold`` seconds after its start, for ``--soak-seconds``. Every ``--sample-every`` seconds: the
worker's RSS and PSS, the cache gauge, the timer heap, and the backlog (executions not finished). Reported:
RSS at the start, end and max, and its slope in MiB per minute by least squares over the second half of the
soak (flat: about 0).

What grows in the main process: Celery's prefork pool schedules a soft-time-limit timer for every task it
runs (``task_soft_time_limit``, 840 s here) and, when the task ends, only marks it cancelled; kombu drops a
cancelled entry from its heap when it falls due. So the heap holds every task of the last 840 s (about
0.6 to 0.9 KiB each), grows for 14 minutes and then stays flat. A ten-minute soak ends before that;
``CELERY_TASK_SOFT_TIME_LIMIT=60 CELERY_TASK_TIME_LIMIT=90`` in the environment (every process: the sender
stamps the limits on the message) shows the plateau within a minute.

Results: tables on stdout and ``bench/results/memory.json``.
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import BenchEnv, wait  # noqa: E402
from throughput import TERMINAL, definition, run_ours  # noqa: E402

PARK = "bench-park"
LINEAR3 = "bench-linear3"
MIB = 2**20


def park_definition() -> dict[str, Any]:
    nodes = [
        {"id": "numbers", "nodeType": "sequence.numbers", "config": {"start": 1, "end": 1}},
        {"id": "wait", "type": "transform", "nodeType": "wait.signal", "config": {"name": "go"}},
        {"id": "count", "nodeType": "aggregate.count", "config": {}},
    ]
    edges = [
        {"id": "e1", "source": "numbers", "target": "wait"},
        {"id": "e2", "source": "wait", "target": "count"},
    ]
    return {"id": PARK, "name": "memory bench: parks on a signal", "nodes": nodes, "edges": edges}


# --- measuring -------------------------------------------------------------------------------------------


class Worker:
    """A started Celery worker with its own metrics directory."""

    def __init__(
        self, env: Any, name: str, concurrency: int, extra: dict[str, str] | None = None, probe: bool = True
    ) -> None:
        self.name = name
        self.metrics_dir = env.workdir / f"metrics-{name}"
        self.metrics_dir.mkdir()
        self.probe_out = env.workdir / f"probe-{name}.jsonl" if probe else None
        worker_env = {"PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir), **(extra or {})}
        wrap: list[str] = []
        if self.probe_out is not None:
            worker_env.update(PROBE_OUT=str(self.probe_out), PROBE_EVERY="2")
            wrap = [sys.executable, str(ROOT / "bench" / "worker_probe.py")]
        self.proc = env.cluster.start_worker(name, concurrency=concurrency, env=worker_env, wrap=wrap)

    def processes(self) -> list[psutil.Process]:
        main = psutil.Process(self.proc.pid)
        return [main, *main.children(recursive=True)]

    def sample(self) -> dict[str, Any]:
        rss, pss = [], 0
        for p in self.processes():
            try:
                full = p.memory_full_info()
            except psutil.NoSuchProcess:
                continue
            rss.append(full.rss)
            pss += full.pss
        return {
            "rss_mib": round(sum(rss) / MIB, 1),
            "rss_per_process_mib": [round(r / MIB, 1) for r in rss],  # main process first
            "pss_mib": round(pss / MIB, 1),
            "entities": self.entities(),
            **self.probed(),
        }

    def probed(self) -> dict[str, Any]:
        """The last line of bench/worker_probe.py's report (the main process's timer heap), if any."""
        if self.probe_out is None or not self.probe_out.exists():
            return {}
        lines = self.probe_out.read_text().splitlines()
        if not lines:
            return {}
        row = json.loads(lines[-1])
        return {k: row[k] for k in ("timer_entries", "timer_cancelled", "successful_requests")}

    def entities(self) -> int | None:
        """The ``workflow_entity_count`` gauges of the worker's processes, summed (None if not found)."""
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.metrics_dir))
        for metric in registry.collect():
            if metric.name == "workflow_entity_count":
                return int(sum(s.value for s in metric.samples))
        return None

    def stop(self) -> None:
        self.proc.stop()


def owned_by(name: str) -> int:
    from apps.cluster.models import ShardLease

    return ShardLease.objects.filter(owner__startswith=f"{name}:").count()


def fresh_worker(
    env: Any, name: str, concurrency: int, extra: dict[str, str] | None = None, probe: bool = True
) -> Worker:
    """Start a worker, wait until it owns every shard, and warm it up (both workflows, a few runs each)."""
    from workflow_engine.tunables import engine_settings

    worker = Worker(env, name, concurrency, extra, probe)
    shards = engine_settings.number_of_shards
    wait(f"{name} to own all {shards} shards", lambda: owned_by(name) == shards, timeout=120, interval=0.2)
    run_ours("linear3", 20)
    park_and_release(10)
    time.sleep(3)
    return worker


def park_and_release(n: int, worker: Worker | None = None) -> dict[str, Any]:
    """Start ``n`` parking executions, wait until all are parked, release them, wait until all completed;
    with ``worker``, sample its memory idle before, parked, and after."""
    from apps.workflows import client
    from apps.workflows.models import Event, Execution
    from apps.workflows.services import control

    result: dict[str, Any] = {"executions": n}
    if worker is not None:
        result["idle"] = worker.sample()
    t0 = time.perf_counter()
    ids = [client.start(PARK) for _ in range(n)]
    result["start_seconds"] = round(time.perf_counter() - t0, 2)

    def parked() -> bool:
        waiting = Event.objects.filter(execution_id__in=ids, type="NodeWaiting").count()
        running = Execution.objects.filter(id__in=ids, status="running").count()
        return waiting == n and running == n

    wait(f"{n} executions to park", parked, timeout=600, interval=0.5)
    result["parked_after_seconds"] = round(time.perf_counter() - t0, 2)
    if worker is not None:
        time.sleep(3)  # the last batches' after-commit work done
        result["parked"] = worker.sample()
    t1 = time.perf_counter()
    for i, execution_id in enumerate(ids):
        control.signal(execution_id, "go", {"i": i}, by="bench")
    wait(
        f"{n} released executions",
        lambda: Execution.objects.filter(id__in=ids, status__in=TERMINAL).count() == n,
        timeout=600,
        interval=0.5,
    )
    result["release_seconds"] = round(time.perf_counter() - t1, 2)
    failed = Execution.objects.filter(id__in=ids).exclude(status="completed").count()
    if failed:
        raise SystemExit(f"{failed} parked executions did not complete")
    if worker is not None:
        time.sleep(3)
        result["released"] = worker.sample()
        result["growth_parked_mib"] = round(result["parked"]["rss_mib"] - result["idle"]["rss_mib"], 1)
        result["growth_per_execution_kib"] = round(result["growth_parked_mib"] * 1024 / n, 1)
        idle, parked = result["idle"]["rss_per_process_mib"], result["parked"]["rss_per_process_mib"]
        result["growth_main_mib"] = round(parked[0] - idle[0], 1)
        result["growth_children_mib"] = round(sum(parked[1:]) - sum(idle[1:]), 1)
    return result


# --- soak ------------------------------------------------------------------------------------------------


class Load(threading.Thread):
    """``rate`` linear3 starts per second on a fixed schedule, plus ``park_rate`` parking starts per second,
    each signalled ``hold`` seconds later."""

    def __init__(self, rate: float, park_rate: float, hold: float) -> None:
        super().__init__(daemon=True, name="load")
        self.rate, self.park_rate, self.hold = rate, park_rate, hold
        self.stopped = threading.Event()
        self.started = self.parked = self.released = 0
        self.pending: collections.deque[tuple[float, str]] = collections.deque()
        self.error: BaseException | None = None

    def run(self) -> None:
        from django.db import connection

        from apps.workflows import client
        from apps.workflows.services import control

        try:
            t0 = time.perf_counter()
            next_run, next_park = t0, t0
            while not self.stopped.is_set():
                now = time.perf_counter()
                if self.rate and now >= next_run:
                    client.start(LINEAR3)
                    self.started += 1
                    next_run = t0 + self.started / self.rate
                elif self.park_rate and now >= next_park:
                    self.pending.append((now + self.hold, client.start(PARK)))
                    self.parked += 1
                    next_park = t0 + self.parked / self.park_rate
                elif self.pending and now >= self.pending[0][0]:
                    control.signal(self.pending.popleft()[1], "go", {}, by="bench")
                    self.released += 1
                else:
                    upcoming = [next_run if self.rate else now + 1, next_park if self.park_rate else now + 1]
                    if self.pending:
                        upcoming.append(self.pending[0][0])
                    time.sleep(max(0.0, min(0.05, min(upcoming) - time.perf_counter())))
            while self.pending:  # release the rest so that everything can finish
                control.signal(self.pending.popleft()[1], "go", {}, by="bench")
                self.released += 1
        except BaseException as exc:  # reported by the main thread
            self.error = exc
        finally:
            connection.close()


def slope_mib_per_minute(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MiB) points, in MiB per minute."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    sxx = sum((t - mx) ** 2 for t, _ in points)
    sxy = sum((t - mx) * (v - my) for t, v in points)
    return round(sxy / sxx * 60, 3) if sxx else None


def soak(env: Any, worker: Worker, args: Any) -> dict[str, Any]:
    from apps.workflows.models import Execution

    def backlog() -> int:
        return Execution.objects.exclude(status__in=TERMINAL).count()

    def sample(t: float) -> dict[str, Any]:
        s = {"t": round(t, 1), **worker.sample(), "backlog": backlog()}
        s["started"], s["parked"], s["released"] = load.started, load.parked, load.released
        return s

    load = Load(args.rate, args.park_rate, args.park_hold)
    samples = [sample(0.0)]
    coordinator = env.cluster.procs[0]
    coord_start = psutil.Process(coordinator.pid).memory_info().rss / MIB
    t0 = time.perf_counter()
    load.start()
    print(
        f"{'t s':>6} {'RSS MiB':>8} {'PSS MiB':>8} {'cache':>6} {'backlog':>8} {'timers':>7}  "
        "RSS per process (main first)",
        flush=True,
    )
    print(_row(samples[0]), flush=True)
    while (elapsed := time.perf_counter() - t0) < args.soak_seconds:
        if load.error is not None:
            raise load.error
        time.sleep(min(args.sample_every, args.soak_seconds - elapsed))
        samples.append(sample(time.perf_counter() - t0))
        print(_row(samples[-1]), flush=True)
    load.stopped.set()
    load.join()
    if load.error is not None:
        raise load.error
    wait("the soak's executions to finish", lambda: backlog() == 0, timeout=600, interval=0.5)
    failed = Execution.objects.exclude(status="completed").count()
    time.sleep(3)
    after = sample(time.perf_counter() - t0)
    half = args.soak_seconds / 2
    during = samples[1:]  # under load
    second_half = [(s["t"], s["rss_mib"]) for s in samples if s["t"] >= half]
    return {
        "seconds": args.soak_seconds,
        "rate_per_second": args.rate,
        "park_rate_per_second": args.park_rate,
        "park_hold_seconds": args.park_hold,
        "linear3_started": load.started,
        "parked_started": load.parked,
        "not_completed": failed,
        "rss_start_mib": samples[0]["rss_mib"],
        "rss_end_mib": samples[-1]["rss_mib"],
        "rss_max_mib": max(s["rss_mib"] for s in samples),
        "rss_after_drain_mib": after["rss_mib"],
        "pss_start_mib": samples[0]["pss_mib"],
        "pss_end_mib": samples[-1]["pss_mib"],
        "slope_second_half_mib_per_min": slope_mib_per_minute(second_half),
        "pss_slope_second_half_mib_per_min": slope_mib_per_minute(
            [(s["t"], s["pss_mib"]) for s in samples if s["t"] >= half]
        ),
        "slope_whole_mib_per_min": slope_mib_per_minute([(s["t"], s["rss_mib"]) for s in samples]),
        "entities_start": samples[0]["entities"],
        "entities_end": samples[-1]["entities"],
        "entities_max": max((s["entities"] or 0) for s in samples),
        "entities_after_drain": after["entities"],
        "backlog_max": max(s["backlog"] for s in during) if during else 0,
        "main_rss_start_mib": samples[0]["rss_per_process_mib"][0],
        "main_rss_end_mib": samples[-1]["rss_per_process_mib"][0],
        "children_rss_start_mib": samples[0]["rss_per_process_mib"][1:],
        "children_rss_end_mib": samples[-1]["rss_per_process_mib"][1:],
        "timer_entries_start": samples[0].get("timer_entries"),
        "timer_entries_end": samples[-1].get("timer_entries"),
        "coordinator_rss_start_mib": round(coord_start, 1),
        "coordinator_rss_end_mib": round(psutil.Process(coordinator.pid).memory_info().rss / MIB, 1),
        "samples": samples,
        "after_drain": after,
    }


def _row(s: dict[str, Any]) -> str:
    return (
        f"{s['t']:>6.0f} {s['rss_mib']:>8} {s['pss_mib']:>8} {s['entities']!s:>6} {s['backlog']:>8} "
        f"{s.get('timer_entries', '-')!s:>7}  {s['rss_per_process_mib']}"
    )


# --- the run ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--in-flight", type=int, default=1000, help="parked executions of part A")
    parser.add_argument(
        "--bounded-cache", type=int, default=100, help="part A again with this max-cached-entities (0: skip)"
    )
    parser.add_argument("--soak-seconds", type=float, default=600, help="length of part B (0: skip)")
    parser.add_argument("--rate", type=float, default=20, help="three-node executions per second in the soak")
    parser.add_argument(
        "--park-rate", type=float, default=2, help="parking executions per second in the soak"
    )
    parser.add_argument("--park-hold", type=float, default=30, help="seconds until a parked one is signalled")
    parser.add_argument("--sample-every", type=float, default=10, help="seconds between memory samples")
    parser.add_argument("--concurrency", type=int, default=2, help="the worker's pool size")
    parser.add_argument(
        "--no-probe",
        action="store_true",
        help="run the worker without bench/worker_probe.py (no timer counts)",
    )
    args = parser.parse_args()
    # SIGTERM (e.g. from a job runner) unwinds like Ctrl-C, so the cluster and servers are stopped
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    t_begin = time.perf_counter()
    summary: dict[str, Any] = {"concurrency": args.concurrency, "in_flight": {}}
    with BenchEnv("memory") as env:
        from apps.workflows import client

        client.create_workflow(definition("linear3"))
        client.create_workflow(park_definition())
        env.cluster.start_coordinator()

        runs: list[tuple[str, dict[str, str]]] = [("default", {})]
        if args.bounded_cache:
            runs.append(
                (
                    f"max-cached-entities={args.bounded_cache}",
                    {"WORKFLOW_MAX_CACHED_ENTITIES": str(args.bounded_cache)},
                )
            )
        for i, (label, extra) in enumerate(runs):
            worker = fresh_worker(env, f"w{i}", args.concurrency, extra, not args.no_probe)
            print(f"part A ({label}): {args.in_flight} executions in flight ...", flush=True)
            result = park_and_release(args.in_flight, worker)
            summary["in_flight"][label] = result
            print(
                f"  idle {result['idle']['rss_mib']} MiB, parked {result['parked']['rss_mib']} MiB "
                f"(cache {result['parked']['entities']}), released {result['released']['rss_mib']} MiB",
                flush=True,
            )
            worker.stop()

        if args.soak_seconds:
            worker = fresh_worker(env, f"w{len(runs)}", args.concurrency, probe=not args.no_probe)
            print(
                f"part B: soak of {args.soak_seconds:.0f}s at {args.rate}/s linear3 + {args.park_rate}/s "
                f"parked ({args.park_hold:.0f}s each), default engine settings; "
                f"{time.perf_counter() - t_begin:.0f}s into the run",
                flush=True,
            )
            summary["soak_began_after_seconds"] = round(time.perf_counter() - t_begin, 1)
            summary["soak"] = soak(env, worker, args)
        summary["run_seconds"] = round(time.perf_counter() - t_begin, 1)
        path = env.write_result(summary)
    shutil.rmtree(env.workdir / "pg", ignore_errors=True)  # the servers are stopped; their data goes
    report(summary, path)


def report(summary: dict[str, Any], path: Path) -> None:
    print(
        f"\n{'part A: in flight':<34} {'n':>5} {'idle':>8} {'parked':>8} {'released':>9} {'growth':>8} "
        f"{'per exec':>9} {'cache':>6}"
    )
    for label, r in summary["in_flight"].items():
        print(
            f"{label:<34} {r['executions']:>5} {r['idle']['rss_mib']:>8} {r['parked']['rss_mib']:>8} "
            f"{r['released']['rss_mib']:>9} {r['growth_parked_mib']:>8} "
            f"{r['growth_per_execution_kib']:>6} KiB {r['parked']['entities']!s:>6}"
        )
        print(
            f"{'  (PSS)':<34} {'':>5} {r['idle']['pss_mib']:>8} {r['parked']['pss_mib']:>8} "
            f"{r['released']['pss_mib']:>9}"
        )
        print(
            f"{'  growth: main process, children':<34} {'':>5} {'':>8} {r['growth_main_mib']:>8} "
            f"{r['growth_children_mib']:>9}   (timer heap parked: {r['parked'].get('timer_entries')})"
        )
    print("(worker RSS in MiB, main process + pool children; cache = workflow_entity_count summed)")
    s = summary.get("soak")
    if s:
        print(
            f"\npart B: soak {s['seconds']:.0f}s, {s['rate_per_second']}/s linear3 + "
            f"{s['park_rate_per_second']}/s parked ({s['linear3_started']} + {s['parked_started']} started, "
            f"{s['not_completed']} not completed, backlog max {s['backlog_max']})"
        )
        print(f"{'':<14} {'start':>8} {'end':>8} {'max':>8} {'after drain':>12} {'slope 2nd half':>16}")
        print(
            f"{'RSS MiB':<14} {s['rss_start_mib']:>8} {s['rss_end_mib']:>8} {s['rss_max_mib']:>8} "
            f"{s['rss_after_drain_mib']:>12} {s['slope_second_half_mib_per_min']!s:>10} MiB/min"
        )
        print(
            f"{'PSS MiB':<14} {s['pss_start_mib']:>8} {s['pss_end_mib']:>8} {'':>8} {'':>12} "
            f"{s['pss_slope_second_half_mib_per_min']!s:>10} MiB/min"
        )
        print(
            f"{'cache':<14} {s['entities_start']!s:>8} {s['entities_end']!s:>8} {s['entities_max']!s:>8} "
            f"{s['entities_after_drain']!s:>12}"
        )
        print(
            f"(worker main process {s['main_rss_start_mib']} -> {s['main_rss_end_mib']} MiB, pool children "
            f"{s['children_rss_start_mib']} -> {s['children_rss_end_mib']} MiB; main process timer heap "
            f"{s['timer_entries_start']} -> {s['timer_entries_end']} entries)"
        )
        print(
            f"(coordinator RSS {s['coordinator_rss_start_mib']} -> {s['coordinator_rss_end_mib']} MiB; "
            f"slope over the whole soak {s['slope_whole_mib_per_min']} MiB/min)"
        )
    print(f"(run took {summary['run_seconds']}s; written to {path})")


if __name__ == "__main__":
    main()
