"""Cluster scenarios: each one gets its own database, Redis and processes, so faults stay inside it.

The session's ``node`` fixture runs a worker against ``DATABASE_URL``; sharing that database or its Redis
would let it take a scenario's shards. So a scenario clones a migrated template database (``CREATE DATABASE
... TEMPLATE``, a fraction of a second) on the same server, and starts a Redis of its own in ``tmp_path``,
which it may also restart or wipe. A scenario that restarts PostgreSQL, or needs it listening on another
address, gets a dedicated server: a copy of a migrated data directory made once per session.

Processes see only the scenario's servers, with the test profile's fast liveness (``TEST_TUNABLES``). The
test process reads the scenario's state with psycopg, since Django's connection points at the session
database. When a scenario fails, the tails of its processes' logs are printed.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil
import psycopg
import pytest
import redis
from psycopg import sql

from devservices import PostgresServer, RedisServer
from tests.conftest import process_env
from tests.harness import TEST_TUNABLES, Api, Cluster, Proc, free_port, migrate_with_token, wait_for
from tests.integration.test_executions import step, workflow
from workflow_engine import redis_client


def tunable_seconds(name: str) -> float:
    """A duration of ``TEST_TUNABLES`` (``"500ms"``, ``"2s"``) in seconds."""
    value = TEST_TUNABLES[name]
    return float(value[:-2]) / 1000 if value.endswith("ms") else float(value.removesuffix("s"))


LIVENESS_TTL = tunable_seconds("WORKFLOW_LIVENESS_TTL")  # how long a silent worker keeps its shards
LEADER_LEASE_TTL = tunable_seconds("WORKFLOW_LEADER_LEASE_TTL")
TOKEN = secrets.token_hex(20)  # the API token of the user every scenario database holds
KEY_PREFIX = "wfe:"


# --------------------------------------------------------------------------------------------- reports


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the item, so teardown knows whether to dump the logs."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


# --------------------------------------------------------------------------------------------- databases


def db_url(base: str, database: str) -> str:
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path="/" + database))


def _admin_url() -> str:
    from django.conf import settings

    return db_url(settings.DATABASE_URL, "postgres")


def migrate(url: str) -> None:
    """Migrate ``url`` in a subprocess (this process's Django uses the session database); add the API user."""
    migrate_with_token(url, TOKEN, "cluster")


@pytest.fixture(scope="session")
def template_db() -> Iterator[str]:
    """A migrated database with the API user, cloned by each scenario; dropped at the end of the session."""
    name = f"wfe_cluster_tmpl_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_admin_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        migrate(db_url(_admin_url(), name))
        yield name
    finally:
        with psycopg.connect(_admin_url(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def pg_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stopped, migrated PostgreSQL data directory (database ``workflow``) to copy for dedicated servers."""
    data_dir = tmp_path_factory.mktemp("pg-image")
    server = PostgresServer(data_dir, free_port())
    server.start()
    try:
        server.ensure_database("workflow")
        migrate(server.url("workflow"))
    finally:
        server.stop()
    return data_dir / "postgres"


def dedicated_postgres(
    image: Path, data_dir: Path, listen: Sequence[str] = (), trust: Sequence[str] = ()
) -> PostgresServer:
    """A copy of the image, started; ``trust`` adds pg_hba lines for clients on other networks."""
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(image, data_dir / "postgres", symlinks=True)
    with (data_dir / "postgres" / "pg_hba.conf").open("a") as hba:
        hba.writelines(f"host all all {network} trust\n" for network in trust)
    server = PostgresServer(data_dir, free_port(), listen_addresses=("127.0.0.1", *listen))
    server.start()
    return server


# --------------------------------------------------------------------------------------------- workloads


def pipeline(workflow_id: str, out: Path, records: int = 3) -> tuple[dict[str, Any], list[str]]:
    """memory.collection -> map (inline) -> file.text (a Celery node task): the body and the sink's lines."""
    data = [f"{workflow_id}-r{k}" for k in range(records)]
    body = workflow(
        workflow_id,
        [
            step("src", "memory.collection", "source", data=data),
            step("upper", "map", "transform", expression="upper(value)"),
            step("out", "file.text", "sink", path=str(out)),
        ],
        [("src", "upper"), ("upper", "out")],
    )
    return body, [value.upper() for value in data]


def write_csv(path: Path, rows: int) -> list[str]:
    """A CSV of ``rows`` words; returns what an upper-casing pipeline writes from it."""
    with path.open("w") as f:
        f.write("id,word\n")
        f.writelines(f"{i},w{i}\n" for i in range(rows))
    return [f"W{i}" for i in range(rows)]


def csv_pipeline(workflow_id: str, source: Path, out: Path) -> dict[str, Any]:
    """file.csv (a long node task) -> map -> file.text."""
    return workflow(
        workflow_id,
        [
            step("read", "file.csv", "source", path=str(source)),
            step("upper", "map", "transform", expression="upper(word)"),
            step("out", "file.text", "sink", path=str(out)),
        ],
        [("read", "upper"), ("upper", "out")],
    )


@dataclass
class Workload:
    """Executions a scenario started, and what their sinks must hold."""

    sinks: dict[Path, list[str]] = field(default_factory=dict)
    workflow_ids: list[str] = field(default_factory=list)
    execution_ids: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------- scenario


class Scenario:
    """One scenario's servers and processes, with the probes its assertions need."""

    def __init__(self, workdir: Path, database_url: str, redis_server: RedisServer) -> None:
        self.workdir = workdir
        self.db_url = database_url
        self.redis_server = redis_server
        self.redis_url = redis_server.url()
        self.postgres: PostgresServer | None = None
        env = process_env(workdir)
        env.update(DATABASE_URL=database_url, REDIS_URL=self.redis_url, WORKFLOW_PROFILE="test")
        self.cluster = Cluster(workdir, env)
        self.out = workdir / "out"
        self.out.mkdir(exist_ok=True)
        self._api: Api | None = None
        self._redis: redis.Redis | None = None

    # --- processes ------------------------------------------------------------------------------------

    def worker(self, name: str, **kwargs: Any) -> Proc:
        return self.cluster.start_worker(name, concurrency=2, **kwargs)

    def coordinator(self, name: str) -> Proc:
        return self.cluster.start_coordinator(name)

    def gateway(self) -> Api:
        port = free_port()
        self.cluster.start_gateway(port)
        self._api = Api(f"http://127.0.0.1:{port}", TOKEN)
        wait_for("the gateway to be ready", lambda: self.api.get("/health/ready")[0] == 200, timeout=60)
        return self._api

    @property
    def api(self) -> Api:
        assert self._api is not None, "start the gateway first"
        return self._api

    def proc(self, name: str) -> Proc:
        return next(p for p in self.cluster.procs if p.name == name)

    # --- state ----------------------------------------------------------------------------------------

    def rows(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A query on the scenario's database, on a fresh connection (it may have been restarted)."""
        with psycopg.connect(self.db_url, connect_timeout=5, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()

    @property
    def redis(self) -> redis.Redis:
        if self._redis is None:
            # the engine's factory: REDIS_URL may be a sentinel:// URL (tests/cluster/test_redis_sentinel.py)
            self._redis = redis_client.connect(self.redis_url, socket_timeout=2, socket_connect_timeout=2)
        return self._redis

    def node_id(self, name: str) -> str:
        """The member id (``<name>:<role>:<incarnation>``) a named process registered with."""
        found = self.rows(
            "SELECT member_id FROM cluster_clustermember WHERE name = %s ORDER BY started_at DESC LIMIT 1",
            [name],
        )
        assert found, f"{name} has not registered"
        return str(found[0][0])

    def is_live(self, node_id: str) -> bool:
        return bool(self.redis.exists(f"{KEY_PREFIX}member:{node_id}"))

    def leases(self) -> dict[int, tuple[str | None, int, str]]:
        rows = self.rows("SELECT shard_id, owner, epoch, state FROM cluster_shardlease")
        return {shard: (owner, epoch, state) for shard, owner, epoch, state in rows}

    def owned(self, node_id: str) -> dict[int, int]:
        """``{shard: epoch}`` of the shards ``node_id`` owns."""
        return {s: e for s, (owner, e, _) in self.leases().items() if owner == node_id}

    def spread(self, node_ids: Sequence[str]) -> Counter[str]:
        load = Counter({n: 0 for n in node_ids})
        load.update(owner for owner, _, _ in self.leases().values() if owner is not None and owner in load)
        return load

    def term(self) -> tuple[int, str]:
        rows = self.rows("SELECT term, leader FROM cluster_coordinatorterm WHERE id = 1")
        return (int(rows[0][0]), str(rows[0][1])) if rows else (0, "")

    def cluster_events(self, event_type: str) -> list[dict[str, Any]]:
        rows = self.rows(
            "SELECT payload FROM cluster_clusterevent WHERE event_type = %s ORDER BY id", [event_type]
        )
        return [row[0] for row in rows]

    def statuses(self, execution_ids: Sequence[str]) -> Counter[str]:
        rows = self.rows(
            "SELECT status, count(*) FROM workflows_execution WHERE id = ANY(%s) GROUP BY status",
            [list(execution_ids)],
        )
        return Counter({status: n for status, n in rows})

    def active_in(self, shards: Sequence[int]) -> int:
        rows = self.rows(
            "SELECT count(*) FROM workflows_execution WHERE shard_id = ANY(%s) "
            "AND status IN ('pending', 'running')",
            [list(shards)],
        )
        return int(rows[0][0])

    def sessions(self) -> str:
        """The scenario database's busy sessions and who blocks them: what a hang is waiting for."""
        try:
            rows = self.rows(
                "SELECT pid, application_name, state, wait_event_type, wait_event, pg_blocking_pids(pid), "
                "left(regexp_replace(query, '\\s+', ' ', 'g'), 160) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'"
            )
        except psycopg.Error as exc:
            return f"(cannot read pg_stat_activity: {exc})"
        return "\n".join(" | ".join(map(str, row)) for row in rows) or "(none busy)"

    def wait_ready(self, workers: Sequence[str], timeout: float = 60) -> dict[str, str]:
        """Every named worker is live and every shard is owned by one of them; returns their member ids."""

        def ready() -> dict[str, str] | None:
            ids = {name: self.node_id(name) for name in workers}
            if not all(self.is_live(i) for i in ids.values()):
                return None
            leases = self.leases().values()
            owners = {owner for owner, _, _ in leases}
            if not leases or owners != set(ids.values()) or any(state != "assigned" for *_, state in leases):
                return None
            return ids

        try:
            return wait_for(
                f"workers {list(workers)} to own every shard", ready, timeout=timeout, interval=0.2
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}; {self.describe()}") from None

    def describe(self) -> str:
        """Live members, shards per owner and state, and the leader: what a stuck cluster looks like."""
        try:
            keys = [k.decode() if isinstance(k, bytes) else str(k) for k in self.redis.keys("*member:*")]
            live = sorted(k.removeprefix(f"{KEY_PREFIX}member:") for k in keys)
            per_owner = Counter((owner, state) for owner, _, state in self.leases().values())
            leader = self.redis.get(f"{KEY_PREFIX}coordinator:leader")
            exited = {p.name: p.popen.returncode for p in self.cluster.procs if p.popen and not p.alive()}
            return (
                f"live {live}; shards per (owner, state) {dict(per_owner)}; "
                f"term {self.term()}; lease {leader!r}; processes exited {exited}"
            )
        except Exception as exc:  # a diagnostic must not hide the failure it describes
            return f"(cannot describe the cluster: {exc!r})"

    # --- workload -------------------------------------------------------------------------------------

    def define(self, bodies: Sequence[dict[str, Any]]) -> None:
        def one(body: dict[str, Any]) -> None:
            status, created = self.api.post("/api/v1/workflows", body)
            assert status == 201, (status, created)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, bodies))

    def execute(self, workflow_ids: Sequence[str], *, retry_unavailable: bool = False) -> list[str]:
        """Start one execution of each workflow through the API; with ``retry_unavailable``, 503s retry."""

        def one(workflow_id: str) -> str:
            deadline = time.monotonic() + 60
            while True:
                try:
                    status, started = self.api.post(f"/api/v1/workflows/{workflow_id}/execute")
                except (urllib.error.URLError, OSError) as exc:
                    status, started = 0, repr(exc)
                if status == 200:
                    return str(started["executionId"])
                if not retry_unavailable or status not in (0, 503) or time.monotonic() > deadline:
                    raise AssertionError(f"execute {workflow_id}: {status} {started}")
                time.sleep(0.2)

        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(one, workflow_ids))

    def pipelines(self, prefix: str, count: int) -> Workload:
        """Define ``count`` pipelines, each with a sink file of its own."""
        load = Workload()
        bodies = []
        for i in range(count):
            body, lines = pipeline(f"{prefix}-{i}", self.out / f"{prefix}-{i}.txt")
            bodies.append(body)
            load.sinks[self.out / f"{prefix}-{i}.txt"] = lines
            load.workflow_ids.append(body["id"])
        self.define(bodies)
        return load

    def wait_finished(self, execution_ids: Sequence[str], timeout: float) -> float:
        """Poll until every execution is terminal; returns the seconds it took. Fails with their states."""
        started = time.monotonic()
        deadline, counts = started + timeout, Counter[str]()
        while True:
            with contextlib.suppress(psycopg.OperationalError):
                counts = self.statuses(execution_ids)
                if counts["completed"] + counts["failed"] == len(execution_ids):
                    return time.monotonic() - started
            if time.monotonic() > deadline:
                stuck = self.rows(
                    "SELECT id, status, shard_id, last_seq, running_nodes FROM workflows_execution "
                    "WHERE id = ANY(%s) AND status IN ('pending', 'running') LIMIT 10",
                    [list(execution_ids)],
                )
                raise AssertionError(
                    f"{len(execution_ids)} executions not all finished after {timeout}s: {dict(counts)}; "
                    f"some unfinished: {stuck}"
                )
            time.sleep(0.25)


def csv_workload(s: Scenario, prefix: str, executions: int, rows: int) -> Workload:
    """``executions`` csv pipelines over one CSV of ``rows`` rows: node tasks of a second or more."""
    source = s.workdir / f"{prefix}.csv"
    lines = write_csv(source, rows)
    load = Workload()
    bodies = []
    for i in range(executions):
        out = s.out / f"{prefix}-{i}.txt"
        bodies.append(csv_pipeline(f"{prefix}-{i}", source, out))
        load.sinks[out] = lines
        load.workflow_ids.append(f"{prefix}-{i}")
    s.define(bodies)
    return load


def busiest(s: Scenario, ids: dict[str, str]) -> tuple[str, dict[int, int]] | None:
    """The worker owning the most running executions (waiting on a node), and its shards."""
    counts = []
    for name, node in ids.items():
        owned = s.owned(node)
        running = s.rows(
            "SELECT count(*) FROM workflows_execution WHERE shard_id = ANY(%s) AND status = 'running'",
            [list(owned)],
        )[0][0]
        counts.append((running, name, owned))
    running, name, owned = max(counts)
    return (name, owned) if running else None


# Catching a worker inside its transaction. Both helpers hold something its next apply needs, in a
# transaction of the test's; once a backend of the worker waits on it (``blocked_backends``), the test pauses
# or cuts the worker off, then lets go: the worker's backend gets what it waited for, and holds it, in a
# transaction its stalled client can neither finish nor give up.


@contextlib.contextmanager
def executions_held(s: Scenario, shards: Sequence[int]) -> Iterator[int]:
    """Lock the running executions of ``shards`` (before the owner's fence); yields our backend pid.

    ``FOR NO KEY UPDATE`` lets node results into the inbox (their foreign key takes ``KEY SHARE``) but makes
    the owner's ``SELECT ... FOR UPDATE`` wait: its apply stops before its fence. Committed on exit.
    """
    with psycopg.connect(s.db_url) as conn:
        conn.execute(
            "SELECT id FROM workflows_execution WHERE shard_id = ANY(%s) AND status = 'running' "
            "FOR NO KEY UPDATE",
            [list(shards)],
        )
        yield conn.info.backend_pid


@contextlib.contextmanager
def appends_held(s: Scenario, shards: Sequence[int]) -> Iterator[int]:
    """Take the next seq of each running execution of ``shards``; yields our backend pid.

    The owner's append of that seq waits on the unique ``(execution, seq)`` index, after its fence passed,
    holding the shard's lease row ``FOR SHARE``. Rolled back on exit, so its events go in, uncommitted.
    """
    with psycopg.connect(s.db_url) as conn:
        running = conn.execute(
            "SELECT id, last_seq FROM workflows_execution WHERE shard_id = ANY(%s) AND status = 'running'",
            [list(shards)],
        ).fetchall()
        for execution_id, last_seq in running:
            conn.execute(
                "INSERT INTO workflows_event (execution_id, seq, type, payload, epoch, created_at) "
                "VALUES (%s, %s, 'Probe', '{}', 0, now()) ON CONFLICT (execution_id, seq) DO NOTHING",
                [execution_id, last_seq + 1],
            )
        yield conn.info.backend_pid
        conn.rollback()


def blocked_backends(
    s: Scenario, holder: int, proc: Proc | None = None, client_addr: str | None = None
) -> list[int]:
    """Backends waiting on a lock of backend ``holder``: of ``proc``'s processes, or from ``client_addr``."""
    return backends_of(s, proc, client_addr, "%s = ANY(pg_blocking_pids(pid))", [holder])


def stalled_backends(s: Scenario, proc: Proc | None = None, client_addr: str | None = None) -> list[int]:
    """Backends of a paused or cut-off worker inside a transaction: each may hold a shard lease.

    Idle in transaction (waiting for the client's next statement), or still active: sending a result the
    client does not read (``ClientWrite``), which no idle timeout ends.
    """
    return backends_of(s, proc, client_addr, "xact_start IS NOT NULL", [])


def backends_of(
    s: Scenario, proc: Proc | None, client_addr: str | None, where: str, params: Sequence[Any]
) -> list[int]:
    """Backends matching ``where`` whose client is ``proc``'s process tree or at ``client_addr``."""
    rows = s.rows(f"SELECT pid, client_port, host(client_addr) FROM pg_stat_activity WHERE {where}", params)
    ports: set[int] = set()
    for p in [psutil.Process(proc.pid), *proc.descendants()] if proc else []:
        with contextlib.suppress(psutil.Error):
            ports.update(c.laddr.port for c in p.net_connections("tcp"))
    return [pid for pid, port, addr in rows if port in ports or (client_addr and addr == client_addr)]


def transaction_ids(s: Scenario, backends: Sequence[int]) -> list[str]:
    """The open transactions of ``backends`` (``xid8`` as text)."""
    found = wait_for(
        "the stalled transactions to hold their locks",
        lambda: s.rows(
            "SELECT backend_xid::text FROM pg_stat_activity WHERE pid = ANY(%s) AND backend_xid IS NOT NULL",
            [list(backends)],
        ),
        timeout=10,
    )
    return [xid for (xid,) in found]


def ended(s: Scenario, xids: Sequence[str]) -> dict[str, str] | None:
    """``{xid: committed|aborted}`` once none of the transactions is in progress any more."""
    rows = s.rows("SELECT x, pg_xact_status(x::xid8) FROM unnest(%s::text[]) AS x", [list(xids)])
    outcomes = {xid: status for xid, status in rows}
    return None if "in progress" in outcomes.values() else outcomes


def poll(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.1) -> float:
    """``wait_for`` that returns how many seconds it waited."""
    started = time.monotonic()
    wait_for(what, check, timeout=timeout, interval=interval)
    return time.monotonic() - started


@pytest.fixture
def make_scenario(
    request: pytest.FixtureRequest, tmp_path: Path, template_db: str
) -> Iterator[Callable[..., Scenario]]:
    """Build the scenario's servers: a clone of the template (or a dedicated PostgreSQL) and its own Redis.

    ``dedicated_pg`` starts a PostgreSQL of the scenario's own; ``listen`` adds addresses both servers
    listen on, ``trust`` networks PostgreSQL accepts clients from; ``env`` is added to every process.
    """
    made: list[Scenario] = []
    cloned: list[str] = []

    def make(
        *,
        dedicated_pg: bool = False,
        listen: Sequence[str] = (),
        trust: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> Scenario:
        redis_server = RedisServer(tmp_path / "redis", free_port(), listen_addresses=("127.0.0.1", *listen))
        redis_server.start()
        postgres = None
        if dedicated_pg:
            image = request.getfixturevalue("pg_image")
            postgres = dedicated_postgres(image, tmp_path / "pg", listen, trust)
            url = postgres.url("workflow")
        else:
            name = f"wfe_cluster_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(_admin_url(), autocommit=True) as conn:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(name), sql.Identifier(template_db)
                    )
                )
            cloned.append(name)
            url = db_url(_admin_url(), name)
        scenario = Scenario(tmp_path, url, redis_server)
        scenario.postgres = postgres
        scenario.cluster.env.update(env or {})
        made.append(scenario)
        return scenario

    yield make

    reports = [getattr(request.node, f"rep_{when}", None) for when in ("setup", "call")]
    failed = any(report is not None and report.failed for report in reports)
    for scenario in made:
        if failed:
            print(f"\n===== sessions of {request.node.name} =====\n{scenario.sessions()}")
        scenario.cluster.kill()
        if failed:
            print(f"\n===== logs of {request.node.name} =====\n{scenario.cluster.logs()}")
        scenario.redis_server.stop()
        if scenario.postgres is not None:
            scenario.postgres.stop()
            shutil.rmtree(scenario.postgres.pgdata, ignore_errors=True)
    with psycopg.connect(_admin_url(), autocommit=True) as conn:
        for name in cloned:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def scenario(make_scenario: Callable[..., Scenario]) -> Scenario:
    """The usual scenario: a template clone, a Redis of its own, three workers allocated together."""
    return make_scenario(env={"WORKFLOW_MIN_NR_OF_MEMBERS": "3"})


def http_status(url: str, timeout: float = 10) -> int:
    """The status of an unauthenticated GET (0 when the server does not answer)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0
