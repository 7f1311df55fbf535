"""Hydration benchmark: recovering an execution of 10,000 events, with and without snapshots (issue 6, req 5).

    .venv/bin/python bench/hydration.py          # --events 10000, snapshot-every 100, keep-n-snapshots 2

It starts its own PostgreSQL and Redis (devservices) and, in this process, builds one long
execution by driving the pure engine (``engine.decide``) over a real, compiled definition: ``--nodes``
``http.request`` nodes in ``--width`` parallel chains into one ``aggregate.count``, calling a rate-limited
API: each attempt but the last of ten fails retryably with probability ``--fail-rate`` (a 503), and is retried
with exponential back-off when its durable timer fires. Each step is one command, as one apply transaction
sees it: an attempt's result or a retry timer. The clock advances between steps. The events go into the
journal table as the engine writes them and, after every step, ``journal.maybe_snapshot`` decides as
``commands.apply_pending`` does whether to take a snapshot (every ``snapshot-every`` events, keeping
``keep-n-snapshots``). Driving stops just short of ``--events`` events, with the execution still running (the
case a new shard owner recovers) and its latest snapshot about ``snapshot-every`` events back: the worst
case for the replay after it.

A twin execution gets the same events (copied server-side, with its own ``executionId``) and no snapshot.
Both are hydrated cold (``journal.cache`` cleared) with ``journal.hydrate``, interleaved: ``--reps`` times
from the latest snapshot, ``--full-reps`` times by full replay. Both must give the same state. Reported:
median and p95 of each, their ratio, the parts of the snapshot path (reading and decoding the snapshot,
reading the events after it, folding them), and the snapshot's size and encoding time. Results: a table on
stdout and ``bench/results/hydration.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import BenchEnv, percentile  # noqa: E402

TARGET_MS = 50.0
API_HOST = "api.example.com"
START_MS = 1_790_000_000_000  # a fixed start, so runs are comparable


def definition(nodes: int, width: int) -> dict[str, Any]:
    """``width`` chains of ``http.request`` nodes, ``nodes`` in all, into one count: pages, in parallel."""
    retry = {"maxAttempts": 10, "backoff": "exponential", "initialInterval": "1s", "maxInterval": "30s"}
    body_nodes, edges = [], []
    for n in range(nodes):
        chain, index = n % width, n // width
        node_id = f"page-{chain:02d}-{index:04d}"
        url = f"https://{API_HOST}/v1/partitions/{chain}/pages/{index}"
        body_nodes.append({"id": node_id, "nodeType": "http.request", "config": {"url": url}, "retry": retry})
        if index:
            source = f"page-{chain:02d}-{index - 1:04d}"
            edges.append({"id": f"{source}>{node_id}", "source": source, "target": node_id})
    body_nodes.append({"id": "count", "nodeType": "aggregate.count", "config": {}})
    last = (nodes - 1) // width
    for chain in range(width):
        source = f"page-{chain:02d}-{last - (chain > (nodes - 1) % width):04d}"
        edges.append({"id": f"{source}>count", "source": source, "target": "count"})
    return {"id": "export-pages", "name": "Export pages", "nodes": body_nodes, "edges": edges}


@dataclasses.dataclass
class Journal:
    """What driving produced: the events with their append times, the snapshots taken, the final state."""

    events: list[tuple[Any, datetime]]
    snapshots_taken: int
    state: Any


def drive(execution: Any, graph: Any, target: int, fail_rate: float, seed: int) -> Journal:
    """Commands through ``decide`` until ``target`` events; snapshots as ``apply_pending`` takes them."""
    from apps.workflows.engine import decide as d
    from apps.workflows.engine.state import ExecutionState
    from apps.workflows.services import journal
    from workflow_engine.tunables import engine_settings

    every, taken = engine_settings.snapshot_every, 0
    rng = random.Random(seed)
    state = ExecutionState(execution.id, execution.workflow_id)
    now_ms, command = START_MS, d.Start()
    running: list[d.RunNode] = []
    retries: list[d.Timer] = []
    out: list[tuple[Any, datetime]] = []
    # a step appends at most two events here: stop just short of ``target``, so that the latest snapshot is
    # about ``snapshot-every`` events back (the worst case) instead of right at the end
    while True:
        before = state.last_seq
        decision = d.decide(state, graph, command, now_ms)
        state = decision.state
        at = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
        out.extend((e, at) for e in decision.events)
        journal.maybe_snapshot(before, state)
        taken += before // every != state.last_seq // every
        running.extend(decision.runs)
        retries.extend(t for t in decision.timers if t.kind == "retry")
        if state.last_seq >= target - 2:
            break
        if state.terminal:
            raise SystemExit(f"the execution ended after {state.last_seq} events: give more --nodes")
        now_ms, command = _next_command(rng, graph, running, retries, now_ms, fail_rate)
    return Journal(out, taken, state)


def _next_command(
    rng: random.Random, graph: Any, running: list[Any], retries: list[Any], now_ms: int, fail_rate: float
) -> tuple[int, Any]:
    """The next step: a due retry timer, else a running attempt's result (a few seconds later)."""
    from apps.workflows.engine import decide as d

    retries.sort(key=lambda t: t.fire_at_ms)
    if retries and (not running or retries[0].fire_at_ms <= now_ms):
        timer = retries.pop(0)
        return max(now_ms, timer.fire_at_ms), d.TimerFired("retry", timer.node_id, timer.attempt)
    run = running.pop(rng.randrange(len(running)))
    now_ms += rng.randint(20, 3000)
    if run.attempt < graph.nodes[run.node_id].retry.max_attempts and rng.random() < fail_rate:
        error = f"http.request: GET {API_HOST} answered 503"
        return now_ms, d.NodeFailed(run.node_id, run.attempt, error, retryable=True)
    return now_ms, d.NodeSucceeded(run.node_id, run.attempt, 1, rng.randint(20, 3000))


