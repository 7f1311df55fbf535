"""The fault campaign: random faults under a mixed workload, every history checked at the end.

    .venv/bin/python bench/chaos.py --duration 120 --seed 7

It starts its own PostgreSQL and Redis (devservices), one gateway, two coordinators and three Celery workers
at the test profile's fast liveness, and runs for ``--duration`` seconds:

- a workload thread (``bench/chaos_workload.py``) starts executions through the gateway at ``--rate`` per
  second (``Idempotency-Key`` per run, so a start retried across a gateway fault starts one execution):
  linear with a delay, fan-out/fan-in with a ``celery.task`` node that fails its first attempt for half the
  executions (retried), one parked on ``wait.signal`` and one on ``approval``, both signalled by the
  workload. Every workflow ends in a ``db.write`` sink into a table of the campaign's PostgreSQL, unique on
  the attempt's idempotency key. Fixed-rate schedules of a few seconds fire through it all
  (``bench/chaos_schedules.py``);
- a nemesis thread injects faults from a schedule drawn up front from ``random.Random(seed)`` and printed:
  the same seed replays the same faults at the same offsets (what the cluster does in between is not
  deterministic). Kinds: ``FAULT_KINDS``; ``--kinds`` keeps a subset, and ``--round-robin`` cycles through
  them in an order drawn from the seed (so a short run injects every kind it names). ``--ha`` runs Redis
  under Sentinel and PostgreSQL with a synchronous standby (``bench/chaos_ha.py``), for the kinds
  ``sentinel_failover`` and ``promote_replica`` (at most one promotion per campaign); the plain Redis
  restarts are then out. ``skew_clock`` restarts a worker under libfaketime (its wall clock off by up to a
  minute, either way) until a later fault restarts it. ``--netns`` starts one worker inside a network
  namespace (``bench/chaos_partition.py``), for ``partition_worker``: its link cut past the liveness TTL,
  then restored (not with ``--ha``, whose sentinels listen on loopback only).

At the end the faults stop, the executions drain (bounded), and the checker reads everything:
``tests/cluster/checker.py`` per execution (contiguous seq, head's last_seq, no epoch going back, one
WorkflowStarted, every node completed once, every accepted command applied once), the sink table (each run's
rows exactly once), the schedules (each fire time once, none missed, each run completed), and
``apps.workflows.services.invariants.scan()`` (no execution without a way forward, no unowned shard, no
overdue timer, no journal gap). It prints faults by kind, executions by outcome,
anomalies by kind (with the execution id and the seed), and recovery times per fault, and writes
``bench/results/chaos-<seed>.json`` (or ``--json-out``). It exits 1 when it found an anomaly.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import signal
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import chaos_schedules  # noqa: E402
import psycopg  # noqa: E402
from chaos_ha import Ha  # noqa: E402
from chaos_partition import WORKER as NETNS_WORKER  # noqa: E402
from chaos_partition import Netns  # noqa: E402
from chaos_workload import FILE_SINK, SINK_TABLE, TOKEN, WORKFLOWS, Run, Workload  # noqa: E402
from common import BenchEnv, percentile, write_result  # noqa: E402

from apps.workflows.engine import history  # noqa: E402  (the history rules, shared with check_invariants)
from devservices import free_port  # noqa: E402
from tests.cluster import checker  # noqa: E402  (loads the histories, as for the cluster scenarios)

# The test profile's liveness (tests/harness.py TEST_TUNABLES): a silent worker loses its shards after 2 s.
FAST = {
    "WORKFLOW_HEARTBEAT_INTERVAL": "500ms",
    "WORKFLOW_LIVENESS_TTL": "2s",
    "WORKFLOW_LEADER_LEASE_TTL": "3s",
    "WORKFLOW_RECONCILE_INTERVAL": "500ms",
    "WORKFLOW_SNAPSHOT_EVERY": "10",
}
LIVENESS_TTL = 2.0
WORKERS = ("w0", "w1", "w2")
COORDINATORS = ("c0", "c1")
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
    "drop_wakeups",
    "sentinel_failover",
    "promote_replica",
    "skew_clock",
    "partition_worker",
)
HA_ONLY = ("sentinel_failover", "promote_replica")  # need --ha's Sentinel and standby
PLAIN_ONLY = ("restart_redis", "wipe_redis")  # a single redis-server to restart (under --ha, Sentinel's)
ONCE = ("promote_replica",)  # no standby is rebuilt after a promotion
NETNS_ONLY = ("partition_worker",)  # need --netns's namespace
NOT_YET: tuple[str, ...] = ()
# Debian's libfaketime: the wall clock of a process (and its children) moved by FAKETIME; the monotonic clock
# is left alone, as NTP would (a skewed host's timeouts still run at the right speed)
FAKETIME_LIBS = sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))


def available_kinds(ha: bool, netns: bool = False) -> tuple[str, ...]:
    left_out = (PLAIN_ONLY if ha else HA_ONLY) + (() if netns else NETNS_ONLY)
    return tuple(k for k in FAULT_KINDS if k not in left_out)


# --------------------------------------------------------------------------------------------- schedule


def schedule(
    seed: int,
    duration: float,
    kinds: tuple[str, ...] = FAULT_KINDS,
    round_robin: bool = False,
    spacing: tuple[float, float] = (4.0, 10.0),
) -> list[dict[str, Any]]:
    """Every fault of the campaign, drawn before anything runs: offset, kind and its parameters.

    ``round_robin`` takes the kinds in turn, in an order shuffled by the seed, instead of at random."""
    rng = random.Random(seed)
    order = rng.sample(kinds, len(kinds)) if round_robin else []
    faults: list[dict[str, Any]] = []
    at = WARMUP
    while True:
        at += rng.uniform(*spacing)
        if at > duration - 5:
            return faults
        kind = order[len(faults) % len(order)] if round_robin else rng.choice(kinds)
        if kind in ONCE and any(f["kind"] == kind for f in faults):
            order = [k for k in order if k != kind]  # round robin: on with the others
            if not round_robin or not order:
                continue
            kind = order[len(faults) % len(order)]
        faults.append({"at": round(at, 2), "kind": kind, **parameters(kind, rng)})


def parameters(kind: str, rng: random.Random) -> dict[str, Any]:
    """What one fault of ``kind`` is drawn with: its victim, and how long it lasts or how far it goes."""
    if kind == "pause_worker":  # past the liveness TTL: its shards must move
        return {"worker": rng.choice(WORKERS), "pause": round(LIVENESS_TTL + rng.uniform(1.0, 4.0), 2)}
    if kind == "partition_worker":  # the one in the namespace, past the liveness TTL
        return {"down": round(LIVENESS_TTL + rng.uniform(1.0, 4.0), 2)}
    if kind == "kill_worker":
        return {"worker": rng.choice(WORKERS), "down": round(rng.uniform(0.5, 3.0), 2)}
    if kind in ("kill_leader", "kill_gateway", "restart_redis", "wipe_redis"):
        return {"down": round(rng.uniform(0.5, 3.0), 2)}
    if kind == "restart_postgres":
        return {"down": round(rng.uniform(0.5, 2.0), 2)}
    if kind == "duplicate_wakeups":
        return {"executions": rng.randint(3, 10)}
    if kind == "skew_clock":
        return {"worker": rng.choice(WORKERS), "offset": rng.choice((-1, 1)) * rng.randint(5, 60)}
    if kind == "drop_wakeups":  # under the liveness TTL: the workers are stopped meanwhile, none may go
        return {"hold": round(rng.uniform(0.5, LIVENESS_TTL - 0.5), 2)}
    return {}  # sentinel_failover, promote_replica


# --------------------------------------------------------------------------------------------- campaign


class Campaign:
    """The servers, the processes, and the probes the nemesis and the checker need."""

    def __init__(self, env: BenchEnv, ha: Ha | None, netns: Netns | None) -> None:
        self.env, self.ha, self.netns = env, ha, netns
        self.cluster = env.cluster
        self.procs: dict[str, Any] = {}
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.dsn = ha.pg_url("bench") if ha else env.pg.url("bench")
        self.warehouse_dsn = ha.pg_url("warehouse") if ha else env.pg.url("warehouse")
        self.redis_url = ha.sentinels.url() if ha else env.redis.url(0)
        self.schedule_ids: list[str] = []
        self.schedules_stopped: Any = None  # when the schedules were stopped (a datetime)
        self.schedule_fires: dict[str, int] = {}

    def start_all(self) -> None:
        for name in COORDINATORS:
            self.procs[name] = self.cluster.start_coordinator(name)
        for name in WORKERS:
            self.restart(name)
        self.procs["gateway"] = self.cluster.start_gateway(self.port)
        self.wait_gateway(60)

    def restart(self, name: str) -> None:
        if name == "gateway":
            self.procs[name] = self.cluster.start_gateway(self.port)
        elif name in COORDINATORS:
            self.procs[name] = self.cluster.start_coordinator(name)
        else:
            self.start_worker(name)

    def start_worker(self, name: str, env: dict[str, str] | None = None) -> None:
        """The worker ``name``; with ``--netns``, the one in the namespace started there."""
        if self.netns is not None and name == NETNS_WORKER:
            env = {**self.netns.worker_env(self.env), **(env or {})}
            wrap = self.netns.wrap
        else:
            wrap = []
        self.procs[name] = self.cluster.start_worker(name, concurrency=2, env=env, wrap=wrap)

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
            client = redis_client.connect(self.redis_url, socket_timeout=2, socket_connect_timeout=2)
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
            restarted = self.supervise()
            if restarted:
                record["restarted_first"] = restarted
            try:
                getattr(self, fault["kind"])(fault, record)
            except Exception as exc:  # a fault that could not be injected is reported, not fatal
                record["error"] = repr(exc)
            record["shards_owned_after"] = self.shards_owned_after(record["wall"])
            print(f"  t+{fault['at']:6.1f}s {self.describe(record)}", flush=True)
            self.done.append(record)

    def supervise(self) -> list[str]:
        """As ``run_node`` or systemd would: a process that exited by itself since the last fault (none is
        down between two faults otherwise) is started again. The names, counted in the report."""
        exited = [name for name, proc in self.c.procs.items() if not proc.alive()]
        for name in exited:
            self.c.restart(name)
        return exited

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

    def skew_clock(self, fault: dict[str, Any], record: dict[str, Any]) -> None:
        """Restart the worker with its wall clock ``offset`` seconds off (it stays so until a later fault
        restarts it): the engine's deadlines and fencing go by PostgreSQL's clock, not the worker's."""
        if not FAKETIME_LIBS:
            raise RuntimeError("libfaketime is not installed (Debian package libfaketime)")
        name = fault["worker"]
        record["affected"] = self.c.active(name)
        self.c.procs[name].stop()
        skewed = {
            "LD_PRELOAD": str(FAKETIME_LIBS[0]),
            "FAKETIME": f"{fault['offset']:+.0f}",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }
        self.c.start_worker(name, env=skewed)

    def partition_worker(self, fault: dict[str, Any], record: dict[str, Any]) -> None:
        assert self.c.netns is not None
        record["affected"] = self.c.active(NETNS_WORKER)
        self.c.netns.link("down")
        try:
            time.sleep(fault["down"])
        finally:
            self.c.netns.link("up")

    def sentinel_failover(self, fault: dict[str, Any], record: dict[str, Any]) -> None:
        assert self.c.ha is not None
        record["affected"] = self.c.active()
        old, new = self.c.ha.failover_redis()
        record["master"] = f"{old}->{new}"

    def promote_replica(self, fault: dict[str, Any], record: dict[str, Any]) -> None:
        assert self.c.ha is not None
        record["affected"] = self.c.active()
        self.c.ha.promote_standby()

    def drop_wakeups(self, fault: dict[str, Any], record: dict[str, Any]) -> None:
        """Delete the wake-ups waiting in Redis: the ``wf.shard.<n>`` queues' messages and the executions
        queued at the shards' doorbells. The commands they announced are in PostgreSQL, so the owners must
        find them without the hint (the sweeper). The workers are stopped for ``hold`` seconds (under the
        liveness TTL, so no shard moves) to let hints pile up: a running consumer takes each within
        milliseconds."""
        from workflow_engine import redis_client

        record["affected"] = self.c.active()
        client = redis_client.connect(self.c.redis_url, socket_timeout=2, socket_connect_timeout=2)
        workers = [self.c.procs[name] for name in WORKERS]
        for proc in workers:
            proc.signal(signal.SIGSTOP)
        try:
            time.sleep(fault["hold"])
            record["dropped"] = {
                what: drop_lists(client, redis_client.key(*pattern))
                for what, pattern in (("messages", ("wf.shard.*",)), ("doorbell", ("waiting", "*")))
            }
        finally:
            for proc in workers:
                proc.signal(signal.SIGCONT)


