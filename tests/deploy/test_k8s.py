"""deploy/k8s: every manifest validates strictly (kubernetes-validate, the API's own OpenAPI schemas), and
the manifests agree with each other and with the code: Services, Ingresses and PodDisruptionBudgets select
pods that exist, the probes hit routes the gateway serves and the worker probe command exists, grace periods
cover run_node's drain, and the ConfigMap trusts a list of proxy networks, not "*".

What the worker's probe and a scale-down do at run time is tested with real processes in
tests/cluster/test_worker_pods.py.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import get_commands
from django.urls import Resolver404, resolve

from apps.cluster.management.commands import run_node
from tests.harness import ROOT

kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install -r requirements-dev.txt")

K8S = ROOT / "deploy" / "k8s"
MANIFESTS = sorted(K8S.glob("*.yaml"))
# The oldest Kubernetes still in common support, and the newest the validator knows.
VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]


def documents() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in documents() if doc["kind"] == kind]


def workload(component: str) -> dict[str, Any]:
    [found] = [
        doc
        for doc in of_kind("Deployment") + of_kind("StatefulSet")
        if doc["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]
    return found


def pod_labels() -> list[dict[str, str]]:
    return [
        doc["spec"]["template"]["metadata"]["labels"]
        for doc in of_kind("Deployment") + of_kind("StatefulSet")
    ]


def selects_pods(selector: dict[str, str]) -> bool:
    return any(selector.items() <= labels.items() for labels in pod_labels())


def container(component: str) -> dict[str, Any]:
    [one] = workload(component)["spec"]["template"]["spec"]["containers"]
    return one


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_manifest_is_valid_kubernetes(path: Path, version: str) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        if doc:
            kubernetes_validate.validate(doc, version, strict=True)  # raises, naming the field


def test_the_gateway_is_reachable_from_outside_through_an_ingress_to_its_service() -> None:
    services = {doc["metadata"]["name"]: doc for doc in of_kind("Service")}
    ingresses = of_kind("Ingress")
    assert ingresses
    for ingress in ingresses:
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                service = services[backend["name"]]
                assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
                assert selects_pods(service["spec"]["selector"])
    streams = [
        i
        for i in ingresses
        if any("stream" in p["path"] for r in i["spec"]["rules"] for p in r["http"]["paths"])
    ]
    assert streams and all(
        i["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-buffering"] == "off" for i in streams
    )
    assert [s for s in services.values() if s["spec"].get("type") == "LoadBalancer"], "the no-ingress variant"


def test_every_service_and_disruption_budget_selects_pods_of_a_workload() -> None:
    for doc in of_kind("Service"):
        assert selects_pods(doc["spec"]["selector"]), doc["metadata"]["name"]
    budgets = {
        doc["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"]: doc
        for doc in of_kind("PodDisruptionBudget")
    }
    assert {"worker", "gateway"} <= budgets.keys()
    assert budgets["worker"]["spec"]["maxUnavailable"] == 1
    for doc in budgets.values():
        assert selects_pods(doc["spec"]["selector"]["matchLabels"])


def test_gateway_probes_hit_the_health_routes() -> None:
    gateway = container("gateway")
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/health/live"
    for probe in ("readinessProbe", "livenessProbe"):
        try:
            resolve(gateway[probe]["httpGet"]["path"])
        except Resolver404:
            pytest.fail(f"gateway {probe} path is not a route")


def test_worker_liveness_asks_the_celery_worker_itself_not_the_metrics_endpoint() -> None:
    probe = container("worker")["livenessProbe"]
    assert "httpGet" not in probe
    command = probe["exec"]["command"]
    assert command[:3] == ["python", "manage.py", "worker_probe"]
    assert "worker_probe" in get_commands()
    timeout = float(command[command.index("--timeout") + 1])
    assert probe["timeoutSeconds"] >= timeout + 10  # the command's start-up (Django, Celery) and its wait


@pytest.mark.parametrize("component", ["worker", "coordinator", "gateway"])
def test_pods_are_given_the_time_to_stop_cleanly(component: str) -> None:
    """SIGTERM to run_node stops its children within run_node's grace; the kubelet must not SIGKILL first."""
    spec = workload(component)["spec"]["template"]["spec"]
    pre_stop = (
        spec["containers"][0].get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    )
    delay = float(pre_stop[1]) if pre_stop[:1] == ["sleep"] else 0.0
    if component == "worker":
        assert spec["terminationGracePeriodSeconds"] > run_node.GRACE_SECONDS + delay
    else:
        assert spec["terminationGracePeriodSeconds"] > delay


def test_the_scale_procedure_of_the_guide_is_written_on_the_worker_manifest() -> None:
    text = (K8S / "worker.yaml").read_text()
    assert "kubectl -n workflow scale statefulset workflow-engine-worker --replicas=5" in text
    assert "kubectl -n workflow scale statefulset workflow-engine-worker --replicas=3" in text
    assert workload("worker")["kind"] == "StatefulSet"


def test_the_gateways_trust_a_list_of_proxy_networks_not_everyone() -> None:
    [config] = of_kind("ConfigMap")
    trusted = config["data"]["FORWARDED_ALLOW_IPS"]
    assert trusted.strip() != "*"
    for entry in trusted.split(","):
        ipaddress.ip_network(entry.strip())  # raises on anything that is not an address or a network
    assert config["data"]["NUM_PROXIES"] == "1"


def test_references_in_the_deploy_files_point_to_files_that_exist() -> None:
    """Named sections, not numbers (which change as the docs grow); every path named exists."""
    owned = [
        *MANIFESTS,
        *(ROOT / "deploy" / "prometheus").glob("*.yml"),
        ROOT / "deploy/nginx/workflow-engine.conf",
    ]
    for path in owned:
        text = path.read_text()
        assert not re.search(r"section \d+", text), f"{path.name}: a numbered section reference"
        for named in re.findall(
            r"\b((?:docs|deploy|tests|apps)/[\w./-]+\.(?:md|py|yaml|yml|conf|json))", text
        ):
            assert (ROOT / named).exists() or (path.parent / Path(named).name).exists(), (
                f"{path.name}: {named}"
            )