def build(args: argparse.Namespace) -> tuple[str, str, Journal]:
    """The execution with snapshots and its twin without; their ids and the driving's journal."""
    from django.db import connection, transaction

    from apps.cluster.sharding import shard_of
    from apps.workflows.models import Event, Execution
    from apps.workflows.services import definitions, runner
    from apps.workflows.services.executions import new_execution_id

    workflow = definitions.create(definition(args.nodes, args.width))
    assert workflow.current_version_id is not None
    _, graph = runner.compiled(workflow.current_version_id)

    def execution() -> Execution:
        new_id = new_execution_id()
        return Execution.objects.create(
            id=new_id,
            workflow=workflow,
            version_id=workflow.current_version_id,
            shard_id=shard_of(new_id),
            status="running",
        )

    with_snapshots, full_replay = execution(), execution()
    with transaction.atomic():
        made = drive(with_snapshots, graph, args.events, args.fail_rate, args.seed)
        Event.objects.bulk_create(
            (
                Event(
                    execution_id=with_snapshots.id,
                    seq=e.seq,
                    type=e.type,
                    payload=dict(e.payload),
                    epoch=1,
                    created_at=at,
                )
                for e, at in made.events
            ),
            batch_size=2000,
        )
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO workflows_event (execution_id, seq, type, payload, epoch, created_at) "
                "SELECT %s, seq, type, payload || jsonb_build_object('executionId', %s::text), epoch, "
                "created_at FROM workflows_event WHERE execution_id = %s ORDER BY seq",
                [full_replay.id, full_replay.id, with_snapshots.id],
            )
        last = made.state
        for execution_id in (with_snapshots.id, full_replay.id):
            Execution.objects.filter(pk=execution_id).update(
                last_seq=last.last_seq,
                started_at=datetime.fromtimestamp(START_MS / 1000, tz=UTC),
                progressed_at=made.events[-1][1],
            )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE workflows_event")
        cursor.execute("VACUUM ANALYZE workflows_snapshot")
    return with_snapshots.id, full_replay.id, made