def drop_lists(client: Any, pattern: str) -> int:
    """Delete the Redis lists matching ``pattern``; the number of items they held."""
    dropped = 0
    for key in client.scan_iter(match=pattern, _type="list"):
        dropped += int(client.llen(key))
        client.delete(key)
    return dropped


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


def check(c: Campaign, workload: Workload, seed: int) -> tuple[list[dict[str, Any]], Counter[str]]:
    """Every anomaly, by kind with its execution id; and the executions by outcome."""
    anomalies: list[dict[str, Any]] = []

    def add(kind: str, execution_id: str | None, detail: str) -> None:
        anomalies.append({"kind": kind, "execution_id": execution_id, "seed": seed, "detail": detail[:500]})

    runs = {rid: run for rid, run in workload.runs.items() if run.execution_id}
    c.schedule_fires, scheduled = chaos_schedules.check(c.dsn, c.schedule_ids, c.schedules_stopped, add)
    ids = [run.execution_id for run in runs.values() if run.execution_id] + scheduled
    loaded = checker.load(c.dsn, ids)
    for execution_id in sorted(set(ids) - set(loaded.executions)):
        add("lost_execution", execution_id, "accepted by the API but not in the database")
    checked_types = {"start", *history.OUTCOME_EVENT}
    for execution_id, head in sorted(loaded.executions.items()):
        events = loaded.events.get(execution_id, [])
        commands = loaded.commands.get(execution_id, [])
        # the shared rules (apps/workflows/engine/history.py), those of a finished history included
        problems = [
            *history.journal_problems(head["last_seq"], events),
            *history.ending_problems(head["status"], head["nodes"], events),
            *history.command_problems([k for k in commands if k["type"] in checked_types], events),
        ]
        for problem in problems:
            add(problem.kind, execution_id, problem.detail)
        # signals and timers have no one event of their own to look for; they must be applied still
        for k in commands:
            if k["type"] not in checked_types and k["processed_at"] is None:
                detail = f"command {k['id']!r} ({k['type']}): not applied"
                add(history.COMMAND_NOT_APPLIED, execution_id, detail)
    outcomes = Counter(head["status"] for head in loaded.executions.values())
    check_sinks(c, runs, add)
    check_file_sink(c, runs, add)
    check_invariants(add)
    return anomalies, outcomes


