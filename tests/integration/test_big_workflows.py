"""Big workflows run, and do not hold their shard's other executions hostage (issue 10, requirement 4).

These run on a node of their own with the fewest shards allowed (10), so that small executions often share
the big one's shard: its database is a scratch one on the session's server, and its Redis keys have a prefix
of their own.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from apps.workflows.engine.dsl import MAX_NODES
from tests.conftest import process_env
from tests.harness import Api, Cluster, free_port, migrate_with_token, wait_for
from tests.integration.conftest import create_database, db_url, drop_database

SOURCE = {"nodeType": "memory.collection", "config": {"data": [1, 2, 3]}}
TRANSFORM = {"nodeType": "map", "config": {"expression": "$ + 1"}}  # inline: runs in the apply transaction
SINK = {"nodeType": "console.log", "config": {}}
TERMINAL = ("completed", "failed", "cancelled")


class FewShardsNode:
    def __init__(self, api: Api, url: str) -> None:
        self.api, self.url = api, url

    def sql(self, query: str, *params: object) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()

    def status(self, execution_id: str) -> str:
        return str(self.sql("SELECT status FROM workflows_execution WHERE id = %s", execution_id)[0][0])

    def create(self, body: dict[str, Any]) -> None:
        status, answer = self.api.post("/api/v1/workflows", body)
        assert status == 201, answer

    def execute(self, workflow_id: str) -> str:
        status, answer = self.api.post(f"/api/v1/workflows/{workflow_id}/execute")
        assert status == 200, answer
        return str(answer["executionId"])

    def wait_terminal(self, execution_id: str, timeout: float) -> str:
        """Polls the head row (the API's detail of a 5,000-node execution is not a cheap poll)."""
        return wait_for(
            f"execution {execution_id} to end",
            lambda: (s := self.status(execution_id)) in TERMINAL and s,
            timeout=timeout,
            interval=0.05,
        )


@pytest.fixture(scope="module")
def few_shards(tmp_path_factory: pytest.TempPathFactory, live_db_module: None) -> Iterator[FewShardsNode]:
    from django.conf import settings

    name = create_database("wfe_big")
    url = db_url(settings.DATABASE_URL, name)
    token = secrets.token_hex(20)
    migrate_with_token(url, token, "big")
    workdir = tmp_path_factory.mktemp("one-shard")
    env = {
        **process_env(workdir),
        "DATABASE_URL": url,
        "REDIS_KEY_PREFIX": f"wfebig{secrets.token_hex(3)}:",
        "WORKFLOW_NUMBER_OF_SHARDS": "10",
    }
    cluster = Cluster(workdir, env)
    http, metrics = free_port(), free_port()
    proc = cluster.start_node(http, metrics, name="big")
    node = FewShardsNode(Api(f"http://127.0.0.1:{http}", token), url)

    def ready() -> bool:
        if not proc.alive():
            pytest.fail(f"the node exited:\n{cluster.logs()}")
        return node.sql("SELECT count(*) FROM cluster_shardlease WHERE owner IS NOT NULL")[0][0] == 10

    try:
        wait_for("the gateway", lambda: ready() and node.api.get("/health/ready")[0] == 200, timeout=90)
        yield node
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.stop()
        drop_database(name)


@pytest.fixture(scope="module")
def live_db_module(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    with django_db_blocker.unblock():
        yield


def definition(workflow_id: str, nodes: list[dict[str, Any]], edges: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "id": workflow_id,
        "name": workflow_id,
        "nodes": nodes,
        "edges": [{"id": f"e{i}", "source": s, "target": t} for i, (s, t) in enumerate(edges)],
    }


def small(workflow_id: str) -> dict[str, Any]:
    return definition(
        workflow_id,
        [{"id": "src", **SOURCE}, {"id": "double", **TRANSFORM}, {"id": "out", **SINK}],
        [("src", "double"), ("double", "out")],
    )


def test_a_chain_of_two_thousand_nodes_is_created_and_runs_to_completion(few_shards: FewShardsNode) -> None:
    ids = ["src", *(f"t{i}" for i in range(1_998)), "out"]
    nodes = [{"id": "src", **SOURCE}, *({"id": i, **TRANSFORM} for i in ids[1:-1]), {"id": "out", **SINK}]
    few_shards.create(definition("chain", nodes, list(itertools.pairwise(ids))))
    started = time.monotonic()
    execution_id = few_shards.execute("chain")
    assert few_shards.wait_terminal(execution_id, timeout=120) == "completed"
    print(f"2,000-node chain: {time.monotonic() - started:.1f}s")
    [(records,)] = few_shards.sql(
        "SELECT records FROM workflows_nodeoutput WHERE execution_id = %s AND node_id = 't1997'", execution_id
    )
    assert records == [v + 1_998 for v in (1, 2, 3)]


def waiting(workflow_id: str) -> dict[str, Any]:
    """A small execution that waits for the signal ``go``, then runs two inline nodes in one apply."""
    return definition(
        workflow_id,
        [
            {"id": "go", "nodeType": "wait.signal", "config": {"name": "go"}},
            {"id": "unique", "nodeType": "distinct", "config": {}},
            {"id": "out", **SINK},
        ],
        [("go", "unique"), ("unique", "out")],
    )


def test_a_fan_out_of_five_thousand_nodes_runs_while_small_executions_of_its_shard_finish_in_normal_time(
    few_shards: FewShardsNode,
) -> None:
    ids = [f"t{i}" for i in range(5_000)]
    nodes = [{"id": "src", **SOURCE}, *({"id": i, **TRANSFORM} for i in ids), {"id": "out", **SINK}]
    created = time.monotonic()
    few_shards.create(definition("fan", nodes, [("src", i) for i in ids] + [(i, "out") for i in ids]))
    print(f"5,002-node definition created in {time.monotonic() - created:.2f}s")
    # small executions, waiting: with 10 shards, some of 80 share the big one's shard (all but surely)
    few_shards.create(waiting("small"))
    smalls = [few_shards.execute("small") for _ in range(80)]
    wait_for("the small executions to wait", lambda: all(few_shards.status(e) == "running" for e in smalls))

    started = time.monotonic()
    big = few_shards.execute("fan")
    [(shard,)] = few_shards.sql("SELECT shard_id FROM workflows_execution WHERE id = %s", big)
    beside = [e for (e,) in few_shards.sql(SAME_SHARD, smalls, shard)]
    assert beside, "no small execution on the big one's shard"
    latencies = {}
    for execution_id in beside:  # one after another, while the big one runs
        if few_shards.status(big) in TERMINAL:
            break
        signalled = time.monotonic()
        status, answer = few_shards.api.post(f"/api/v1/executions/{execution_id}/signals/go", {"n": 1})
        assert status == 202, answer
        assert few_shards.wait_terminal(execution_id, timeout=30) == "completed"
        latencies[execution_id] = round(time.monotonic() - signalled, 3)
    assert few_shards.wait_terminal(big, timeout=180) == "completed"
    elapsed = time.monotonic() - started

    print(f"5,000-node fan-out: {elapsed:.1f}s; small executions of its shard beside it: {latencies}")
    assert latencies, "the big execution ended before a small one could run beside it"
    assert max(latencies.values()) < 5.0, latencies  # 57 s when the fan-out ran in one transaction
    # its inline nodes ran in several transactions, each continued by an inbox command
    [(continued,)] = few_shards.sql(
        "SELECT count(*) FROM workflows_command WHERE execution_id = %s AND type = 'run_started_inline'", big
    )
    assert continued >= 2
    [(outputs, records)] = few_shards.sql(
        "SELECT count(*), sum(record_count) FROM workflows_nodeoutput WHERE execution_id = %s", big
    )
    assert outputs == 5_002 and records == 3 + 5_000 * 3  # the console sink outputs no records
    [(started_events,)] = few_shards.sql(
        "SELECT count(*) FROM workflows_event WHERE execution_id = %s AND type = 'NodeExecutionStarted'", big
    )
    assert started_events == 5_002  # each node ran once
    read = time.monotonic()
    status, detail = few_shards.api.get(f"/api/v1/executions/{big}")
    print(f"its detail read in {time.monotonic() - read:.2f}s")
    assert status == 200 and detail["status"] == "completed" and len(detail["nodes"]) == 5_002


SAME_SHARD = "SELECT id FROM workflows_execution WHERE id = ANY(%s) AND shard_id = %s"


def test_cancel_stops_a_big_fan_out_between_two_of_its_transactions(few_shards: FewShardsNode) -> None:
    ids = [f"t{i}" for i in range(5_000)]
    nodes = [{"id": "src", **SOURCE}, *({"id": i, **TRANSFORM} for i in ids), {"id": "out", **SINK}]
    few_shards.create(definition("fan-cancel", nodes, [("src", i) for i in ids] + [(i, "out") for i in ids]))
    big = few_shards.execute("fan-cancel")
    wait_for("the fan-out to run", lambda: few_shards.sql(OUTPUTS, big)[0][0] > 1, timeout=60, interval=0.02)
    status, answer = few_shards.api.post(f"/api/v1/executions/{big}/cancel", {"reason": "too big"})
    assert status == 202, answer
    assert few_shards.wait_terminal(big, timeout=30) == "cancelled"
    wait_for("its commands to be applied", lambda: not few_shards.sql(UNPROCESSED, big), timeout=30)
    [(outputs,)] = few_shards.sql(OUTPUTS, big)
    assert 1 < outputs < 5_002  # the continuation found it cancelled and ran nothing more


OUTPUTS = "SELECT count(*) FROM workflows_nodeoutput WHERE execution_id = %s"
UNPROCESSED = "SELECT id FROM workflows_command WHERE execution_id = %s AND processed_at IS NULL"


def test_a_fan_out_of_the_largest_definition_allowed_runs_to_completion(few_shards: FewShardsNode) -> None:
    ids = [f"t{i}" for i in range(MAX_NODES - 2)]
    nodes = [{"id": "src", **SOURCE}, *({"id": i, **TRANSFORM} for i in ids), {"id": "out", **SINK}]
    few_shards.create(definition("fan-max", nodes, [("src", i) for i in ids] + [(i, "out") for i in ids]))
    started = time.monotonic()
    big = few_shards.execute("fan-max")
    assert few_shards.wait_terminal(big, timeout=180) == "completed"
    print(f"{MAX_NODES:,}-node fan-out: {time.monotonic() - started:.1f}s")
    assert few_shards.sql(OUTPUTS, big)[0][0] == MAX_NODES
