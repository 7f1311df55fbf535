"""The cluster's status tells the truth when no live worker owns the shards (issue 15, item 2).

When the last worker leaves (SIGTERM: its member row says "left") or dies (SIGKILL: its liveness expires),
its shards stay "assigned" to it, since there is no one to move them to. Before, ``stats`` said "Up" with
every shard active, ``shard_count{status="unassigned"}`` stayed 0 and the alert never fired while new
executions waited forever. Real processes: a node (coordinator, gateway, metrics) and a separate worker.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from apps.cluster import queries
from apps.cluster.membership import Member
from tests.cluster.conftest import TOKEN, Scenario
from tests.harness import ROOT, Api, free_port, wait_for

SHARDS = 20
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERT = "WorkflowShardsUnassigned"


def start_node(s: Scenario) -> tuple[Api, int]:
    """A node running the coordinator and the gateway (no worker), with its metrics served."""
    http, metrics = free_port(), free_port()
    s.cluster.env["WORKFLOW_ROLES"] = "coordinator,api-gateway"
    s.cluster.start_node(http, metrics, name="node")
    del s.cluster.env["WORKFLOW_ROLES"]
    api = Api(f"http://127.0.0.1:{http}", TOKEN)
    wait_for("the gateway", lambda: api.get("/health/ready")[0] == 200, timeout=60)
    return api, metrics


def stats(api: Api) -> dict[str, Any]:
    status, body = api.get("/api/v1/cluster/stats")
    assert status == 200, body
    return dict(body)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


def samples(text: str, name: str) -> dict[str, float]:
    """``{labels: value}`` of one metric in the exposition text."""
    found = {}
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(\{{.*\}})? (\S+)", line)
        if match:
            found[match.group(1) or ""] = float(match.group(2))
    return found


def unassigned(port: int) -> float | None:
    return samples(scrape(port), "shard_count").get('{entity_type="Workflow",status="unassigned"}')


def alert_rule() -> dict[str, Any]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return next(r for g in groups for r in g["rules"] if r.get("alert") == ALERT)


def series_name(name: str, labels: str) -> str:
    """The scraped series as Prometheus stores it: with the ``instance`` label the scrape adds."""
    inner = labels.strip("{}")
    return f'{name}{{{inner}{"," if inner else ""}instance="node"}}'


def assert_the_alert_fires(text: str, tmp_path: Path) -> None:
    """Evaluate the shipped alert on the scraped values: with promtool (``promtool test rules``) where it
    exists, and always by its threshold (``... > 0``) on the gauge the node exports."""
    rule = alert_rule()
    assert 'shard_count{status="unassigned"}' in rule["expr"]
    threshold = float(re.search(r">\s*(\d+)\s*$", rule["expr"].strip()).group(1))  # type: ignore[union-attr]
    gauge = samples(text, "shard_count")['{entity_type="Workflow",status="unassigned"}']
    assert gauge > threshold, (gauge, rule["expr"])
    promtool = shutil.which("promtool")
    if promtool is None:
        print("promtool not found: the alert was checked by its threshold only")
        return
    series = [
        {
            "series": f'{name}{{{labels.strip("{}")}{"," if labels else ""}instance="node"}}',
            "values": f"{v}x20",
        }
        for name in ("shard_count", "workflow_coordinator_term")
        for labels, v in samples(text, name).items()
    ]
    annotations = dict(rule["annotations"])
    annotations["summary"] = annotations["summary"].replace("{{ $value | humanize }}", f"{gauge:g}")
    expected = {"exp_labels": rule["labels"], "exp_annotations": annotations}
    test = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [{"eval_time": "5m", "alertname": ALERT, "exp_alerts": [expected]}],
            }
        ],
    }
    path = tmp_path / "alert-test.yml"
    path.write_text(yaml.safe_dump(test))
    done = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def wait_status(api: Api, status: str) -> dict[str, Any]:
    return wait_for(f"stats to say {status}", lambda: (b := stats(api))["status"] == status and b, timeout=30)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["left", "died"])
def test_a_cluster_whose_last_worker_is_gone_says_down_with_the_reason_and_the_alert_fires(
    make_scenario: Any, tmp_path: Path, how: signal.Signals
) -> None:
    s = make_scenario(env={"WORKFLOW_NUMBER_OF_SHARDS": str(SHARDS)})
    api, metrics = start_node(s)
    s.worker("w1")
    worker = s.wait_ready(["w1"])["w1"]
    up = wait_status(api, "Up")
    assert (up["reasons"], up["sharding"]["activeShards"]) == ([], SHARDS)
    assert wait_for("the leader to export every shard assigned", lambda: unassigned(metrics) == 0)

    s.proc("w1").signal(how)
    down = wait_status(api, "Down")
    text = wait_for(
        "the gauge to count every shard", lambda: unassigned(metrics) == SHARDS and scrape(metrics)
    )
    status_code, monitoring = api.get("/monitoring/cluster/status")

    # the condition: the leases still name the worker, which is not up
    assert {owner for owner, _, _ in s.leases().values()} == {worker}
    assert {state for _, _, state in s.leases().values()} == {"assigned"}
    assert s.rows("SELECT state FROM cluster_clustermember WHERE member_id = %s", [worker])[0][0] == (
        "left" if how == signal.SIGTERM else "down"
    )
    assert down["reasons"] == [f"no live worker: {SHARDS} shards owned by members that are not up"]
    assert down["sharding"] == {**up["sharding"], "activeShards": 0}
    assert down["leader"] and down["members"] == len(down["memberList"]) == 1
    assert status_code == 200 and "\nStatus: Down\n" in monitoring
    assert f"  - no live worker: {SHARDS} shards owned by members that are not up\n" in monitoring
    assert monitoring.endswith(f"Shards: 0 of {SHARDS} with a live owner\n")
    assert_the_alert_fires(text, tmp_path)

    s.worker("w2")  # a worker that joins takes the shards over: Up again, the gauge back to 0
    again = wait_status(api, "Up")
    assert again["sharding"]["activeShards"] == SHARDS and again["reasons"] == []
    assert wait_for("the gauge to clear", lambda: unassigned(metrics) == 0)


def member(member_id: str) -> Member:
    return Member(member_id, member_id.split(":")[1], "host", 1)


W1, W2, COORD = "n1:worker:a", "n2:worker:b", "n1:coordinator:c"
UNASSIGNED = "1 of 2 shards have no live owner: 1 shards unassigned"
NO_WORKER = "no live worker: 2 shards owned by members that are not up"
GONE = "1 of 2 shards have no live owner: 1 shards owned by members that are not up"
NO_LEADER = "no coordinator leads: shards are not allocated or failed over, timers do not fire"


@pytest.mark.parametrize(
    ("owners", "members", "leader", "expected"),
    [
        ({0: W1, 1: W1}, [W1, COORD], COORD, ("Up", [], 2)),
        ({0: W1, 1: W2}, [W1, COORD], COORD, ("Degraded", [GONE], 1)),
        (
            {0: W1},
            [W1, COORD],
            COORD,
            ("Degraded", [UNASSIGNED], 1),
        ),
        ({0: W1, 1: W1}, [W1], None, ("Degraded", [NO_LEADER], 2)),
        (
            {0: W1, 1: W2},
            [COORD],
            COORD,
            ("Down", [NO_WORKER], 0),
        ),
        ({}, [W1, COORD], COORD, ("Down", ["no shard has a live owner: 2 shards unassigned"], 0)),
    ],
    ids=["all-live", "one-owner-gone", "one-unassigned", "no-leader", "no-worker", "not-allocated"],
)
def test_the_status_is_up_only_when_every_shard_has_a_live_owner_and_a_coordinator_leads(
    owners: dict[int, str], members: list[str], leader: str | None, expected: tuple[str, list[str], int]
) -> None:
    health = queries.health(2, owners, [member(m) for m in members], leader)

    assert (health.status, health.reasons, health.live_owned) == expected