def check_sinks(c: Campaign, runs: dict[str, Run], add: Any) -> None:
    """Each run's sink rows: exactly its ``k`` values, each once."""
    written: dict[str, list[int]] = defaultdict(list)
    with psycopg.connect(c.warehouse_dsn, autocommit=True) as conn:
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


def check_file_sink(c: Campaign, runs: dict[str, Run], add: Any) -> None:
    """The fan-out workflow's file, replaced whole by each run: exactly one of its runs' records, each once
    (no torn write, no line doubled by a re-run, nothing of two runs mixed)."""
    path = c.env.workdir / "files" / FILE_SINK
    fan = {rid for rid, run in runs.items() if run.workflow_id == "chaos-fan"}
    if not fan:
        return
    if not path.exists():
        add("file_sink_missing", None, f"{path} was never written ({len(fan)} runs wrote it)")
        return
    try:
        records = [json.loads(line) for line in path.read_text().splitlines()]
    except ValueError as exc:
        add("file_sink_torn", None, f"{path}: not one JSON record per line ({exc})")
        return
    writers = {record.get("run") for record in records}
    ks = sorted(record.get("k") for record in records)
    if len(writers) != 1 or not writers <= fan or ks != WORKFLOWS["chaos-fan"][1]:
        add("file_sink_mixed", None, f"{path}: runs {sorted(map(str, writers))}, k={ks}")


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
    schedule_fires: dict[str, int],
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
    if NOT_YET:
        print(f"(not yet in the schedule: {', '.join(NOT_YET)})")
    print("\nexecutions by outcome: " + ", ".join(f"{s} {n}" for s, n in sorted(outcomes.items())))
    print(
        f"runs started {sum(1 for r in workload.runs.values() if r.execution_id)}; drained in {drained:.1f} s"
    )
    print(f"schedule fires: {schedule_fires}")
    exited = Counter(name for r in done for name in r.get("restarted_first", []))
    print(f"processes that exited by themselves, restarted before the next fault: {dict(exited) or 0}")
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
        "kinds": list(args.kinds),
        "round_robin": args.round_robin,
        "schedule": faults,
        "faults": [{k: v for k, v in r.items() if k != "affected"} for r in done],
        "faults_by_kind": per_kind,
        "not_yet_in_schedule": list(NOT_YET),
        "executions_by_outcome": dict(outcomes),
        "drain_seconds": round(drained, 1),
        "schedule_fires": schedule_fires,
        "refused_calls": dict(workload.refused),
        "exited_by_themselves": dict(exited),
        "anomalies_by_kind": dict(by_kind),
        "anomalies": anomalies,
        "ha": args.ha,
        "netns": args.netns,
        "settings": "1 gateway, 2 coordinators, 3 workers (concurrency 2); test-profile liveness "
        + str(FAST),
    }


