"""deploy/prometheus and deploy/grafana: every metric their expressions name is one the application exports,
and promtool accepts the rules and the configuration (where promtool is installed: Debian's ``prometheus``).

"Exported" is checked on a real node: its merged /metrics (``run_node`` on ``metrics_port``) is scraped after
an execution ran. A metric that only appears once its event happens (a failover, a fence failure, a failed SQL
query) must at least be declared by the application's code, under that exact name.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
import uuid
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

# the application's metric declarations, so that the registry of this process knows each of them
from apps.cluster import metrics as _cluster_metrics  # noqa: F401
from apps.schedules import metrics as _schedule_metrics  # noqa: F401
from apps.workflows import metrics as _workflow_metrics  # noqa: F401
from apps.workflows.nodes import sql as _sql_node  # noqa: F401
from tests.harness import ORIGINAL_MINIMAL, ROOT, Api

PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "workflow-engine-dashboard.json"
PROMTOOL = shutil.which("promtool")
# Prometheus makes these itself, per target
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
SUFFIXES = ("_bucket", "_sum", "_count", "_total", "_created")
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left"}
KEYWORDS |= {"group_right", "inf", "nan", "Inf", "NaN"}
# what a node that has run one execution exports, whatever else happened: the series every panel starts from
ALWAYS = {
    "workflow_execution_total",
    "workflow_execution_duration_seconds_bucket",
    "workflow_routing_latency_seconds_count",
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "workflow_events_appended_total",
    "workflow_entity_count",
    "workflow_coordinator_term",
    "cluster_member_count",
    "shard_count",
}


# --------------------------------------------------------------------------------------------- PromQL


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not its functions, labels, keywords or variables)."""
    expr = re.sub(r"label_values\(\s*([^,)]*)[^)]*\)", r"\1", expr)  # Grafana: label_values(metric, label)
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^{}]*\}", " ", expr)  # label matchers (and Grafana's ${var})
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # ranges and subqueries
    expr = re.sub(r"\$\w+", " ", expr)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        before = expr[match.start() - 1] if match.start() else " "
        if before.isdigit() or before == ".":
            continue  # a number's exponent or a duration's unit
        if expr[match.end() :].lstrip().startswith("(") or match.group() in KEYWORDS:
            continue  # a function or an operator
        names.add(match.group())
    return names


def expressions() -> dict[str, str]:
    """Every expression of the alert rules and the dashboard (panels and template variables), by where."""
    found: dict[str, str] = {}
    for group in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            found[f"alerts.yml {rule.get('alert') or rule.get('record')}"] = rule["expr"]

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict) and node.get("type") == "datasource":
            return  # a data source variable: its query is a plugin's name
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("expr", "query", "definition") and isinstance(value, str):
                    found[f"dashboard {where}.{key}"] = value
                else:
                    walk(value, f"{where}.{node.get('title') or node.get('name') or key}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{where}[{index}]")

    walk(json.loads(DASHBOARD.read_text()), "")
    return found


def declared() -> set[str]:
    """Every sample name the metrics declared in this process can have (a labelled metric that has not been
    used yet yields a family without samples)."""
    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES)
    return names


def scraped(port: int) -> set[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


def matches(name: str, exported: set[str]) -> bool:
    return name in exported or any(name.removesuffix(s) in exported for s in SUFFIXES if name.endswith(s))


# --------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'sum by (le) (rate(http_request_duration_seconds_bucket{instance=~"$instance"}[5m]))',
            {"http_request_duration_seconds_bucket"},
        ),
        (
            "max(a_gauge and on(instance) (term == scalar(max(term)))) > 1e3 offset 5m",
            {"a_gauge", "term"},
        ),
        ('label_values(up{job=~"x.*"}, instance)', {"up"}),
        ("changes(max(t)[30m:1m]) > 3", {"t"}),
    ],
)
def test_metric_names_are_read_from_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_every_metric_in_the_alerts_and_the_dashboard_is_exported_by_a_node(
    node: dict[str, Any], api: Api
) -> None:
    workflow_id = f"metrics-{uuid.uuid4().hex[:8]}"
    status, body = api.post("/api/v1/workflows", {**ORIGINAL_MINIMAL, "id": workflow_id})
    assert status == 201, body
    status, started = api.post(f"/api/v1/workflows/{workflow_id}/execute")
    assert status == 200, started
    assert api.wait_finished(started["executionId"])["status"] == "completed"
    exported = scraped(node["metrics_port"])
    assert exported >= ALWAYS, sorted(ALWAYS - exported)

    used = {name: where for where, expr in expressions().items() for name in metric_names(expr)}
    assert len(used) > 15, used  # the parser found the expressions
    unknown = {n: w for n, w in used.items() if n not in SYNTHETIC and not matches(n, exported | declared())}
    assert not unknown, f"metrics no code exports (name: first use): {unknown}"
    only_declared = sorted(n for n in used if n not in SYNTHETIC and not matches(n, exported))
    print(f"\n{len(used)} metric names used; exported after one execution: all but {only_declared}")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian: apt-get install prometheus)")
@pytest.mark.parametrize(("what", "path"), [("rules", "alerts.yml"), ("config", "prometheus.yml")])
def test_promtool_accepts_the_alert_rules_and_the_configuration(what: str, path: str) -> None:
    done = subprocess.run(
        [PROMTOOL or "promtool", "check", what, str(PROMETHEUS / path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr
