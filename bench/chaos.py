"""The fault campaign: random faults under a mixed workload, every history checked at the end.

    .venv/bin/python bench/chaos.py --duration 120 --seed 7

It starts its own PostgreSQL and Redis (devservices), one gateway, two coordinators and three Celery workers
at the test profile's fast liveness, and runs for ``--duration`` seconds:

- a workload thread starts executions through the gateway at ``--rate`` per second (``Idempotency-Key`` per
  run, so a start retried across a gateway fault starts one execution): linear with a delay, fan-out/fan-in
  with a ``celery.task`` node that fails its first attempt for half the executions (retried), one parked on
  ``wait.signal`` and one on ``approval``, both signalled by the workload. Every workflow ends in a
  ``db.write`` sink into a table of the campaign's PostgreSQL, unique on the attempt's idempotency key;
- a nemesis thread injects faults from a schedule drawn up front from ``random.Random(seed)`` and printed:
  the same seed replays the same faults at the same offsets (what the cluster does in between is not
  deterministic). Kinds: ``FAULT_KINDS``. Not yet in the schedule: network partitions, clock skew, Redis
  failover under Sentinel, PostgreSQL failover to a promoted replica, dropped wake-up messages.

At the end the faults stop, the executions drain (bounded), and the checker reads everything:
``tests/cluster/checker.py`` per execution (contiguous seq, head's last_seq, no epoch going back, one
WorkflowStarted, every node completed once, every accepted command applied once), the sink table (each run's
rows exactly once), and ``apps.workflows.services.invariants.scan()`` (no execution without a way forward,
no unowned shard, no overdue timer, no journal gap). It prints faults by kind, executions by outcome,
anomalies by kind (with the execution id and the seed), and recovery times per fault, and writes
``bench/results/chaos-<seed>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import secrets
import signal
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import psycopg  # noqa: E402
from common import BenchEnv, percentile, write_result  # noqa: E402

from devservices import free_port  # noqa: E402
from tests.cluster import checker  # noqa: E402  (the cluster scenarios' history checker)

# The test profile's liveness (tests/harness.py TEST_TUNABLES): a silent worker loses its shards after 2 s.
FAST = {
    "WORKFLOW_HEARTBEAT_INTERVAL": "500ms",
    "WORKFLOW_LIVENESS_TTL": "2s",
    "WORKFLOW_LEADER_LEASE_TTL": "3s",
    "WORKFLOW_RECONCILE_INTERVAL": "500ms",
    "WORKFLOW_SNAPSHOT_EVERY": "10",
}
LIVENESS_TTL = 2.0
TOKEN = secrets.token_hex(20)
WORKERS = ("w0", "w1", "w2")
COORDINATORS = ("c0", "c1")
SINK_TABLE = "chaos_sink"
WARMUP = 8.0  # seconds of workload before the first fault
FAULT_KINDS = (
    "kill_worker",
    "pause_worker",
    "kill_leader",
    "kill_gateway",
    "restart_redis",
    "wipe_redis",
    "restart_postgres",
    "duplicate_wakeups",
)
NOT_YET = (
    "network partition of a worker",
    "clock skew on a worker",
    "Redis failover under Sentinel",
    "PostgreSQL failover to a promoted replica",
    "dropped wake-up messages",
)


# --------------------------------------------------------------------------------------------- schedule


def schedule(seed: int, duration: float) -> list[dict[str, Any]]:
    """Every fault of the campaign, drawn before anything runs: offset, kind and its parameters."""
    rng = random.Random(seed)
    faults: list[dict[str, Any]] = []
    at = WARMUP
    while True:
        at += rng.uniform(4.0, 10.0)
        if at > duration - 5:
            return faults
        kind = rng.choice(FAULT_KINDS)
        fault: dict[str, Any] = {"at": round(at, 2), "kind": kind}
        if kind in ("kill_worker", "pause_worker"):
            fault["worker"] = rng.choice(WORKERS)
        if kind == "pause_worker":
            fault["pause"] = round(LIVENESS_TTL + rng.uniform(1.0, 4.0), 2)
        if kind in ("kill_worker", "kill_leader", "kill_gateway", "restart_redis", "wipe_redis"):
            fault["down"] = round(rng.uniform(0.5, 3.0), 2)
        if kind == "restart_postgres":
            fault["down"] = round(rng.uniform(0.5, 2.0), 2)
        if kind == "duplicate_wakeups":
            fault["executions"] = rng.randint(3, 10)
        faults.append(fault)


# --------------------------------------------------------------------------------------------- workflows


def node(node_id: str, node_type: str, kind: str, **config: Any) -> dict[str, Any]:
    return {"id": node_id, "type": kind, "nodeType": node_type, "config": config}


def sink() -> dict[str, Any]:
    # no ``key``: each row is keyed by its attempt ({execution}:{node}:{attempt}:{index}), so a re-run of one
    # attempt writes nothing twice, and a second attempt's rows would show up as duplicates in the check
    return node("save", "db.write", "sink", connection="warehouse", table=SINK_TABLE)


def body(workflow_id: str, nodes: list[dict[str, Any]], edges: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "id": workflow_id,
        "name": workflow_id,
        "nodes": nodes,
        "edges": [{"id": f"e{i}", "source": s, "target": t} for i, (s, t) in enumerate(edges)],
    }


FLAKY_RETRY = {"maxAttempts": 4, "backoff": "fixed", "initialInterval": "500ms"}

# workflow id -> (definition, the ``k`` values its sink writes per run)
WORKFLOWS: dict[str, tuple[dict[str, Any], list[int]]] = {
    "chaos-linear": (
        body(
            "chaos-linear",
            [
                node("in", "execution.input", "source"),
                node("one", "map", "transform", fields={"k": "1"}),
                node("nap", "delay", "transform", duration="1s"),
                sink(),
            ],
            [("in", "one"), ("one", "nap"), ("nap", "save")],
        ),
        [1],
    ),
    "chaos-fan": (
        body(
            "chaos-fan",
            [
                node("in", "execution.input", "source"),
                node("a", "map", "transform", fields={"k": "1"}),
                node("b", "map", "transform", fields={"k": "2"}),
                {**node("c", "celery.task", "transform", task="chaos.flaky"), "retry": FLAKY_RETRY},
                sink(),
            ],
            [("in", "a"), ("in", "b"), ("in", "c"), ("a", "save"), ("b", "save"), ("c", "save")],
        ),
        [1, 2, 3],
    ),
    "chaos-signal": (
        body(
            "chaos-signal",
            [
                node("in", "execution.input", "source"),
                node("two", "map", "transform", fields={"k": "2"}),
                node("go", "wait.signal", "transform", name="go"),
                sink(),
            ],
            [("in", "two"), ("in", "go"), ("two", "save"), ("go", "save")],
        ),
        [1, 2],
    ),
    "chaos-approval": (
        body(
            "chaos-approval",
            [
                node("in", "execution.input", "source"),
                node("ok", "approval", "transform", name="approve"),
                node("one", "map", "transform", fields={"k": "1"}),
                sink(),
            ],
            [("in", "ok"), ("ok", "one"), ("one", "save")],
        ),
        [1],
    ),
}


# --------------------------------------------------------------------------------------------- HTTP


def call(base: str, path: str, payload: Any, key: str) -> tuple[int, Any]:
    """POST through the gateway; 0 when it does not answer (killed, restarting, PostgreSQL down)."""
    request = urllib.request.Request(base + path, data=json.dumps(payload).encode(), method="POST")
    request.add_header("Authorization", f"Token {TOKEN}")
    request.add_header("Content-Type", "application/json")
    request.add_header("Idempotency-Key", key)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()[:300].decode(errors="replace")
    except OSError as exc:
        return 0, repr(exc)


# --------------------------------------------------------------------------------------------- workload


@dataclass
class Run:
    workflow_id: str
    execution_id: str | None = None
    signals: list[tuple[str, Any]] = field(default_factory=list)  # (name, payload) still to send


class Workload(threading.Thread):
    """Starts runs at a steady rate, round-robin over the workflows, and sends their signals; every call
    is retried (same Idempotency-Key) until the gateway answers."""

    def __init__(self, base: str, rate: float) -> None:
        super().__init__(daemon=True, name="workload")
        self.base, self.rate = base, rate
        self.stopped = threading.Event()
        self.runs: dict[str, Run] = {}
        self.refused: Counter[str] = Counter()  # non-retryable answers, by status

    def run(self) -> None:
        kinds = list(WORKFLOWS)
        n = 0
        next_at = time.monotonic()
        while not self.stopped.is_set():
            if time.monotonic() >= next_at:
                rid = f"r{n:05d}-{uuid.uuid4().hex[:6]}"
                self.runs[rid] = Run(kinds[n % len(kinds)])
                n += 1
                next_at += 1 / self.rate
            self.pump()
            time.sleep(0.05)

    def pump(self) -> None:
        """One try for each run not started yet, and for each signal not yet accepted."""
        for rid, run in list(self.runs.items()):
            if run.execution_id is None:
                self.start_run(rid, run)
            elif run.signals:
                self.send_signal(rid, run)

    def pending(self) -> int:
        return sum(1 for r in self.runs.values() if r.execution_id is None or r.signals)

    def start_run(self, rid: str, run: Run) -> None:
        status, answer = call(
            self.base, f"/api/v1/workflows/{run.workflow_id}/execute", {"input": {"run": rid}}, f"start-{rid}"
        )
        if status == 200 and answer.get("executionId"):
            run.execution_id = answer["executionId"]
            if run.workflow_id == "chaos-signal":
                run.signals = [("go", {"run": rid, "k": 1})]
            elif run.workflow_id == "chaos-approval":
                run.signals = [("approve", {"comment": "chaos"})]
        elif status not in (0, 502, 503, 504):
            self.refused[f"start {status}"] += 1
            del self.runs[rid]

    def send_signal(self, rid: str, run: Run) -> None:
        name, payload = run.signals[0]
        status, _ = call(
            self.base, f"/api/v1/executions/{run.execution_id}/signals/{name}", payload, f"{name}-{rid}"
        )
        if status in (200, 201, 202):
            run.signals.pop(0)
        elif status not in (0, 502, 503, 504):
            self.refused[f"signal {status}"] += 1
            run.signals.pop(0)


# --------------------------------------------------------------------------------------------- campaign


class Campaign:
    """The servers, the processes, and the probes the nemesis and the checker need."""

    def __init__(self, env: BenchEnv) -> None:
        self.env = env
        self.cluster = env.cluster
        self.procs: dict[str, Any] = {}
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.dsn = env.pg.url("bench")

    def start_all(self) -> None:
        for name in COORDINATORS:
            self.procs[name] = self.cluster.start_coordinator(name)
        for name in WORKERS:
            self.procs[name] = self.cluster.start_worker(name, concurrency=2)
        self.procs["gateway"] = self.cluster.start_gateway(self.port)
        self.wait_gateway(60)

    def restart(self, name: str) -> None:
        if name == "gateway":
            self.procs[name] = self.cluster.start_gateway(self.port)
        elif name in COORDINATORS:
            self.procs[name] = self.cluster.start_coordinator(name)
        else:
            self.procs[name] = self.cluster.start_worker(name, concurrency=2)

    def wait_gateway(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), urllib.request.urlopen(self.base + "/health/live", timeout=2):
                return
            time.sleep(0.2)
        raise SystemExit("the gateway did not come up")

    def rows(self, query: str, params: Any = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn, connect_timeout=5, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()

    def try_rows(self, query: str, params: Any = ()) -> list[tuple[Any, ...]] | None:
        try:
            return self.rows(query, params)
        except psycopg.Error:
            return None

    def live_members(self) -> set[str] | None:
        from workflow_engine import redis_client

        try:
            client = redis_client.connect(self.env.redis.url(0), socket_timeout=2, socket_connect_timeout=2)
            keys = client.keys("wfe:member:*")
        except Exception:  # Redis is down or restarting: not ready, ask again
            return None
        return {(k.decode() if isinstance(k, bytes) else k).removeprefix("wfe:member:") for k in keys}

    def all_shards_owned(self) -> bool:
        leases = self.try_rows("SELECT owner, state FROM cluster_shardlease")
        live = self.live_members()
        if not leases or live is None:
            return False
        return all(owner in live and state == "assigned" for owner, state in leases)

    def active(self, worker: str | None = None) -> list[str]:
        """Pending or running executions (of the shards ``worker`` owns, when given)."""
        if worker is None:
            found = self.try_rows("SELECT id FROM workflows_execution WHERE status IN ('pending', 'running')")
        else:
            found = self.try_rows(
                "SELECT e.id FROM workflows_execution e JOIN cluster_shardlease l ON l.shard_id = e.shard_id "
                "JOIN cluster_clustermember m ON m.member_id = l.owner "
                "WHERE e.status IN ('pending', 'running') AND m.name = %s",
                [worker],
            )
        return [r[0] for r in found or []]

    def leader(self) -> str | None:
        found = self.try_rows("SELECT leader FROM cluster_coordinatorterm WHERE id = 1")
        return str(found[0][0]).split(":")[0] if found and found[0][0] else None


# --------------------------------------------------------------------------------------------- nemesis


class Nemesis(threading.Thread):
    """Injects the scheduled faults one after the other, each at its offset from the campaign's start."""

    def __init__(self, campaign: Campaign, faults: list[dict[str, Any]], started: float) -> None:
        super().__init__(daemon=True, name="nemesis")
        self.c, self.faults, self.started = campaign, faults, started
        self.stopped = threading.Event()
        self.done: list[dict[str, Any]] = []

    def run(self) -> None:
        for fault in self.faults:
            if self.stopped.wait(max(0.0, self.started + fault["at"] - time.monotonic())):
                return
            record = {**fault, "wall": time.time()}
            try:
                getattr(self, fault["kind"])(fault, record)
            except Exception as exc:  # a fault that could not be injected is reported, not fatal
                record["error"] = repr(exc)
            record["shards_owned_after"] = self.shards_owned_after(record["wall"])
            print(f"  t+{fault['at']:6.1f}s {self.describe(record)}", flush=True)
            self.done.append(record)

    def shards_owned_after(self, wall: float, timeout: float = 30) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.c.all_shards_owned():
                return round(time.time() - wall, 2)
            time.sleep(0.2)
        return None

    @staticmethod
    def describe(record: dict[str, Any]) -> str:
        shown = {k: v for k, v in record.items() if k not in ("at", "kind", "wall", "affected")}
        return f"{record['kind']:<18} {shown} affected={len(record.get('affected', []))}"

    def kill_worker(self, fault: dict[str, Any], record: dict[str, Any]) -> None:
        record["affected"] = self.c.active(fault["worker"])
        self.c.procs[fault["worker"]].kill()
        time.sleep(fault["down"])
        self.c.restart(fault["worker"])

    def pause_worker(self, fault: dict[str, Any], record: dict[str, Any]) -> None:
        record["affected"] = self.c.active(fault["worker"])
        proc = self.c.procs[fault["worker"]]
        proc.signal(signal.SIGSTOP)
        time.sleep(fault["pause"])
        proc.signal(signal.SIGCONT)

    def kill_leader(self, fault: dict[str, Any], record: dict[str, Any]) -> None:
        name = self.c.leader()
        if name not in COORDINATORS:
            raise RuntimeError(f"no leader coordinator to kill (term says {name!r})")
        record["victim"] = name
        record["affected"] = self.c.active()
        self.c.procs[name].kill()
        time.sleep(fault["down"])
        self.c.restart(name)

    def kill_gateway(self, fault: dict[str, Any], record: dict[str, Any]) -> None:
        self.c.procs["gateway"].kill()
        time.sleep(fault["down"])
        self.c.restart("gateway")
        self.c.wait_gateway(60)

    def restart_redis(self, fault: dict[str, Any], record: dict[str, Any], wipe: bool = False) -> None:
        record["affected"] = self.c.active()
        self.c.env.redis.stop()
        if wipe:
            self.c.env.redis.wipe_data()
        time.sleep(fault["down"])
        self.c.env.redis.start()

    def wipe_redis(self, fault: dict[str, Any], record: dict[str, Any]) -> None:
        self.restart_redis(fault, record, wipe=True)

    def restart_postgres(self, fault: dict[str, Any], record: dict[str, Any]) -> None:
        record["affected"] = self.c.active()
        self.c.env.pg.stop()
        time.sleep(fault["down"])
        self.c.env.pg.start()

    def duplicate_wakeups(self, fault: dict[str, Any], record: dict[str, Any]) -> None:
        from workflow_engine import messaging

        found = self.c.rows(
            "SELECT id, shard_id FROM workflows_execution WHERE status IN ('pending', 'running') "
            "ORDER BY id LIMIT %s",
            [fault["executions"]],
        )
        record["affected"] = [execution_id for execution_id, _ in found]
        for execution_id, shard_id in found:
            for _ in range(2):  # the same hint twice: the owner must apply each command once
                messaging.apply_commands(execution_id, shard_id)
            messaging.apply_shard(shard_id)


# --------------------------------------------------------------------------------------------- checks


def drain(c: Campaign, workload: Workload, timeout: float) -> float:
    """Finish the workload's pending starts and signals, then wait for every execution to end."""
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        workload.pump()
        if not workload.pending() and not c.active():
            break
        time.sleep(0.5)
    return time.monotonic() - started


PROBLEM_KINDS = (
    ("not contiguous", "journal_gap"),
    ("head last_seq", "head_last_seq_mismatch"),
    ("stale owner", "two_owners_in_one_epoch_order"),
    ("expected 'completed'", "wrong_end_state"),
    ("WorkflowCompleted", "wrong_end_state"),
    ("WorkflowStarted", "started_twice"),
    ("NodeExecutionCompleted", "node_completed_not_once"),
    ("not applied", "command_not_applied"),
    ("appears at seqs", "command_applied_not_once"),
    ("after processed_seq", "command_event_after_processed_seq"),
)


def classify(problem: str) -> str:
    return next((kind for needle, kind in PROBLEM_KINDS if needle in problem), "history_other")


def check(c: Campaign, workload: Workload, seed: int) -> tuple[list[dict[str, Any]], Counter[str]]:
    """Every anomaly, by kind with its execution id; and the executions by outcome."""
    anomalies: list[dict[str, Any]] = []

    def add(kind: str, execution_id: str | None, detail: str) -> None:
        anomalies.append({"kind": kind, "execution_id": execution_id, "seed": seed, "detail": detail[:500]})

    runs = {rid: run for rid, run in workload.runs.items() if run.execution_id}
    ids = [run.execution_id for run in runs.values() if run.execution_id]
    history = checker.load(c.dsn, ids)
    for execution_id in sorted(set(ids) - set(history.executions)):
        add("lost_execution", execution_id, "accepted by the API but not in the database")
    checked_types = {"start", *checker._OUTCOME_EVENT}
    for execution_id, head in sorted(history.executions.items()):
        events = history.events.get(execution_id, [])
        commands = history.commands.get(execution_id, [])
        problems = checker._journal(execution_id, head, events)
        # signals and timers have no one-event counterpart the checker knows; they must be applied still
        problems += checker._commands(
            execution_id, [k for k in commands if k["type"] in checked_types], events
        )
        problems += [
            f"execution {execution_id} command {k['id']!r} ({k['type']}): not applied"
            for k in commands
            if k["type"] not in checked_types and k["processed_at"] is None
        ]
        for problem in problems:
            add(classify(problem), execution_id, problem)
    outcomes = Counter(head["status"] for head in history.executions.values())
    check_sinks(c, runs, add)
    check_invariants(add)
    return anomalies, outcomes