def kinds_arg(value: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in value.split(",") if k.strip())
    unknown = sorted(set(kinds) - set(FAULT_KINDS))
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"unknown fault kinds {unknown}; known: {', '.join(FAULT_KINDS)}")
    return kinds


def spacing_arg(value: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("expected MIN,MAX in seconds, e.g. 4,10") from None
    if not 0 < low <= high:
        raise argparse.ArgumentTypeError("expected 0 < MIN <= MAX")
    return low, high


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=120, help="seconds of faults and workload")
    parser.add_argument("--seed", type=int, default=None, help="the schedule's seed (random when omitted)")
    parser.add_argument("--rate", type=float, default=2.0, help="executions started per second")
    parser.add_argument("--drain", type=float, default=180, help="most seconds to wait for the end")
    parser.add_argument(
        "--kinds", type=kinds_arg, default=None, help="comma-separated fault kinds (default: all available)"
    )
    parser.add_argument("--ha", action="store_true", help="Redis under Sentinel, PostgreSQL with a standby")
    parser.add_argument("--netns", action="store_true", help=f"{NETNS_WORKER} in a network namespace (root)")
    parser.add_argument("--round-robin", action="store_true", help="take the kinds in turn (seeded order)")
    parser.add_argument(
        "--spacing", type=spacing_arg, default=(4.0, 10.0), help="MIN,MAX seconds between faults"
    )
    parser.add_argument("--json-out", type=Path, default=None, help="the report's path (else bench/results)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1_000_000)
    if args.ha and args.netns:
        parser.error("--ha and --netns do not go together (the sentinels listen on loopback only)")
    args.kinds = args.kinds or available_kinds(args.ha, args.netns)
    if unavailable := sorted(set(args.kinds) - set(available_kinds(args.ha, args.netns))):
        parser.error(f"--kinds {unavailable} are not available with these options (--ha, --netns)")
    faults = schedule(seed, args.duration, args.kinds, args.round_robin, args.spacing)
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
    ha = Ha(env) if args.ha else None
    netns = Netns() if args.netns else None
    try:
        if ha is not None:
            ha.configure()
            env.extra_env["WORKFLOW_CONNECTION_WAREHOUSE"] = ha.pg_url("warehouse")
        if netns is not None:
            netns.create()
            netns.listen_too(env)
        with env:
            if ha is not None:
                ha.start_standby(env.workdir)
            if netns is not None:
                netns.trust(env.pg)
            summary = campaign(env, ha, netns, seed, args, faults)
    finally:
        if ha is not None:
            ha.stop()
        if netns is not None:
            netns.delete()
    summary["logs"] = str(env.workdir)
    if args.json_out:
        args.json_out.write_text(json.dumps(summary, indent=2, default=str))
        path = args.json_out
    else:
        path = write_result(f"chaos-{seed}", summary)
    print(f"written to {path}")
    if summary["anomalies"]:
        print(f"logs kept in {env.workdir}")
        raise SystemExit(1)


def campaign(
    env: BenchEnv,
    ha: Ha | None,
    netns: Netns | None,
    seed: int,
    args: argparse.Namespace,
    faults: list[dict[str, Any]],
) -> dict[str, Any]:
    from tests.harness import migrate_with_token

    env.pg.ensure_database("warehouse")
    with psycopg.connect(env.pg.url("warehouse"), autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {SINK_TABLE} (run text, k integer, _idempotency_key text UNIQUE)")
    migrate_with_token(env.pg.url("bench"), TOKEN, "chaos")
    from apps.workflows.services import definitions

    for definition, _ in WORKFLOWS.values():
        definitions.create(definition)
    definitions.create(chaos_schedules.definition())
    c = Campaign(env, ha, netns)
    c.start_all()
    deadline = time.monotonic() + 90
    while not c.all_shards_owned():
        if time.monotonic() > deadline:
            raise SystemExit("the workers did not take the shards")
        time.sleep(0.3)
    c.schedule_ids = chaos_schedules.create()
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
    c.schedules_stopped = chaos_schedules.stop(c.schedule_ids)
    for name, proc in list(c.procs.items()):  # a fault that failed half-way may leave one down
        if not proc.alive():
            c.restart(name)
    drained = drain(c, workload, args.drain)
    anomalies, outcomes = check(c, workload, seed)
    recovery(c, nemesis.done)
    return report(seed, args, faults, nemesis.done, outcomes, anomalies, workload, drained, c.schedule_fires)


if __name__ == "__main__":
    main()
