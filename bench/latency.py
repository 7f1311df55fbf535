"""Latency benchmark: execute → completed at half the maximum throughput, and ``POST …/execute`` through
the gateway under concurrent clients (issue 6, requirement 3).

    .venv/bin/python bench/latency.py               # --seconds 40 --clients 8 --requests 150; ~1.5 minutes

It starts its own PostgreSQL and Redis (devservices), one coordinator and one engine worker
of concurrency 2 (``--concurrency``), with the three-node workflow of bench/throughput.py (``linear3``:
sequence.numbers → map → aggregate.count).

Part A, end to end. First the maximum throughput: a burst of ``--burst`` starts (``apps.workflows.client
.start``, back to back) timed until the last one has completed, as throughput.py measures it (``--rate``
skips this and gives the rate of part B directly). Then an open-loop load at half that rate for
``--seconds``: a starter thread calls ``client.start`` on a fixed schedule (start i is due at t0 + i/rate,
however long the earlier ones took), and records the wall clock just before each call. An execution's
latency is its ``ended_at`` (the Execution row; the worker's clock, the same machine) minus that time.
``ended_at`` is the timestamp of the batch that appended ``WorkflowCompleted``, taken as that batch began,
with millisecond resolution, so the commit of that batch (a few ms) is not counted.

Part B, the REST API. A gunicorn gateway (the harness's ``start_gateway``: 2 gthread workers of 4 threads)
on a free port and a user with a DRF token; ``--clients`` threads each send ``--requests`` ``POST
/api/v1/workflows/bench-linear3/execute`` on one keep-alive ``http.client`` connection, as fast as they get
answers. The worker keeps running and executes what they start (it shares the two cores). Reported: p50,
p95, p99, max of the request's round trip, requests per second, and the non-2xx count (must be 0); then the
time for the worker to finish what was started.

Results: tables on stdout and ``bench/results/latency.json``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import BenchEnv, percentile, wait  # noqa: E402
from throughput import TERMINAL, definition, run_ours  # noqa: E402

from devservices import free_port  # noqa: E402

WORKFLOW = "bench-linear3"
TARGET_P95_MS = 100.0


def stats_ms(values: list[float]) -> dict[str, Any]:
    """Percentiles of ``values`` (seconds) in milliseconds."""
    return {
        "count": len(values),
        "p50_ms": round(percentile(values, 50) * 1000, 1),
        "p95_ms": round(percentile(values, 95) * 1000, 1),
        "p99_ms": round(percentile(values, 99) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1) if values else None,
    }


# --- part A: execute → completed -------------------------------------------------------------------------


class Starter(threading.Thread):
    """Starts executions on a fixed schedule (open loop) and records the wall clock before each start."""

    def __init__(self, rate: float, seconds: float) -> None:
        super().__init__(daemon=True, name="starter")
        self.rate, self.seconds = rate, seconds
        self.started: list[tuple[str, float]] = []  # (execution id, time.time() just before client.start)
        self.call_seconds: list[float] = []  # how long each client.start took
        self.late: list[float] = []  # how far behind its schedule each start was called
        self.error: BaseException | None = None

    def run(self) -> None:
        from django.db import connection

        from apps.workflows import client

        try:
            total = int(self.rate * self.seconds)
            t0 = time.perf_counter()
            for i in range(total):
                due = t0 + i / self.rate
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                self.late.append(max(0.0, time.perf_counter() - due))
                before = time.time()
                self.started.append((client.start(WORKFLOW), before))
                self.call_seconds.append(time.time() - before)
        except BaseException as exc:  # reported by the main thread
            self.error = exc
        finally:
            connection.close()


def open_loop(rate: float, seconds: float) -> dict[str, Any]:
    from apps.workflows.models import Execution

    starter = Starter(rate, seconds)
    t0 = time.perf_counter()
    starter.start()
    starter.join()
    if starter.error is not None:
        raise starter.error
    start_seconds = time.perf_counter() - t0
    ids = [i for i, _ in starter.started]
    n = len(ids)
    wait(
        f"{n} open-loop executions",
        lambda: Execution.objects.filter(id__in=ids, status__in=TERMINAL).count() == n,
        timeout=300,
        interval=0.1,
    )
    rows = {
        i: (started, ended)
        for i, started, ended in Execution.objects.filter(id__in=ids).values_list(
            "id", "started_at", "ended_at"
        )
    }
    statuses = Execution.objects.filter(id__in=ids).exclude(status="completed").count()
    if statuses:
        raise SystemExit(f"{statuses} open-loop executions did not complete")
    latencies = [rows[i][1].timestamp() - before for i, before in starter.started]
    to_started = [rows[i][0].timestamp() - before for i, before in starter.started]
    running = [rows[i][1].timestamp() - rows[i][0].timestamp() for i, _ in starter.started]
    first = starter.started[0][1]
    buckets: dict[int, list[float]] = {}
    for (_, before), latency in zip(starter.started, latencies, strict=True):
        buckets.setdefault(int((before - first) // 5), []).append(latency)
    return {
        "rate_per_second": round(rate, 2),
        "seconds": seconds,
        "achieved_start_rate": round(n / start_seconds, 2),
        "schedule_lateness_p99_ms": round(percentile(starter.late, 99) * 1000, 1),
        **stats_ms(latencies),
        "breakdown": {
            "start_call": stats_ms(starter.call_seconds),
            "before_start_to_started_at": stats_ms(to_started),
            "started_at_to_ended_at": stats_ms(running),
        },
        "per_5s": [{"from_s": k * 5, **stats_ms(v)} for k, v in sorted(buckets.items())],
    }


# --- part B: POST /execute through the gateway -----------------------------------------------------------


def make_token() -> str:
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    user = User.objects.create_user("bench-latency", is_staff=True, is_superuser=True)
    return str(Token.objects.create(user=user).key)


def ready(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/health/ready")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


class Client(threading.Thread):
    """Sends ``n`` POSTs back to back on one keep-alive connection (reopened if the server closes it)."""

    def __init__(self, port: int, token: str, n: int, barrier: threading.Barrier) -> None:
        super().__init__(daemon=True)
        self.port, self.n, self.barrier = port, n, barrier
        self.headers = {
            "Authorization": f"Token {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.ids: list[str] = []
        self.reconnects = 0
        self.errors: list[str] = []

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        path = f"/api/v1/workflows/{WORKFLOW}/execute"
        self.barrier.wait()
        for _ in range(self.n):
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, body=b"{}", headers=self.headers)
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as exc:
                # a keep-alive connection closed by the server: count it, reconnect, and send again
                self.reconnects += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                try:
                    conn.request("POST", path, body=b"{}", headers=self.headers)
                    response = conn.getresponse()
                    body = response.read()
                except (OSError, http.client.HTTPException) as again:
                    self.errors.append(f"{exc!r} then {again!r}")
                    continue
            self.latencies.append(time.perf_counter() - t0)
            self.statuses[response.status] = self.statuses.get(response.status, 0) + 1
            if 200 <= response.status < 300:
                self.ids.append(json.loads(body)["executionId"])
            if response.will_close:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                self.reconnects += 1
        conn.close()


def post_load(port: int, token: str, clients: int, requests: int) -> dict[str, Any]:
    barrier = threading.Barrier(clients + 1)
    threads = [Client(port, token, requests, barrier) for _ in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    latencies = [x for t in threads for x in t.latencies]
    statuses: dict[int, int] = {}
    for t in threads:
        for code, count in t.statuses.items():
            statuses[code] = statuses.get(code, 0) + count
    non_2xx = sum(c for code, c in statuses.items() if not 200 <= code < 300)
    errors = [e for t in threads for e in t.errors]
    return {
        "clients": clients,
        "requests_per_client": requests,
        "seconds": round(elapsed, 2),
        "per_second": round(len(latencies) / elapsed, 1),
        "non_2xx": non_2xx,
        "transport_errors": len(errors),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "reconnects": sum(t.reconnects for t in threads),
        **stats_ms(latencies),
        "_ids": [i for t in threads for i in t.ids],
        "_errors": errors[:5],
    }


# --- the run ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--burst", type=int, default=300, help="starts of the maximum-throughput burst")
    parser.add_argument("--rate", type=float, help="open-loop starts per second (default: half the maximum)")
    parser.add_argument("--seconds", type=float, default=40, help="length of the open-loop load")
    parser.add_argument("--concurrency", type=int, default=2, help="the worker's pool size")
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients of part B")
    parser.add_argument("--requests", type=int, default=150, help="POSTs per HTTP client")
    parser.add_argument("--skip-post", action="store_true", help="part A only")
    args = parser.parse_args()
    # SIGTERM (e.g. from a job runner) unwinds like Ctrl-C, so the cluster and servers are stopped
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    t_begin = time.perf_counter()
    summary: dict[str, Any] = {"concurrency": args.concurrency, "target_p95_ms": TARGET_P95_MS}
    with BenchEnv("latency") as env:
        from apps.workflows import client
        from apps.workflows.models import Execution

        client.create_workflow(definition("linear3"))
        env.cluster.start_coordinator()
        env.cluster.start_worker("w0", concurrency=args.concurrency)
        run_ours("linear3", 10)  # warm-up: shards owned, connections open, modules imported

        if args.rate is None:
            burst = run_ours("linear3", args.burst)
            max_rate = burst["per_second"]
            rate = max_rate / 2
            summary["max_throughput"] = {
                "runs": args.burst,
                "per_second": round(max_rate, 1),
                "seconds": round(burst["seconds"], 2),
            }
            print(
                f"maximum throughput: {max_rate:.1f}/s ({args.burst} in {burst['seconds']:.2f}s)", flush=True
            )
            time.sleep(2)  # let the worker settle after the burst
        else:
            rate = args.rate
            summary["max_throughput"] = None
        print(f"open loop at {rate:.1f}/s for {args.seconds:.0f}s ...", flush=True)
        summary["execute_to_completed"] = open_loop(rate, args.seconds)

        if not args.skip_post:
            token = make_token()
            port = free_port()
            env.cluster.start_gateway(port)
            wait("the gateway to be ready", lambda: ready(port), timeout=60, interval=0.2)
            post_load(port, token, 2, 10)  # warm-up: both gunicorn workers' connections and imports
            print(f"POST execute: {args.clients} clients x {args.requests} requests ...", flush=True)
            result = post_load(port, token, args.clients, args.requests)
            ids = result.pop("_ids")
            errors = result.pop("_errors")
            t0 = time.perf_counter()
            wait(
                f"{len(ids)} executions started over HTTP",
                lambda: Execution.objects.filter(id__in=ids, status__in=TERMINAL).count() == len(ids),
                timeout=600,
                interval=0.2,
            )
            result["drain_seconds_after_last_post"] = round(time.perf_counter() - t0, 2)
            result["not_completed"] = Execution.objects.filter(id__in=ids).exclude(status="completed").count()
            summary["post"] = result
            if errors:
                print("transport errors (first 5):", errors)
        summary["run_seconds"] = round(time.perf_counter() - t_begin, 1)
        path = env.write_result(summary)
    shutil.rmtree(env.workdir / "pg", ignore_errors=True)  # the servers are stopped; their data goes
    report(summary, path)


def report(summary: dict[str, Any], path: Path) -> None:
    a = summary["execute_to_completed"]
    print()
    if summary["max_throughput"]:
        m = summary["max_throughput"]
        print(f"maximum throughput (linear3): {m['per_second']}/s ({m['runs']} runs in {m['seconds']}s)")
    print(
        f"open loop at {a['rate_per_second']}/s for {a['seconds']:.0f}s ({a['count']} executions, starts "
        f"{a['achieved_start_rate']}/s, schedule lateness p99 {a['schedule_lateness_p99_ms']} ms)"
    )
    header = f"{'':<28} {'count':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    print(header)
    verdict = "ok" if a["p95_ms"] < TARGET_P95_MS else "OVER TARGET"
    print(
        f"{'execute -> completed':<28} {a['count']:>6} {a['p50_ms']:>8} {a['p95_ms']:>8} {a['p99_ms']:>8} "
        f"{a['max_ms']:>8}   target p95 < {TARGET_P95_MS:.0f} ms: {verdict}"
    )
    for what, row in a["breakdown"].items():
        print(
            f"{'  ' + what:<28} {row['count']:>6} {row['p50_ms']:>8} {row['p95_ms']:>8} {row['p99_ms']:>8} "
            f"{row['max_ms']:>8}"
        )
    b = summary.get("post")
    if b:
        print(
            f"{'POST execute (HTTP)':<28} {b['count']:>6} {b['p50_ms']:>8} {b['p95_ms']:>8} {b['p99_ms']:>8} "
            f"{b['max_ms']:>8}   {b['per_second']} req/s, {b['clients']} clients, non-2xx "
            f"{b['non_2xx']}, transport errors {b['transport_errors']}"
        )
        print(
            f"(the {b['count']} executions started over HTTP finished {b['drain_seconds_after_last_post']}s "
            f"after the last POST; {b['not_completed']} not completed)"
        )
    print(f"(run took {summary['run_seconds']}s; written to {path})")


if __name__ == "__main__":
    main()
