"""The short fault campaign (issue 16): ``bench/chaos.py`` with fixed seeds, failing on any anomaly.

Each seed runs the campaign as a subprocess with its own PostgreSQL, Redis and cluster, taking its share of
the fault kinds in turn (``--round-robin``): one on a single Redis and PostgreSQL, one on Redis under
Sentinel and PostgreSQL with a standby (``--ha``), so the two together inject every kind of ``FAULT_KINDS``
in a little under two minutes. The partition needs root and iproute2: without them it is left out. A
failing seed replays the same schedule with the command the failure prints.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench import chaos, chaos_schedules

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
SPACING = (2.0, 3.5)  # seconds between faults
# a network namespace needs root and iproute2; without them the partition is left out (and said so)
NETNS = shutil.which("ip") is not None and os.geteuid() == 0
PLAIN = tuple(
    k
    for k in chaos.available_kinds(False, NETNS)
    if k not in ("kill_leader", "restart_postgres", "skew_clock")
)
# (seed, --ha, seconds of workload and faults, the kinds it injects in turn); the drain and the check come
# on top of the seconds
SEEDS = (
    (11, False, 38, PLAIN),
    (13, True, 32, ("sentinel_failover", "promote_replica", "kill_leader", "restart_postgres", "skew_clock")),
)


def test_the_seeds_cover_every_fault_kind() -> None:
    covered = {kind for *_, kinds in SEEDS for kind in kinds}
    assert covered == set(chaos.FAULT_KINDS) - (set() if NETNS else set(chaos.NETNS_ONLY))
    for seed, ha, duration, kinds in SEEDS:
        assert set(kinds) <= set(chaos.available_kinds(ha, NETNS and not ha))
        planned = {f["kind"] for f in chaos.schedule(seed, duration, kinds, True, SPACING)}
        assert planned == set(kinds), f"seed {seed} schedules only {sorted(planned)} in {duration} s"


@pytest.mark.parametrize(("seed", "ha", "duration", "kinds"), SEEDS, ids=[f"seed-{s[0]}" for s in SEEDS])
def test_a_short_fault_campaign_finds_no_anomaly(
    seed: int, ha: bool, duration: int, kinds: tuple[str, ...], tmp_path: Path
) -> None:
    report_path, log_path = tmp_path / "report.json", tmp_path / "chaos.log"
    arguments = [
        *("--seed", str(seed), "--duration", str(duration), "--drain", "90"),
        *("--kinds", ",".join(kinds), "--round-robin", "--spacing", ",".join(map(str, SPACING))),
        *(["--ha"] if ha else ["--netns"] if NETNS else []),
    ]
    command = [sys.executable, str(ROOT / "bench" / "chaos.py"), *arguments, "--json-out", str(report_path)]
    with open(log_path, "wb") as out:
        done = subprocess.run(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, timeout=280)
    output = log_path.read_text(errors="replace")
    assert report_path.exists(), f"the campaign wrote no report (exit {done.returncode}):\n{output[-6000:]}"
    report = json.loads(report_path.read_text())
    anomalies = "\n".join(
        f"  [{a['kind']}] execution {a['execution_id']}: {a['detail']}" for a in report["anomalies"]
    )
    where = (
        f"replay: .venv/bin/python bench/chaos.py {' '.join(arguments)}; "
        f"campaign output {log_path}; process logs in {report.get('logs')}"
    )
    assert not report["anomalies"], f"{len(report['anomalies'])} anomalies ({where}):\n{anomalies}"
    assert done.returncode == 0, f"the campaign exited {done.returncode} ({where}):\n{output[-6000:]}"

    injected = {kind for kind, row in report["faults_by_kind"].items() if row["injected"]}
    failed = [f for f in report["faults"] if "error" in f]
    assert injected == set(kinds), f"injected {sorted(injected)}, expected {sorted(kinds)} ({where})"
    assert not failed, f"faults that could not be injected ({where}): {failed}"
    started = sum(report["executions_by_outcome"].values())
    assert started >= duration, f"only {started} executions ({where})"
    assert all(report["schedule_fires"].values()), f"a schedule never fired ({where})"
    shutil.rmtree(report["logs"], ignore_errors=True)  # kept only when the campaign failed (~100 MB)
    assert set(report["executions_by_outcome"]) == {"completed"}, report["executions_by_outcome"]


def test_a_campaign_schedules_at_most_one_promotion_since_no_standby_is_rebuilt() -> None:
    kinds = chaos.available_kinds(True)
    for round_robin in (False, True):
        for seed in range(20):
            faults = chaos.schedule(seed, 600, kinds, round_robin)
            assert sum(f["kind"] == "promote_replica" for f in faults) <= 1, (seed, round_robin)
    assert chaos.schedule(5, 600, kinds) == chaos.schedule(5, 600, kinds), "a seed replays its schedule"


def test_the_schedule_check_reports_a_repeated_a_missing_and_an_unfinished_fire_time() -> None:
    start = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    every = timedelta(seconds=2)
    fires = [
        (start, "started", "e0", "completed"),
        (start, "started", "e1", "completed"),  # the same fire time twice
        (start + 2 * every, "started", "e2", "running"),  # start + 2 s never fired; this one did not end
        (start + 3 * every, "missed", None, None),
    ]
    found: list[tuple[str, str | None]] = []
    chaos_schedules.check_one(
        "s", start, "2s", fires, start + 4 * every, lambda kind, eid, _: found.append((kind, eid))
    )
    assert sorted(found, key=str) == sorted(
        [
            ("schedule_fired_twice", None),
            ("schedule_fire_missing", None),
            ("schedule_run_not_completed", "e2"),
            ("schedule_fire_not_started", None),
        ],
        key=str,
    )
    found.clear()
    chaos_schedules.check_one(
        "s", start, "2s", fires[:1], start + 60 * every, lambda k, e, _: found.append((k, e))
    )
    assert found == [("schedule_stalled", None)]


@pytest.mark.parametrize(
    ("lines", "kind"),
    [
        (None, "file_sink_missing"),
        (['{"run": "r1", "k": 1}', '{"run": "r1", "k": 2}', '{"run": "r1", "k": '], "file_sink_torn"),
        (['{"run": "r1", "k": 1}', '{"run": "r2", "k": 2}', '{"run": "r1", "k": 3}'], "file_sink_mixed"),
        ([*(f'{{"run": "r1", "k": {k}}}' for k in (1, 2, 3)), '{"run": "r1", "k": 3}'], "file_sink_mixed"),
        ([f'{{"run": "r1", "k": {k}}}' for k in (1, 2, 3)], None),
    ],
)
def test_the_file_sink_check_wants_exactly_one_runs_records_each_once(
    tmp_path: Path, lines: list[str] | None, kind: str | None
) -> None:
    if lines is not None:
        path = tmp_path / "files" / chaos.FILE_SINK
        path.parent.mkdir(parents=True)
        path.write_text("".join(f"{line}\n" for line in lines))
    campaign = SimpleNamespace(env=SimpleNamespace(workdir=tmp_path))
    runs = {rid: chaos.Run("chaos-fan", f"exec-{rid}") for rid in ("r1", "r2")}
    found: list[str] = []
    chaos.check_file_sink(campaign, runs, lambda k, _eid, _detail: found.append(k))  # type: ignore[arg-type]
    assert found == ([kind] if kind else [])