def check_sinks(c: Campaign, runs: dict[str, Run], add: Any) -> None:
    """Each run's sink rows: exactly its ``k`` values, each once."""
    written: dict[str, list[int]] = defaultdict(list)
    with psycopg.connect(c.env.pg.url("warehouse"), autocommit=True) as conn:
        rows = conn.execute(f"SELECT run, k FROM {SINK_TABLE}").fetchall()
    for run_id, k in rows:
        written[run_id].append(int(k))
    for rid, run in runs.items():
        expected = WORKFLOWS[run.workflow_id][1]
        got = sorted(written.get(rid, []))
        if got == expected:
            continue
        kind = "sink_duplicated" if len(got) > len(set(got)) else "sink_missing"
        add(kind, run.execution_id, f"run {rid} ({run.workflow_id}): sink rows k={got}, expected {expected}")


def check_invariants(add: Any) -> None:
    from django.db import connection

    from apps.workflows.services import invariants

    connection.close()  # PostgreSQL may have restarted under this process's connection
    report = invariants.scan()
    for finding in report.findings:
        add(f"invariant:{finding.kind}", finding.execution_id or None, finding.detail)


# --------------------------------------------------------------------------------------------- report


def recovery(c: Campaign, done: list[dict[str, Any]]) -> None:
    """For each fault: the seconds from the fault to the first journal event after it, of each execution
    that was active when it struck (p50 and max: max is when every affected execution moved again)."""
    for record in done:
        affected = record.get("affected") or []
        if not affected:
            record["progress_p50"] = record["progress_max"] = None
            continue
        rows = c.rows(
            "SELECT execution_id, min(created_at) FROM workflows_event "
            "WHERE execution_id = ANY(%s) AND created_at > to_timestamp(%s) GROUP BY execution_id",
            [affected, record["wall"]],
        )
        gaps = [first.timestamp() - record["wall"] for _, first in rows]
        record["moved_again"] = f"{len(gaps)}/{len(affected)}"
        record["progress_p50"] = round(statistics.median(gaps), 2) if gaps else None
        record["progress_max"] = round(max(gaps), 2) if gaps else None


