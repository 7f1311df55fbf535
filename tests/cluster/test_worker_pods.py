"""What deploy/k8s/worker.yaml relies on, with worker nodes run as in a pod (``manage.py run_node``, role
``worker``): the liveness probe (``manage.py worker_probe``) sees a hung Celery worker, and a worker pod
stopped by ``kubectl scale`` (SIGTERM to run_node, the container's main process) leaves the cluster and hands
its shards over well inside ``terminationGracePeriodSeconds``, with nothing lost.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import yaml

from tests.cluster import checker
from tests.cluster.conftest import Scenario, poll
from tests.harness import ROOT, Proc, free_port

pytestmark = pytest.mark.cluster

WORKER_POD = ROOT / "deploy" / "k8s" / "worker.yaml"
PROBE_TIMEOUT = 3.0


def worker_node(s: Scenario, name: str) -> Proc:
    """``run_node`` with the worker role, named like a pod (WORKFLOW_NODE_NAME)."""
    return s.cluster.start_node(free_port(), free_port(), name=name)


def probe(s: Scenario, name: str) -> tuple[int, str, float]:
    """``manage.py worker_probe`` as the kubelet runs it in the pod: exit code, output, seconds taken."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "worker_probe", "--timeout", f"{PROBE_TIMEOUT:g}"],
        env={**s.cluster.env, "WORKFLOW_NODE_NAME": name},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def celery_main(node: Proc) -> psutil.Process:
    """The Celery worker run_node started (its direct child; the pool processes are that one's children)."""
    found = [p for p in psutil.Process(node.pid).children() if "celery" in " ".join(p.cmdline())]
    assert len(found) == 1, found
    return found[0]


def grace_period() -> int:
    pod = yaml.safe_load(WORKER_POD.read_text())
    return int(pod["spec"]["template"]["spec"]["terminationGracePeriodSeconds"])


def test_the_worker_probe_fails_while_the_celery_worker_hangs_and_passes_while_it_answers(
    make_scenario: Callable[..., Scenario],
) -> None:
    s = make_scenario(env={"WORKFLOW_ROLES": "worker"})
    s.coordinator("c1")
    node = worker_node(s, "wpod-0")
    s.wait_ready(["wpod-0"])
    code, out, _ = probe(s, "wpod-0")
    assert code == 0, out
    worker = celery_main(node)
    worker.send_signal(signal.SIGSTOP)  # hung: run_node and its metrics endpoint still answer
    try:
        code, out, took = probe(s, "wpod-0")
        assert node.alive()
    finally:
        worker.send_signal(signal.SIGCONT)
    assert code != 0 and "did not answer" in out, out
    print(f"\nprobe of a stopped worker failed after {took:.1f}s (--timeout {PROBE_TIMEOUT:g})")
    assert took < PROBE_TIMEOUT + 15  # the pod's timeoutSeconds covers Django's start-up and the wait
    code, out, _ = probe(s, "wpod-0")
    assert code == 0, out
    code, out, _ = probe(s, "no-such-pod")
    assert code != 0, out


def test_a_worker_pod_scaled_away_leaves_and_hands_its_shards_over_inside_its_grace_period(
    make_scenario: Callable[..., Scenario], tmp_path: Path
) -> None:
    s = make_scenario(env={"WORKFLOW_ROLES": "worker", "WORKFLOW_MIN_NR_OF_MEMBERS": "2"})
    s.gateway()
    s.coordinator("c1")
    pods = {name: worker_node(s, name) for name in ("wpod-0", "wpod-1")}
    ids = s.wait_ready(list(pods))
    load = s.pipelines("scale", 30)
    load.execution_ids = s.execute(load.workflow_ids)  # in flight while the pod goes

    stopping = time.monotonic()
    pods["wpod-1"].signal(signal.SIGTERM)  # what the kubelet sends to the container's main process
    pods["wpod-1"].popen.wait(timeout=grace_period())  # type: ignore[union-attr]
    stopped = time.monotonic() - stopping
    took = poll(
        "the remaining pod to own every shard",
        lambda: set(s.spread([ids["wpod-0"], ids["wpod-1"]]).elements()) == {ids["wpod-0"]},
        timeout=30,
    )
    print(f"\nrun_node stopped {stopped:.1f}s after SIGTERM; its shards moved {took:.1f}s after that")
    assert s.rows("SELECT state FROM cluster_clustermember WHERE member_id = %s", [ids["wpod-1"]]) == [
        ("left",)
    ]
    moved = [e for e in s.cluster_events("shard_rebalance") if e["from_node"] == ids["wpod-1"]]
    assert moved and {e["reason"] for e in moved} == {"member_left"}, moved[:5]
    s.wait_finished(load.execution_ids, timeout=90)
    checker.check(s.db_url, expected=30, sinks=load.sinks)
