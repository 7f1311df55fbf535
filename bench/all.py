"""Every benchmark in one command, in under 15 minutes on two cores; then the results into docs/benchmarks.md.

    .venv/bin/python bench/all.py                 # about 13 minutes
    .venv/bin/python bench/all.py --render-only   # only rewrite the docs section from bench/results/*.json

The ten-minute memory soak alone would leave five minutes for everything else run one after the other, which
is not enough. So throughput (ours against Celery, the comparison most sensitive to a busy machine) runs
first, alone; then the soak starts, on its own servers and cluster, and keeps a steady background load (20
three-node executions per second and 2 parked ones, about a tenth of the machine) while the others run one
after the other on theirs: latency, storage at scale, hydration and failover. Their absolute numbers are
slightly pessimistic for it, and memory, which the soak measures, does not depend on the CPU its neighbours
use.

Each benchmark writes ``bench/results/<name>.json``; this command then replaces the part of
``docs/benchmarks.md`` between the ``bench:all`` markers with tables of those results, the machine and the
wall time of each run. A benchmark that fails is reported as failed there, and this command exits 1.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- bench:all:start -->", "<!-- bench:all:end -->"

SOAK = ("memory", ["--soak-seconds", "600"])
ALONE = [("throughput", ["--runs", "200", "--reps", "3"])]
SEQUENCE = [
    ("latency", ["--burst", "200", "--seconds", "30"]),
    ("storage", []),
    ("hydration", []),
    ("failover", ["--runs", "3"]),
]


def run(name: str, args: list[str], log_dir: Path, walls: dict[str, dict[str, Any]]) -> None:
    """One benchmark as a child process, its output in ``<log_dir>/<name>.log``."""
    started = time.monotonic()
    with (log_dir / f"{name}.log").open("w") as log:
        code = subprocess.call(
            [sys.executable, str(ROOT / "bench" / f"{name}.py"), *args], stdout=log, stderr=subprocess.STDOUT
        )
    walls[name] = {"args": args, "seconds": round(time.monotonic() - started, 1), "exit": code}
    print(
        f"{name}: exit {code} after {walls[name]['seconds']:.0f}s (log: {log_dir / f'{name}.log'})",
        flush=True,
    )


def run_all(log_dir: Path) -> dict[str, dict[str, Any]]:
    walls: dict[str, dict[str, Any]] = {}
    # a benchmark that fails must not leave an older result to render
    for name, _ in [*ALONE, SOAK, *SEQUENCE]:
        (RESULTS / f"{name}.json").unlink(missing_ok=True)
    for name, args in ALONE:
        run(name, args, log_dir, walls)
    soak = threading.Thread(target=run, args=(*SOAK, log_dir, walls))
    soak.start()
    time.sleep(100)  # its idle and 1,000-in-flight measurements (about 95 s) before the others start
    for name, args in SEQUENCE:
        run(name, args, log_dir, walls)
    soak.join()
    return walls


# --- rendering ----------------------------------------------------------------------------------------------


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "**missed**")


def throughput_section(r: dict[str, Any]) -> list[str]:
    lines = [
        f"**Throughput** ({r['runs']} runs per contender, {r['reps']} alternating repetitions, medians; "
        f"concurrency {r['concurrency']}; completions per second)",
        "",
        "| scenario | ours | Celery | ours / Celery | per repetition | target |",
        "|---|---|---|---|---|---|",
    ]
    for scenario, row in r["scenarios"].items():
        target = f"≥ 1.0: {verdict(row['ratio'] >= 1.0)}" if scenario == "linear3" else ""
        per_rep = ", ".join(f"{x:.2f}" for x in row["ratio_per_rep"])
        ours, celery, ratio = row["ours_per_second"], row["celery_per_second"], row["ratio"]
        lines.append(f"| `{scenario}` | {ours} | {celery} | **{ratio:.2f}** | {per_rep} | {target} |")
    return lines


def latency_section(r: dict[str, Any]) -> list[str]:
    a = r.get("execute_to_completed") or {}
    peak = r.get("max_throughput")
    peak = peak.get("per_second") if isinstance(peak, dict) else peak
    p95 = a.get("p95_ms")
    lines = [
        f"**Latency**, execute → completed (three-node workflow; maximum throughput {fmt(peak)}/s, "
        f"open loop at {fmt(a.get('rate_per_second'))}/s for {fmt(a.get('seconds'), 0)} s, "
        f"{a.get('count')} executions)",
        "",
        "| p50 | p95 | p99 | max | target p95 < 100 ms |",
        "|---|---|---|---|---|",
        f"| {fmt(a.get('p50_ms'))} ms | {fmt(p95)} ms | {fmt(a.get('p99_ms'))} ms | "
        f"{fmt(a.get('max_ms'))} ms | {verdict(p95 < 100 if p95 is not None else None)} |",
    ]
    post = r.get("post")
    if post:
        lines += [
            "",
            f"`POST /api/v1/workflows/{{id}}/execute` through gunicorn, {post.get('clients')} concurrent "
            "clients:",
            "",
            "| requests | per second | p50 | p95 | p99 | max | non-2xx |",
            "|---|---|---|---|---|---|---|",
            f"| {post.get('count')} | {fmt(post.get('per_second'))} | {fmt(post.get('p50_ms'))} ms | "
            f"{fmt(post.get('p95_ms'))} ms | {fmt(post.get('p99_ms'))} ms | {fmt(post.get('max_ms'))} ms | "
            f"{post.get('non_2xx')} |",
        ]
    return lines


def storage_section(r: dict[str, Any]) -> list[str]:
    rows, ev = r.get("rows", {}), r.get("event_storage", {})
    target = r.get("target_p95_ms", 50)
    lines = [
        f"**Storage at scale**: {rows.get('workflows_execution')} executions, "
        f"{rows.get('workflows_event')} events; **{fmt(ev.get('bytes_per_event'), 0)} bytes per event** on "
        f"disk with its indexes ({fmt(ev.get('table_bytes_per_event'), 0)} table, "
        f"{fmt(ev.get('index_bytes_per_event'), 0)} indexes)",
        "",
        f"| route | p50 | p95 | p99 | index use (EXPLAIN) | p95 < {target:g} ms |",
        "|---|---|---|---|---|---|",
    ]
    for q in r.get("queries", {}).values():
        lines.append(
            f"| `{q['route']}` | {fmt(q['p50_ms'])} ms | {fmt(q['p95_ms'])} ms | {fmt(q['p99_ms'])} ms | "
            f"{q.get('scans', '')} | {verdict(q['p95_ms'] < target)} |"
        )
    return lines


def hydration_section(r: dict[str, Any]) -> list[str]:
    snap, full = r.get("from_snapshot", {}), r.get("full_replay", {})
    return [
        f"**Hydration** of one execution of {r.get('events')} events (cold, the process cache cleared)",
        "",
        "| from the latest snapshot (median / p95) | full replay (median / p95) | ratio | target ≤ 50 ms |",
        "|---|---|---|---|",
        f"| {fmt(snap.get('median_ms'))} / {fmt(snap.get('p95_ms'))} ms | {fmt(full.get('median_ms'))} / "
        f"{fmt(full.get('p95_ms'))} ms | {fmt(r.get('ratio_full_over_snapshot'))} times | "
        f"{verdict(snap['median_ms'] <= 50 if snap.get('median_ms') is not None else None)} |",
    ]


def memory_section(r: dict[str, Any]) -> list[str]:
    lines = ["**Memory** of the worker (its main process and pool children, RSS)", ""]
    in_flight = (r.get("in_flight") or {}).get("default") or {}
    if in_flight:
        idle, parked = in_flight.get("idle", {}), in_flight.get("parked", {})
        lines += [
            f"- idle {fmt(idle.get('rss_mib'))} MiB; with {in_flight.get('executions')} executions in flight "
            f"{fmt(parked.get('rss_mib'))} MiB ({fmt(in_flight.get('growth_per_execution_kib'))} KiB each)",
        ]
    soak = r.get("soak") or {}
    if soak:
        lines += [
            f"- soak of {fmt(soak.get('seconds'), 0)} s at {soak.get('rate_per_second')}/s: RSS "
            f"{fmt(soak.get('rss_start_mib'))} → {fmt(soak.get('rss_end_mib'))} MiB (max "
            f"{fmt(soak.get('rss_max_mib'))}), slope over the second half "
            f"**{fmt(soak.get('slope_second_half_mib_per_min'), 2)} MiB/min**; cached entities at most "
            f"{soak.get('entities_max')}",
        ]
    return lines


def failover_section(r: dict[str, Any]) -> list[str]:
    p95 = f", p95 {fmt(r['p95_seconds'], 2)} s" if r.get("p95_seconds") is not None else ""
    return [
        f"**Failover**: SIGKILL of a worker, {r.get('runs')} runs, {r.get('executions_measured')} executions "
        f"measured: p50 {fmt(r.get('p50_seconds'), 2)} s{p95}, max {fmt(r.get('max_seconds'), 2)} s "
        f"(target < 10 s: {verdict((r.get('max_seconds') or 99) < 10)})",
    ]


SECTIONS = {
    "throughput": throughput_section,
    "latency": latency_section,
    "storage": storage_section,
    "hydration": hydration_section,
    "memory": memory_section,
    "failover": failover_section,
}


def render(walls: dict[str, dict[str, Any]] | None, total: float | None) -> str:
    machine = next((r["machine"] for n in SECTIONS if (r := load(n)) and "machine" in r), {})
    lines = [
        START,
        "",
        f"Generated by `bench/all.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
        f"{machine.get('cores')} cores, {machine.get('memory_gib')} GiB, Python {machine.get('python')}, "
        f"Celery {machine.get('celery')}, Django {machine.get('django')}.",
    ]
    if walls:
        lines += [
            "",
            "| benchmark | arguments | wall time | exit |",
            "|---|---|---|---|",
            *(
                f"| {n} | `{' '.join(w['args'])}` | {w['seconds']:.0f} s | {w['exit']} |"
                for n, w in walls.items()
            ),
            "",
            f"All of it took **{fmt(total / 60 if total else None)} minutes**; throughput ran alone, the "
            "memory soak alongside the others (see the top of `bench/all.py`).",
        ]
    for name, section in SECTIONS.items():
        result = load(name)
        lines += ["", *(section(result) if result else [f"**{name}**: no result"])]
    lines += ["", END]
    return "\n".join(lines)


def write_doc(text: str) -> None:
    doc = DOC.read_text()
    if START in doc and END in doc:
        before, rest = doc.split(START, 1)
        after = rest.split(END, 1)[1]
        DOC.write_text(before + text + after)
    else:
        DOC.write_text(doc.rstrip() + "\n\n## Latest run of all benchmarks\n\n" + text + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--render-only", action="store_true")
    args = parser.parse_args()
    walls, total = None, None
    started = time.monotonic()
    if not args.render_only:
        log_dir = RESULTS / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        walls = run_all(log_dir)
        total = time.monotonic() - started
        (RESULTS / "all.json").write_text(json.dumps({"walls": walls, "seconds": total}))
        print(f"all benchmarks: {total:.0f}s", flush=True)
    elif (RESULTS / "all.json").exists():
        saved = json.loads((RESULTS / "all.json").read_text())
        walls, total = saved["walls"], saved["seconds"]
    write_doc(render(walls, total))
    print(f"updated {DOC}")
    if walls and any(w["exit"] != 0 for w in walls.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