def report(
    seed: int,
    args: argparse.Namespace,
    faults: list[dict[str, Any]],
    done: list[dict[str, Any]],
    outcomes: Counter[str],
    anomalies: list[dict[str, Any]],
    workload: Workload,
    drained: float,
) -> dict[str, Any]:
    print(f"\nfault campaign, seed {seed}, {args.duration:.0f} s, {args.rate}/s")
    print(f"\n{'fault':<18} {'injected':>8} {'shards owned p50/max (s)':>25} {'moved again p50/max (s)':>24}")
    per_kind: dict[str, dict[str, Any]] = {}
    for kind in FAULT_KINDS:
        mine = [r for r in done if r["kind"] == kind]
        owned = [r["shards_owned_after"] for r in mine if r.get("shards_owned_after") is not None]
        moved = [r["progress_max"] for r in mine if r.get("progress_max") is not None]
        per_kind[kind] = {
            "injected": len(mine),
            "errors": sum(1 for r in mine if "error" in r),
            "shards_owned_p50": round(percentile(owned, 50), 2) if owned else None,
            "shards_owned_max": round(max(owned), 2) if owned else None,
            "moved_again_p50": round(percentile(moved, 50), 2) if moved else None,
            "moved_again_max": round(max(moved), 2) if moved else None,
        }
        k = per_kind[kind]
        print(
            f"{kind:<18} {k['injected']:>8} {k['shards_owned_p50']!s:>12}/{k['shards_owned_max']!s:<12}"
            f" {k['moved_again_p50']!s:>11}/{k['moved_again_max']!s:<12}"
        )
    print(f"(not yet in the schedule: {', '.join(NOT_YET)})")
    print("\nexecutions by outcome: " + ", ".join(f"{s} {n}" for s, n in sorted(outcomes.items())))
    print(
        f"runs started {sum(1 for r in workload.runs.values() if r.execution_id)}; drained in {drained:.1f} s"
    )
    if workload.refused:
        print(f"refused calls: {dict(workload.refused)}")
    by_kind = Counter(a["kind"] for a in anomalies)
    print(f"\nanomalies: {len(anomalies)}" + (f" {dict(by_kind)}" if by_kind else ""))
    for a in anomalies[:40]:
        print(f"  [{a['kind']}] seed {seed} execution {a['execution_id']}: {a['detail'][:200]}")
    return {
        "seed": seed,
        "duration_seconds": args.duration,
        "rate_per_second": args.rate,
        "schedule": faults,
        "faults": [{k: v for k, v in r.items() if k != "affected"} for r in done],
        "faults_by_kind": per_kind,
        "not_yet_in_schedule": list(NOT_YET),
        "executions_by_outcome": dict(outcomes),
        "drain_seconds": round(drained, 1),
        "refused_calls": dict(workload.refused),
        "anomalies_by_kind": dict(by_kind),
        "anomalies": anomalies,
        "settings": "1 gateway, 2 coordinators, 3 workers (concurrency 2); test-profile liveness "
        + str(FAST),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=120, help="seconds of faults and workload")
    parser.add_argument("--seed", type=int, default=None, help="the schedule's seed (random when omitted)")
    parser.add_argument("--rate", type=float, default=2.0, help="executions started per second")
    parser.add_argument("--drain", type=float, default=180, help="most seconds to wait for the end")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1_000_000)
    faults = schedule(seed, args.duration)
    print(f"seed {seed}: {len(faults)} faults scheduled over {args.duration:.0f} s", flush=True)
    for fault in faults:
        print(f"  {json.dumps(fault)}")
    env = BenchEnv(
        f"chaos-{seed}",
        extra_env={
            **FAST,
            "WORKFLOW_MIN_NR_OF_MEMBERS": "3",
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "WORKFLOW_CELERY_IMPORTS": "bench.chaos_tasks",
            "WORKFLOW_CELERY_TASKS": "*",
        },
    )
    env.extra_env["WORKFLOW_CONNECTION_WAREHOUSE"] = env.pg.url("warehouse")
    with env:
        summary = campaign(env, seed, args, faults)
    path = write_result(f"chaos-{seed}", summary)
    print(f"written to {path}")
    if summary["anomalies"]:
        print(f"logs kept in {env.workdir}")
        raise SystemExit(1)