def hydrate_once(execution_id: str) -> tuple[float, Any]:
    """Milliseconds of one cold ``journal.hydrate`` (the row read first, as ``apply_pending`` has it)."""
    from apps.workflows.models import Execution
    from apps.workflows.services import journal

    execution = Execution.objects.get(pk=execution_id)
    journal.cache.clear()
    t0 = time.perf_counter()
    state = journal.hydrate(execution)
    return (time.perf_counter() - t0) * 1000, state


def parts_once(execution_id: str) -> dict[str, float]:
    """The snapshot path in its three steps, each timed."""
    from apps.workflows.engine import state as st
    from apps.workflows.models import Execution
    from apps.workflows.services import journal

    execution = Execution.objects.get(pk=execution_id)
    steps: dict[str, float] = {}

    def step(name: str, call: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        value = call()
        steps[name] = (time.perf_counter() - t0) * 1000
        return value

    state = step("snapshot_read_and_decode", lambda: journal._from_snapshot(execution))
    events = step("events_read", lambda: journal.events_of(execution.id, state.last_seq))
    step("fold", lambda: st.fold(state, events))
    return steps


def stats(ms: list[float]) -> dict[str, float]:
    return {
        "median_ms": statistics.median(ms),
        "p95_ms": percentile(ms, 95),
        "min_ms": min(ms),
        "max_ms": max(ms),
    }


def snapshot_facts(execution_id: str) -> dict[str, Any]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT seq, pg_column_size(state), length(state::text), jsonb_array_length("
            "jsonb_path_query_array(state, '$.nodes.keyvalue()')) FROM workflows_snapshot "
            "WHERE execution_id = %s ORDER BY seq",
            [execution_id],
        )
        rows = cursor.fetchall()
    return {
        "kept": [r[0] for r in rows],
        "latest_seq": rows[-1][0] if rows else None,
        "latest_bytes_on_disk": rows[-1][1] if rows else None,
        "latest_json_chars": rows[-1][2] if rows else None,
        "latest_nodes_in_state": rows[-1][3] if rows else None,
    }


def measure(snap_id: str, full_id: str, reps: int, full_reps: int) -> dict[str, Any]:
    """Cold hydrations of both executions, interleaved; both must give the same state."""
    timings: dict[str, list[float]] = {"from_snapshot": [], "full_replay": []}
    states = {}
    hydrate_once(snap_id), hydrate_once(full_id)  # warm the connection and the row caches once
    every = max(1, reps // full_reps)
    for rep in range(reps):
        ms, states["from_snapshot"] = hydrate_once(snap_id)
        timings["from_snapshot"].append(ms)
        if rep % every == 0 and len(timings["full_replay"]) < full_reps:
            ms, states["full_replay"] = hydrate_once(full_id)
            timings["full_replay"].append(ms)
    if dataclasses.replace(states["full_replay"], execution_id=snap_id) != states["from_snapshot"]:
        raise SystemExit("the state from the snapshot differs from the full replay")
    parts = [parts_once(snap_id) for _ in range(full_reps)]
    return {
        "from_snapshot": stats(timings["from_snapshot"]),
        "full_replay": stats(timings["full_replay"]),
        "ratio_full_over_snapshot": statistics.median(timings["full_replay"])
        / statistics.median(timings["from_snapshot"]),
        "snapshot_parts_median_ms": {k: statistics.median(p[k] for p in parts) for k in parts[0]},
        "samples_ms": timings,
    }


def snapshot_write_ms(state: Any, reps: int = 5) -> float:
    """What ``maybe_snapshot`` spends encoding the state (``to_json``), in the apply transaction."""
    from apps.workflows.engine import state as st

    ms = []
    for _ in range(reps):
        t0 = time.perf_counter()
        st.to_json(state)
        ms.append((time.perf_counter() - t0) * 1000)
    return statistics.median(ms)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=1200, help="http.request nodes in the definition")
    parser.add_argument("--width", type=int, default=24, help="parallel chains of nodes")
    parser.add_argument("--fail-rate", type=float, default=0.75, help="retryable failures of attempts 1 to 9")
    parser.add_argument("--reps", type=int, default=30, help="cold hydrations from the snapshot")
    parser.add_argument("--full-reps", type=int, default=10, help="cold full replays, interleaved")
    parser.add_argument("--snapshot-every", type=int, default=100, help="the production default")
    parser.add_argument("--keep-n-snapshots", type=int, default=2)
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()

    extra = {
        "WORKFLOW_PROFILE": "test",
        "WORKFLOW_HTTP_ALLOWED_HOSTS": API_HOST,
        "WORKFLOW_SNAPSHOT_EVERY": str(args.snapshot_every),
        "WORKFLOW_KEEP_N_SNAPSHOTS": str(args.keep_n_snapshots),
    }
    with BenchEnv("hydration", extra_env=extra) as env:
        t0 = time.perf_counter()
        snap_id, full_id, made = build(args)
        built = time.perf_counter() - t0
        types: dict[str, int] = {}
        for e, _ in made.events:
            types[e.type] = types.get(e.type, 0) + 1
        snapshot = snapshot_facts(snap_id)
        print(
            f"built in {built:.1f}s: {len(made.events):,} events {types}, {len(made.state.nodes)} nodes in "
            f"the state, {made.snapshots_taken} snapshots taken, {len(snapshot['kept'])} kept; latest at seq "
            f"{snapshot['latest_seq']}, {snapshot['latest_bytes_on_disk']:,} bytes on disk",
            flush=True,
        )
        result = measure(snap_id, full_id, args.reps, args.full_reps)
        summary = {
            "parameters": vars(args),
            "events": len(made.events),
            "event_types": types,
            "build_seconds": built,
            "snapshot": {**snapshot, "to_json_ms": snapshot_write_ms(made.state)},
            "replayed_after_snapshot": len(made.events) - (snapshot["latest_seq"] or 0),
            "target_ms": TARGET_MS,
            **result,
        }
        print_report(summary)
        print(f"\nresult: {env.write_result(summary)}")
    shutil.rmtree(env.workdir / "pg", ignore_errors=True)  # the servers are stopped; their data goes


def print_report(s: dict[str, Any]) -> None:
    print(f"\n{'cold journal.hydrate':<44}{'median ms':>10}{'p95 ms':>9}{'min ms':>9}{'max ms':>9}")
    rows = [
        (f"latest snapshot + {s['replayed_after_snapshot']} events", s["from_snapshot"]),
        (f"full replay of {s['events']:,} events", s["full_replay"]),
    ]
    for label, t in rows:
        print(f"{label:<44}{t['median_ms']:>10.1f}{t['p95_ms']:>9.1f}{t['min_ms']:>9.1f}{t['max_ms']:>9.1f}")
    median, p95 = s["from_snapshot"]["median_ms"], s["from_snapshot"]["p95_ms"]
    print(
        f"ratio full/snapshot (medians): {s['ratio_full_over_snapshot']:.1f}x; target from the snapshot "
        f"<= {TARGET_MS:.0f} ms: median {'ok' if median <= TARGET_MS else 'MISS'}, "
        f"p95 {'ok' if p95 <= TARGET_MS else 'MISS'}"
    )
    parts = ", ".join(f"{k} {v:.1f} ms" for k, v in s["snapshot_parts_median_ms"].items())
    print(f"snapshot path, medians: {parts}")
    snap = s["snapshot"]
    print(
        f"latest snapshot: {snap['latest_nodes_in_state']} nodes, {snap['latest_json_chars']:,} chars of "
        f"JSON, {snap['latest_bytes_on_disk']:,} bytes on disk; to_json {snap['to_json_ms']:.1f} ms"
    )


if __name__ == "__main__":
    main()
