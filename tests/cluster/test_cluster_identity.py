"""Cluster identity and the shard count, checked at start (issue 15, items 4 and 6).

- Two clusters (two databases) on ONE Redis: before, the second one's workers consumed the first one's shard
  queues and applied its wake-ups against their own database, and the first one's executions stalled until
  its sweeper. Now the Redis is claimed for the first cluster's id, and every process of the second refuses to
  start, naming both ids, ``REDIS_URL`` and the way out.
- ``WORKFLOW_NUMBER_OF_SHARDS`` changed on an existing cluster: before, silently accepted (``totalShards 50,
  activeShards 100``); now refused by the coordinator, the workers and the gateway.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.cluster.conftest import Scenario, _admin_url, db_url
from tests.harness import Proc, free_port, wait_for

EXIT_CONFIG = 78  # apps/cluster/startup.py


def exited(proc: Proc, timeout: float = 60) -> int:
    """The exit code of a process that must stop by itself."""
    wait_for(f"{proc.name} to exit", lambda: not proc.alive(), timeout=timeout, interval=0.2)
    assert proc.popen is not None
    return int(proc.popen.returncode)


def cluster_id(s: Scenario) -> str:
    return str(s.rows("SELECT cluster_id FROM cluster_clusteridentity WHERE id = 1")[0][0])


def a_new_cluster(s: Scenario) -> str:
    """Scenario databases are clones of one migrated template, so they share its id, as a restored backup
    shares its cluster's. A new cluster's first migration gives it an id of its own: done here by hand."""
    new = str(uuid.uuid4())
    s.rows("UPDATE cluster_clusteridentity SET cluster_id = %s WHERE id = 1 RETURNING id", [new])
    return new


@pytest.fixture
def on_the_same_redis(tmp_path: Path, template_db: str) -> Iterator[Callable[..., Scenario]]:
    """A second cluster (a database cloned from the template, with an id of its own) whose processes use
    the Redis of ``first``: ``make_scenario`` would start a Redis of its own in the same directory."""
    made: list[tuple[Scenario, str]] = []

    def make(first: Scenario, env: dict[str, str] | None = None) -> Scenario:
        name = f"wfe_cluster_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(_admin_url(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template_db)
                )
            )
        workdir = tmp_path / "second"
        workdir.mkdir()
        second = Scenario(workdir, db_url(_admin_url(), name), first.redis_server)
        second.cluster.env.update(env or {})
        made.append((second, name))
        a_new_cluster(second)
        return second

    yield make

    for second, name in made:
        second.cluster.kill()
        with psycopg.connect(_admin_url(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def run_one(s: Scenario, prefix: str) -> None:
    load = s.pipelines(prefix, 1)
    s.wait_finished(s.execute(load.workflow_ids), timeout=60)
    for sink, lines in load.sinks.items():
        assert sink.read_text().splitlines() == lines


def test_a_second_cluster_on_the_same_redis_refuses_to_start_and_the_first_keeps_its_wake_ups(
    make_scenario: Any, on_the_same_redis: Callable[..., Scenario]
) -> None:
    first = make_scenario()
    first.coordinator("c1")
    first.worker("w1")
    first.wait_ready(["w1"])
    first.gateway()
    first_id = cluster_id(first)
    second = on_the_same_redis(first)  # the mistake: the first cluster's Redis
    second_id = cluster_id(second)

    codes = {
        "coordinator": exited(second.coordinator("c2")),
        "worker": exited(second.worker("w2")),
        "gateway": exited(second.cluster.start_gateway(free_port(), name="g2")),
    }
    run_one(first, "first")

    # gunicorn stops with "Worker failed to boot" (its exit status varies between versions)
    assert codes["coordinator"] == codes["worker"] == EXIT_CONFIG and codes["gateway"] != 0
    for name in ("c2", "w2", "g2"):
        log = second.proc(name).log_tail(200)
        assert f"belongs to cluster {first_id}" in log and f"not to this cluster {second_id}" in log, log
        assert f"REDIS_URL={first.redis_url}" in log and "REDIS_KEY_PREFIX" in log, log
    assert first.redis.get("wfe:cluster") == first_id.encode()
    assert second.rows("SELECT count(*) FROM cluster_clustermember")[0][0] == 0  # it never joined
    assert second.rows("SELECT count(*) FROM cluster_shardlease")[0][0] == 0


def test_two_clusters_with_their_own_key_prefix_share_one_redis_and_each_runs_its_executions(
    make_scenario: Any, on_the_same_redis: Callable[..., Scenario]
) -> None:
    first = make_scenario()
    second = on_the_same_redis(first, env={"REDIS_KEY_PREFIX": "wfe2:"})
    for s, n in ((first, 1), (second, 2)):
        s.coordinator(f"c{n}")
        s.worker(f"w{n}")
        s.gateway()
    first.wait_ready(["w1"])
    wait_for(
        "the second cluster's worker to own its shards",
        lambda: {owner for owner, _, _ in second.leases().values()} == {second.node_id("w2")},
        timeout=60,
    )

    run_one(first, "first")
    run_one(second, "second")

    assert first.redis.get("wfe:cluster") == cluster_id(first).encode()
    assert first.redis.get("wfe2:cluster") == cluster_id(second).encode()
    assert all(p.alive() for p in first.cluster.procs + second.cluster.procs)


def test_a_changed_number_of_shards_is_refused_by_every_role_naming_both_counts(make_scenario: Any) -> None:
    s = make_scenario(env={"WORKFLOW_NUMBER_OF_SHARDS": "20"})
    s.coordinator("c1")
    s.worker("w1")
    s.wait_ready(["w1"])
    s.cluster.stop()
    s.cluster.env["WORKFLOW_NUMBER_OF_SHARDS"] = "30"

    codes = {
        "coordinator": exited(s.coordinator("c2")),
        "worker": exited(s.worker("w2")),
        "gateway": exited(s.cluster.start_gateway(free_port(), name="g2")),
        # run_node gives up with the same code instead of restarting a child that refuses forever
        "node": exited(s.cluster.start_node(free_port(), free_port(), name="n2")),
    }

    # gunicorn stops with "Worker failed to boot" (its exit status varies between versions)
    assert codes["coordinator"] == codes["worker"] == codes["node"] == EXIT_CONFIG and codes["gateway"] != 0
    for name in ("c2", "w2", "g2", "n2"):
        log = s.proc(name).log_tail(200)
        assert "WORKFLOW_NUMBER_OF_SHARDS is 30" in log and "set up with 20 shards" in log, log
        assert "Changing the number of shards" in log, log
    assert "refused its configuration" in s.proc("n2").log_tail(200)
    assert len(s.leases()) == 20