def campaign(
    env: BenchEnv, seed: int, args: argparse.Namespace, faults: list[dict[str, Any]]
) -> dict[str, Any]:
    from tests.harness import migrate_with_token

    env.pg.ensure_database("warehouse")
    with psycopg.connect(env.pg.url("warehouse"), autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {SINK_TABLE} (run text, k integer, _idempotency_key text UNIQUE)")
    migrate_with_token(env.pg.url("bench"), TOKEN, "chaos")
    from apps.workflows.services import definitions

    for definition, _ in WORKFLOWS.values():
        definitions.create(definition)
    c = Campaign(env)
    c.start_all()
    deadline = time.monotonic() + 90
    while not c.all_shards_owned():
        if time.monotonic() > deadline:
            raise SystemExit("the workers did not take the shards")
        time.sleep(0.3)
    workload = Workload(c.base, args.rate)
    started = time.monotonic()
    nemesis = Nemesis(c, faults, started)
    workload.start()
    nemesis.start()
    print("faults:", flush=True)
    nemesis.join(timeout=args.duration + 120)
    time.sleep(max(0.0, started + args.duration - time.monotonic()))
    nemesis.stopped.set()
    nemesis.join()
    workload.stopped.set()
    workload.join()
    for name, proc in list(c.procs.items()):  # a fault that failed half-way may leave one down
        if not proc.alive():
            c.restart(name)
    drained = drain(c, workload, args.drain)
    anomalies, outcomes = check(c, workload, seed)
    recovery(c, nemesis.done)
    return report(seed, args, faults, nemesis.done, outcomes, anomalies, workload, drained)


if __name__ == "__main__":
    main()
