"""A ``run_node`` that dies, by any signal, takes its children with it: no gateway, coordinator or worker
keeps running with no one watching it (the parent-death signal of run_node.py)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import psutil
import pytest

from tests.cluster.conftest import Scenario, http_status
from tests.harness import free_port, wait_for

pytestmark = pytest.mark.cluster


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    running = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                running.append(process)
        except psutil.NoSuchProcess:
            pass
    return running


def test_every_process_of_a_node_dies_with_run_node_killed_by_sigkill(
    make_scenario: Callable[..., Scenario],
) -> None:
    s = make_scenario()
    http = free_port()
    node = s.cluster.start_node(http, free_port())
    wait_for("the node's gateway", lambda: http_status(f"http://127.0.0.1:{http}/health/live") == 200, 60)

    # gunicorn master + workers, the Celery worker + its pool, the coordinator
    def whole_tree() -> list[psutil.Process] | None:
        found = node.descendants()
        return found if len(found) >= 6 else None

    tree = wait_for("the node's whole process tree", whole_tree, 60)
    roles = {" ".join(p.cmdline()) for p in tree}
    assert any("gunicorn" in c for c in roles) and any("celery" in c for c in roles), roles
    assert any("run_coordinator" in c for c in roles), roles

    os.kill(node.pid, signal.SIGKILL)  # run_node alone, as an OOM killer or `kill -9 <pid>` would
    killed = time.monotonic()
    while alive(tree) and time.monotonic() - killed < 15:
        time.sleep(0.1)
    took = time.monotonic() - killed
    orphans = [(p.pid, " ".join(p.cmdline())[:100]) for p in alive(tree)]
    assert not orphans, f"still running {took:.0f}s after run_node was killed: {orphans}"
    print(f"\n{len(tree)} processes of the node gone {took:.1f}s after run_node was killed")
    assert http_status(f"http://127.0.0.1:{http}/health/live") == 0
