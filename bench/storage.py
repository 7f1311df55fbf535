"""Storage benchmark: the API's read queries over 100,000 executions and 1,000,000 events (issue 6, req. 4).

    .venv/bin/python bench/storage.py            # --workflows 20 --executions 100000 --samples 200

It starts its own PostgreSQL and Redis (devservices) and, in this process:

1. creates ``--workflows`` workflows (``definitions.create``) of four nodes: ``sequence.numbers`` → ``map`` →
   ``http.request`` (a POST per record to a local HTTP server, retried once) → ``aggregate.count``;
2. runs six template executions of each through the engine's own services, as a worker would
   (``executions.start``, ``commands.apply_pending``, the node task ``attempts.run_attempt``,
   ``timers.fire_due``, ``control.cancel``): completed; completed on the second attempt; failed after two
   attempts; cancelled; still running (waiting on the HTTP node); pending (its start command not yet
   applied). This process owns every shard for the purpose;
3. copies the templates server-side (``INSERT ... SELECT`` joined with a plan table loaded by ``COPY``) into
   ``--executions`` executions with new ids and shards, spread over ``--days`` days, with their events,
   inbox commands, node outputs, log lines and timers; event payloads get their new ``executionId`` and
   timestamps. The newest executions of each workflow are the running and pending ones; the others are
   completed (80%), retried and completed (8%), failed (6%) or cancelled (2%), about ten events each;
4. runs ``VACUUM ANALYZE``, then times the query functions the API views call (``services/queries.py``)
   ``--samples`` times each with random ids (p50, p95, p99), plus a few routes through Django's test client,
   captures the SQL each emits and its ``EXPLAIN (ANALYZE, BUFFERS)``, and reports which indexes it used.

5. times the global execution list (``GET /api/v1/executions``, ``services/listing.py``) under 17 filter
   combinations (none, status, workflow, trigger, started and ended hours, id prefix, a deep cursor, 1,000
   rows, count=true ...; the copies' triggers are spread over api, schedule, rerun and backfill), with the
   p95 over all of them and the indexes each statement used.

It also reports the bytes per event on disk (table, TOAST and indexes). Results: a table on stdout and
``bench/results/storage.json`` (with every plan).
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import random
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import BenchEnv, percentile  # noqa: E402

TARGET_MS = 50.0
# template kind -> share of the executions (running and pending are the newest of each workflow)
OLDER = {"completed": 80, "retried": 8, "failed": 6, "cancelled": 2}
NEWEST = {"running": 3, "pending": 1}
KINDS = (*OLDER, *NEWEST)
TABLES = (
    "workflows_execution",
    "workflows_event",
    "workflows_command",
    "workflows_nodeoutput",
    "workflows_executionlog",
    "workflows_timer",
)


# --------------------------------------------------------------------------------------------- templates


class OrdersApi:
    """A local HTTP API for the ``http.request`` node: 201 with a small JSON body, or 503 when ``failing``."""

    def __init__(self) -> None:
        self.failing = False
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if api.failing:
                    self._send(503, {"error": "upstream unavailable", "retryAfter": 1})
                    return
                value = json.loads(body or b"null")
                self._send(201, {"id": f"ord_{value}", "amount": value, "status": "accepted"})

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()


def definition(index: int, api_host: str) -> dict[str, Any]:
    nodes = [
        {"id": "numbers", "nodeType": "sequence.numbers", "config": {"start": 1, "end": 5 + index % 6}},
        {"id": "price", "nodeType": "map", "config": {"expression": "value * 100"}},
        {
            "id": "post",
            "nodeType": "http.request",
            "config": {"url": f"http://{api_host}/orders", "method": "POST"},
            "retry": {"maxAttempts": 2, "backoff": "fixed", "initialInterval": "1s"},
        },
        {"id": "count", "nodeType": "aggregate.count", "config": {}},
    ]
    chain = ["numbers", "price", "post", "count"]
    edges = [{"id": f"e{i}", "source": a, "target": b} for i, (a, b) in enumerate(itertools.pairwise(chain))]
    return {"id": f"orders-{index:02d}", "name": f"Orders sync {index:02d}", "nodes": nodes, "edges": edges}


def own_every_shard() -> None:
    """Make this process the owner of every shard, so ``commands.apply_pending`` passes the fence here."""
    from apps.cluster import identity
    from apps.cluster.models import ShardLease
    from workflow_engine.tunables import engine_settings

    node_id = identity.new_member_id("worker")
    identity.adopt(node_id)
    for shard in range(engine_settings.number_of_shards):
        ShardLease.objects.update_or_create(
            shard_id=shard, defaults={"owner": node_id, "epoch": 1, "state": "active"}
        )


def _run_post(execution_id: str, api: OrdersApi, *, fail: bool) -> None:
    """Run the pending ``post`` attempt as the node task does, then apply its result as the shard owner."""
    from apps.workflows.models import Execution
    from apps.workflows.services import attempts, commands

    execution = Execution.objects.get(pk=execution_id)
    attempt = dict((n, a) for n, a in execution.running_nodes)["post"]
    api.failing = fail
    attempts.run_attempt(execution_id, "post", attempt, {"price": 1})
    commands.apply_pending(execution_id)


def _fire_retry(execution_id: str) -> None:
    from apps.workflows.models import Timer
    from apps.workflows.services import commands, timers

    due = datetime.now(UTC) - timedelta(seconds=1)
    Timer.objects.filter(execution_id=execution_id, kind="retry", fired_at__isnull=True).update(fire_at=due)
    timers.fire_due()
    commands.apply_pending(execution_id)


def run_template(workflow_id: str, kind: str, api: OrdersApi) -> str:
    """One real execution of ``kind``, driven through the services a worker and the leader call."""
    from apps.workflows.services import commands, control, executions

    execution, _ = executions.start(workflow_id, trigger="api")
    if kind == "pending":
        return execution.id
    commands.apply_pending(execution.id)  # WorkflowStarted, numbers and price inline, post dispatched
    if kind == "running":
        return execution.id
    if kind == "cancelled":
        control.cancel(execution.id, by="ops@example.com", reason="duplicate order batch")
        commands.apply_pending(execution.id)
        return execution.id
    if kind == "completed":
        _run_post(execution.id, api, fail=False)
        return execution.id
    _run_post(execution.id, api, fail=True)
    _fire_retry(execution.id)
    _run_post(execution.id, api, fail=kind == "failed")
    return execution.id


def make_templates(workflows: int, api: OrdersApi) -> dict[str, dict[str, str]]:
    """``{workflow_id: {kind: template execution id}}``."""
    from apps.workflows.models import Execution
    from apps.workflows.services import definitions

    own_every_shard()
    out: dict[str, dict[str, str]] = {}
    for i in range(workflows):
        workflow = definitions.create(definition(i, api.host))
        out[workflow.id] = {kind: run_template(workflow.id, kind, api) for kind in KINDS}
    for by_kind in out.values():
        got = dict(Execution.objects.filter(id__in=by_kind.values()).values_list("id", "status"))
        for kind, execution_id in by_kind.items():
            expected = {"retried": "completed"}.get(kind, kind)
            if got[execution_id] != expected:
                raise SystemExit(f"template {kind} ended {got[execution_id]}, not {expected}")
    return out


# --------------------------------------------------------------------------------------------- bulk copy


def plan(
    templates: dict[str, dict[str, str]], total: int, days: float, seed: int
) -> list[tuple[str, str, str, datetime]]:
    """``(new id, shard, template id, created_at)`` for ``total`` executions minus the templates."""
    from apps.cluster.sharding import shard_of
    from apps.workflows.services.executions import new_execution_id

    rng = random.Random(seed)
    now = datetime.now(UTC)
    per_workflow = (total - sum(len(t) for t in templates.values())) // len(templates)
    newest = round(per_workflow * sum(NEWEST.values()) / 100)
    rows = []
    for by_kind in templates.values():
        older = rng.choices(list(OLDER), weights=list(OLDER.values()), k=per_workflow - newest)
        recent = rng.choices(list(NEWEST), weights=list(NEWEST.values()), k=newest)
        span = timedelta(days=days) / max(1, per_workflow)
        for i, kind in enumerate([*older, *recent]):
            created = now - timedelta(days=days) + span * i + timedelta(seconds=rng.uniform(0, 30))
            if i >= len(older):  # running and pending: the last minutes
                created = now - timedelta(minutes=10) + timedelta(seconds=rng.uniform(0, 600))
            new_id = new_execution_id()
            rows.append((new_id, str(shard_of(new_id)), by_kind[kind], created))
    return rows


def _copy_plan(cursor: Any, rows: list[tuple[str, str, str, datetime]]) -> None:
    cursor.execute(
        "CREATE UNLOGGED TABLE bench_plan (id varchar(64) PRIMARY KEY, shard_id int, template_id text, "
        "created_at timestamptz, shift interval, shift_ms bigint)"
    )
    buffer = io.StringIO()
    for new_id, shard, template, created in rows:
        buffer.write(f"{new_id}\t{shard}\t{template}\t{created.isoformat()}\n")
    with cursor.cursor.copy("COPY bench_plan (id, shard_id, template_id, created_at) FROM STDIN") as copy:
        copy.write(buffer.getvalue())
    cursor.execute(
        "UPDATE bench_plan p SET shift = p.created_at - t.created_at, "
        "shift_ms = (extract(epoch FROM p.created_at - t.created_at) * 1000)::bigint "
        "FROM workflows_execution t WHERE t.id = p.template_id"
    )


# How the copies were started, by the first byte of the md5 of their id: a schedule's fire 25%, a rerun 3%,
# a backfill 1%, the API the rest (the templates were all started through the API)
_TRIGGER = """CASE WHEN get_byte(decode(md5(p.id), 'hex'), 0) < 64 THEN 'schedule'
            WHEN get_byte(decode(md5(p.id), 'hex'), 0) < 72 THEN 'rerun'
            WHEN get_byte(decode(md5(p.id), 'hex'), 0) < 75 THEN 'backfill' ELSE t.trigger END"""

# Shifted copies of each template's rows, in the order a live system would have appended them.
_COPIES = {
    "workflows_execution": """
        INSERT INTO workflows_execution (id, workflow_id, version_id, shard_id, status, last_seq, trigger,
            start_key, input, error, running_nodes, created_at, started_at, ended_at, progressed_at)
        SELECT p.id, t.workflow_id, t.version_id, p.shard_id, t.status, t.last_seq, {trigger}, '', t.input,
            t.error, t.running_nodes, t.created_at + p.shift, t.started_at + p.shift, t.ended_at + p.shift,
            t.progressed_at + p.shift
        FROM bench_plan p JOIN workflows_execution t ON t.id = p.template_id
        ORDER BY p.created_at""".replace("{trigger}", _TRIGGER),
    "workflows_command": """
        INSERT INTO workflows_command (id, execution_id, type, payload, created_at, processed_at,
            processed_seq)
        SELECT CASE WHEN t.id LIKE 'timer:%%'
                THEN 'timer:' || nextval(pg_get_serial_sequence('workflows_timer', 'id'))
                ELSE replace(t.id, t.execution_id, p.id) END,
            p.id, t.type, t.payload, t.created_at + p.shift, t.processed_at + p.shift, t.processed_seq
        FROM bench_plan p JOIN workflows_command t ON t.execution_id = p.template_id
        ORDER BY t.created_at + p.shift""",
    "workflows_event": """
        INSERT INTO workflows_event (execution_id, seq, type, payload, epoch, created_at)
        SELECT p.id, t.seq, t.type,
            t.payload || jsonb_build_object('executionId', p.id,
                'timestamp', (t.payload->>'timestamp')::bigint + p.shift_ms)
            || CASE WHEN t.payload ? 'fireAt'
                THEN jsonb_build_object('fireAt', (t.payload->>'fireAt')::bigint + p.shift_ms)
                ELSE '{}'::jsonb END,
            t.epoch, t.created_at + p.shift
        FROM bench_plan p JOIN workflows_event t ON t.execution_id = p.template_id
        ORDER BY t.created_at + p.shift, p.id, t.seq""",
    "workflows_nodeoutput": """
        INSERT INTO workflows_nodeoutput (execution_id, node_id, attempt, records, record_count, size_bytes,
            created_at)
        SELECT p.id, t.node_id, t.attempt, t.records, t.record_count, t.size_bytes, t.created_at + p.shift
        FROM bench_plan p JOIN workflows_nodeoutput t ON t.execution_id = p.template_id
        ORDER BY t.created_at + p.shift""",
    "workflows_executionlog": """
        INSERT INTO workflows_executionlog (execution_id, node_id, level, message, created_at)
        SELECT p.id, t.node_id, t.level, t.message, t.created_at + p.shift
        FROM bench_plan p JOIN workflows_executionlog t ON t.execution_id = p.template_id
        ORDER BY t.created_at + p.shift, t.id""",
    "workflows_timer": """
        INSERT INTO workflows_timer (execution_id, kind, node_id, attempt, fire_at, fired_at, created_at)
        SELECT p.id, t.kind, t.node_id, t.attempt, t.fire_at + p.shift, t.fired_at + p.shift,
            t.created_at + p.shift
        FROM bench_plan p JOIN workflows_timer t ON t.execution_id = p.template_id""",
}


def bulk_copy(rows: list[tuple[str, str, str, datetime]]) -> dict[str, float]:
    """Insert the copies server-side; seconds per table."""
    from django.db import connection, transaction

    seconds: dict[str, float] = {}
    with transaction.atomic(), connection.cursor() as cursor:
        _copy_plan(cursor, rows)
        for table, sql in _COPIES.items():
            t0 = time.perf_counter()
            cursor.execute(sql)
            seconds[table] = time.perf_counter() - t0
        cursor.execute("DROP TABLE bench_plan")
    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    seconds["vacuum_analyze"] = time.perf_counter() - t0
    return seconds


# --------------------------------------------------------------------------------------------- measuring


def counts() -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        out = {}
        for table in TABLES:
            cursor.execute(f"SELECT count(*) FROM {table}")
            out[table] = cursor.fetchone()[0]
        cursor.execute("SELECT status, count(*) FROM workflows_execution GROUP BY status ORDER BY 2 DESC")
        out.update({f"status:{s}": n for s, n in cursor.fetchall()})
    return out


def sizes(events: int) -> dict[str, Any]:
    """The event table on disk: heap, TOAST, each index, and bytes per event."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_total_relation_size(c.oid), pg_relation_size(c.oid), pg_table_size(c.oid), "
            "pg_indexes_size(c.oid), coalesce(pg_total_relation_size(c.reltoastrelid), 0) "
            "FROM pg_class c WHERE c.relname = 'workflows_event'"
        )
        total, heap, table, indexes, toast = cursor.fetchone()
        cursor.execute(
            "SELECT i.relname, pg_relation_size(i.oid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = 'workflows_event'::regclass ORDER BY 2 DESC"
        )
        per_index = dict(cursor.fetchall())
        cursor.execute("SELECT avg(pg_column_size(payload)), avg(pg_column_size(e.*)) FROM workflows_event e")
        payload, row = cursor.fetchone()
        cursor.execute(
            "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relname = ANY(%s)",
            [list(TABLES)],
        )
        tables = dict(cursor.fetchall())
    return {
        "events": events,
        "total_bytes": total,
        "heap_bytes": heap,
        "toast_bytes": toast,
        "table_bytes": table,
        "index_bytes": indexes,
        "per_index_bytes": per_index,
        "bytes_per_event": total / events,
        "heap_bytes_per_event": heap / events,
        "table_bytes_per_event": table / events,
        "index_bytes_per_event": indexes / events,
        "avg_payload_bytes": float(payload),
        "avg_row_bytes": float(row),
        "tables_total_bytes": tables,
    }


class Ids:
    """Random ids to query: executions (with their workflow) and workflows."""

    def __init__(self, seed: int) -> None:
        from apps.workflows.models import Execution

        self.rng = random.Random(seed)
        self.executions = list(Execution.objects.values_list("id", "workflow_id"))
        self.workflows = sorted({w for _, w in self.executions})

    def execution(self) -> tuple[str, str]:
        return self.rng.choice(self.executions)

    def workflow(self) -> str:
        return self.rng.choice(self.workflows)


def queries_to_time(ids: Ids) -> dict[str, tuple[str, Callable[[], Any]]]:
    """name -> (route, a call of the function its view calls, with fresh random ids each time)."""
    from apps.workflows.services import queries as q

    def executions_page() -> Any:
        return q.execution_list(
            ids.workflow(), limit=100, offset=ids.rng.randrange(0, 4900, 100), status=None
        )

    return {
        "execution_detail": ("GET /api/v1/executions/{id}", lambda: q.execution_detail(ids.execution()[0])),
        "execution_events": (
            "GET /api/v1/executions/{id}/events",
            lambda: q.execution_events(ids.execution()[0], after=0, limit=1000),
        ),
        "history_execution": (
            "GET /api/history/{wf}/execution/{id}",
            lambda: q.history_execution(*reversed(ids.execution())),
        ),
        "history_timeline": (
            "GET /api/history/{wf}/timeline?executionId={id}",
            lambda: q.history_timeline(*reversed(ids.execution())),
        ),
        "history_timeline_oldest": (
            "GET /api/history/{wf}/timeline",
            lambda: q.history_timeline(ids.workflow(), None),
        ),
        "execution_logs": (
            "GET /api/v1/workflows/{wf}/executions/{id}/logs",
            lambda: q.execution_logs(*reversed(ids.execution()), limit=1000, offset=0),
        ),
        "execution_list": (
            "GET /api/v1/workflows/{wf}/executions",
            lambda: q.execution_list(ids.workflow(), limit=100, offset=0, status=None),
        ),
        "execution_list_failed": (
            "GET /api/v1/workflows/{wf}/executions?status=failed",
            lambda: q.execution_list(ids.workflow(), limit=100, offset=0, status="failed"),
        ),
        "execution_list_page": ("GET /api/v1/workflows/{wf}/executions?offset=0..4900", executions_page),
        "workflow_status": (
            "GET /api/v1/workflows/{wf}/status",
            lambda: q.workflow_status(ids.workflow()),
        ),
        "history": ("GET /api/history/{wf}", lambda: q.history(ids.workflow(), limit=100)),
        "history_status": (
            "GET /api/history/{wf}/status",
            lambda: q.history_status(ids.workflow(), limit=100),
        ),
    }


class Spans:
    """What the global list's filters pick from: executions with their keys, and the time spans."""

    def __init__(self, seed: int) -> None:
        from apps.workflows.models import Execution

        self.rng = random.Random(seed)
        self.rows = list(Execution.objects.values_list("id", "workflow_id", "created_at"))
        self.workflows = sorted({w for _, w, _ in self.rows})
        ended = Execution.objects.filter(ended_at__isnull=False).order_by("ended_at")
        self.ended = (ended.first().ended_at, ended.last().ended_at)  # type: ignore[union-attr]
        created = sorted(c for _, _, c in self.rows)
        self.created = (created[0], created[-1])

    def window(self, span: tuple[datetime, datetime], width: timedelta) -> tuple[datetime, datetime]:
        start = span[0] + (span[1] - span[0] - width) * self.rng.random()
        return start, start + width

    def deep(self) -> Any:
        """A cursor at a random row: a page anywhere in the list, as deep as paging there would reach."""
        from apps.workflows.services import listing

        execution_id, _, created_at = self.rng.choice(self.rows)
        return listing.Position(created_at, execution_id)

    def prefix(self) -> str:
        return "exec_" + "".join(self.rng.choice("0123456789abcdef") for _ in range(3))  # about 1/4096


def global_list_to_time(spans: Spans) -> dict[str, tuple[str, Callable[[], Any]]]:
    """name -> (query string, a call of ``listing.list_executions`` with fresh random values each time)."""
    from apps.workflows.services import listing

    def page(limit: int = 50, cursor: Any = None, count: bool = False, **filters: Any) -> Callable[[], Any]:
        def call() -> Any:
            values = {k: v() if callable(v) else v for k, v in filters.items()}
            at = cursor() if callable(cursor) else cursor
            return listing.list_executions(listing.Filters(**values), limit=limit, cursor=at, count=count)

        return call

    def hour(span: tuple[datetime, datetime]) -> Callable[[], tuple[datetime, datetime]]:
        return lambda: spans.window(span, timedelta(hours=1))

    started, ended = hour(spans.created), hour(spans.ended)
    one = lambda: (spans.rng.choice(spans.workflows),)  # noqa: E731
    three = lambda: tuple(spans.rng.sample(spans.workflows, 3))  # noqa: E731

    def in_window(
        which: str, span: Callable[[], tuple[datetime, datetime]], **more: Any
    ) -> Callable[[], Any]:
        def call() -> Any:
            after, before = span()
            range_ = {f"{which}_after": after, f"{which}_before": before}
            return page(**range_, **more)()

        return call

    return {
        "none": ("", page()),
        "status=failed": ("status=failed", page(statuses=("failed",))),
        "status=failed,cancelled": ("status=failed,cancelled", page(statuses=("failed", "cancelled"))),
        "status=running": ("status=running", page(statuses=("running",))),
        "workflowId (1)": ("workflowId={wf}", page(workflow_ids=one)),
        "workflowId (3)": ("workflowId={a},{b},{c}", page(workflow_ids=three)),
        "trigger=rerun": ("trigger=rerun", page(triggers=("rerun",))),
        "trigger=schedule,backfill": ("trigger=schedule,backfill", page(triggers=("schedule", "backfill"))),
        "started in 1 h": ("startedAfter={t}&startedBefore={t+1h}", in_window("started", started)),
        "ended in 1 h": ("endedAfter={t}&endedBefore={t+1h}", in_window("ended", ended)),
        "idPrefix": ("idPrefix=exec_{3 hex}", page(id_prefix=spans.prefix)),
        "deep cursor": ("cursor={a random row}", page(cursor=spans.deep)),
        "deep cursor, status=failed": (
            "status=failed&cursor=...",
            page(cursor=spans.deep, statuses=("failed",)),
        ),
        "failed, 1 workflow, started in 1 day": (
            "status=failed&workflowId={wf}&startedAfter=..&startedBefore=..",
            in_window(
                "started",
                lambda: spans.window(spans.created, timedelta(days=1)),
                statuses=("failed",),
                workflow_ids=one,
            ),
        ),
        "limit=1000": ("limit=1000", page(limit=1000)),
        "count=true": ("count=true", page(count=True)),
        "count=true, status=failed": ("status=failed&count=true", page(count=True, statuses=("failed",))),
    }


def timed(call: Callable[[], Any], samples: int, warmup: int) -> dict[str, float]:
    for _ in range(warmup):
        call()
    ms = []
    for _ in range(samples):
        t0 = time.perf_counter()
        call()
        ms.append((time.perf_counter() - t0) * 1000)
    return {
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms),
    }


_INDEX_SCAN = re.compile(r"(Index Only Scan|Index Scan)(?: Backward)? using (\S+) on (\S+)")
_BITMAP_SCAN = re.compile(r"Bitmap Heap Scan on (\S+)|Bitmap Index Scan on (\S+)")
_SEQ_SCAN = re.compile(r"Seq Scan on (\S+)")
_BIG = ("workflows_execution", "workflows_event", "workflows_command", "workflows_executionlog")


def scans_of(plan: str) -> list[dict[str, str]]:
    """The table scans of a text plan: ``{"scan", "index", "table"}`` (a bitmap scan under its heap scan)."""
    scans, heap = [], ""
    for line in plan.splitlines():
        if m := _INDEX_SCAN.search(line):
            scans.append({"scan": m[1], "index": m[2], "table": m[3]})
        elif m := _BITMAP_SCAN.search(line):
            if m[1]:
                heap = m[1]
            else:
                scans.append({"scan": "Bitmap Index Scan", "index": m[2], "table": heap})
        elif m := _SEQ_SCAN.search(line):
            scans.append({"scan": "Seq Scan", "index": "", "table": m[1]})
    return scans


def explain(call: Callable[[], Any]) -> list[dict[str, Any]]:
    """Each SQL statement ``call`` emits, with its plan and the scans in it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        call()
    out = []
    with connection.cursor() as cursor:
        for query in captured.captured_queries:
            sql = query["sql"]
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            out.append({"sql": sql, "plan": plan, "scans": scans_of(plan)})
    return out


def describe_scans(statements: list[dict[str, Any]]) -> tuple[str, bool]:
    """``"table: scan (index); ..."`` over all statements, and whether a big table was read sequentially."""
    seen: list[str] = []
    seq_on_big = False
    for statement in statements:
        for s in statement["scans"]:
            text = f"{s['table']}: {s['scan']}" + (f" {s['index']}" if s["index"] else "")
            if text not in seen:
                seen.append(text)
            seq_on_big |= s["scan"] == "Seq Scan" and s["table"] in _BIG
    return "; ".join(seen), seq_on_big


def measure_global_list(spans: Spans, samples: int) -> dict[str, Any]:
    """Each filter combination of ``GET /api/v1/executions``: its latency, its statements and the indexes
    they use; and the p95 over every call of every combination."""
    results: dict[str, Any] = {}
    pooled: list[float] = []
    for name, (query, call) in global_list_to_time(spans).items():
        statements = explain(call)
        scans, seq_on_big = describe_scans(statements)
        for _ in range(10):
            call()
        ms = []
        for _ in range(samples):
            t0 = time.perf_counter()
            call()
            ms.append((time.perf_counter() - t0) * 1000)
        pooled += ms
        results[name] = {
            "query": query,
            "p50_ms": percentile(ms, 50),
            "p95_ms": percentile(ms, 95),
            "p99_ms": percentile(ms, 99),
            "max_ms": max(ms),
            "queries": len(statements),
            "scans": scans,
            "seq_scan_on_big_table": seq_on_big,
            "statements": statements,
        }
        print(f"  GET /api/v1/executions?{query}: p95 {results[name]['p95_ms']:.1f} ms", flush=True)
    return {
        "combinations": results,
        "all_p50_ms": percentile(pooled, 50),
        "all_p95_ms": percentile(pooled, 95),
        "worst_p95_ms": max(r["p95_ms"] for r in results.values()),
    }


def client_timings(ids: Ids, samples: int) -> dict[str, dict[str, float]]:
    """A few routes through Django's test client (routing, authentication, DRF, JSON rendering)."""
    from django.contrib.auth import get_user_model
    from django.test import Client
    from rest_framework.authtoken.models import Token

    user = get_user_model().objects.create_user("bench-reader", is_superuser=True)  # roles: an admin
    client = Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")

    def get(path: str) -> Callable[[], Any]:
        def call() -> None:
            response = client.get(path.format(wf=ids.workflow(), id=ids.execution()[0]))
            if response.status_code != 200:
                raise SystemExit(f"{path}: {response.status_code} {response.content[:200]!r}")

        return call

    def history_execution() -> None:
        execution_id, workflow_id = ids.execution()
        response = client.get(f"/api/history/{workflow_id}/execution/{execution_id}")
        if response.status_code != 200:
            raise SystemExit(f"history execution: {response.status_code}")

    routes: dict[str, Callable[[], Any]] = {
        "GET /api/v1/executions/{id}": get("/api/v1/executions/{id}"),
        "GET /api/v1/executions/{id}/events": get("/api/v1/executions/{id}/events"),
        "GET /api/history/{wf}/execution/{id}": history_execution,
        "GET /api/v1/workflows/{wf}/executions": get("/api/v1/workflows/{wf}/executions"),
        "GET /api/v1/workflows/{wf}/status": get("/api/v1/workflows/{wf}/status"),
        "GET /api/v1/executions": get("/api/v1/executions"),
        "GET /api/v1/executions?status=failed&count=true": get("/api/v1/executions?status=failed&count=true"),
    }
    return {route: timed(call, samples, warmup=5) for route, call in routes.items()}


# --------------------------------------------------------------------------------------------- report


def print_report(summary: dict[str, Any]) -> None:
    print(f"\nrows: {json.dumps(summary['rows'])}")
    print(f"load: {json.dumps({k: round(v, 1) for k, v in summary['load_seconds'].items()})}")
    size = summary["event_storage"]
    print(
        f"\nworkflows_event on disk: {size['total_bytes'] / 2**20:.1f} MiB for {size['events']:,} events = "
        f"{size['bytes_per_event']:.0f} B/event (heap {size['heap_bytes_per_event']:.0f}, "
        f"heap+TOAST+maps {size['table_bytes_per_event']:.0f}, indexes {size['index_bytes_per_event']:.0f}; "
        f"avg payload {size['avg_payload_bytes']:.0f} B, avg row {size['avg_row_bytes']:.0f} B)"
    )
    for name, n in size["per_index_bytes"].items():
        print(f"  index {name}: {n / 2**20:.1f} MiB ({n / size['events']:.0f} B/event)")
    print(f"\n{'query':<26}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}  target  scans")
    for name, q in summary["queries"].items():
        mark = "ok" if q["p95_ms"] < TARGET_MS else "MISS"
        print(f"{name:<26}{q['p50_ms']:>8.2f}{q['p95_ms']:>8.2f}{q['p99_ms']:>8.2f}  {mark:<6}  {q['scans']}")
    listed = summary.get("global_list")
    if listed:
        print(f"\n{'GET /api/v1/executions?':<60}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}  target  scans")
        for q in listed["combinations"].values():
            mark = "ok" if q["p95_ms"] < TARGET_MS else "MISS"
            print(
                f"{q['query'][:60]:<60}{q['p50_ms']:>8.2f}{q['p95_ms']:>8.2f}{q['p99_ms']:>8.2f}  {mark:<6}  "
                f"{q['scans']}"
            )
        print(
            f"every combination together: p50 {listed['all_p50_ms']:.2f} ms, "
            f"p95 {listed['all_p95_ms']:.2f} ms; "
            f"worst combination's p95 {listed['worst_p95_ms']:.2f} ms (target < {TARGET_MS:.0f} ms)"
        )
    if summary.get("client"):
        print(f"\n{'through the test client':<42}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}")
        for route, t in summary["client"].items():
            print(f"{route:<42}{t['p50_ms']:>8.2f}{t['p95_ms']:>8.2f}{t['p99_ms']:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workflows", type=int, default=20)
    parser.add_argument("--executions", type=int, default=100_000)
    parser.add_argument("--days", type=float, default=30, help="the executions' creation times span")
    parser.add_argument("--samples", type=int, default=200, help="timed calls per query")
    parser.add_argument("--client-samples", type=int, default=100, help="per route; 0 to skip")
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()

    api = OrdersApi()
    extra = {"WORKFLOW_HTTP_ALLOWED_HOSTS": api.host, "WORKFLOW_PROFILE": "test"}
    env = BenchEnv("storage", extra_env=extra)
    try:
        with env:
            load: dict[str, float] = {}
            t0 = time.perf_counter()
            templates = make_templates(args.workflows, api)
            load["templates"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            rows = plan(templates, args.executions, args.days, args.seed)
            load["plan"] = time.perf_counter() - t0
            load.update(bulk_copy(rows))
            n = counts()
            print(f"loaded in {sum(load.values()):.0f}s: {n}", flush=True)

            ids = Ids(args.seed)
            results: dict[str, Any] = {}
            for name, (route, call) in queries_to_time(ids).items():
                statements = explain(call)
                scans, seq_on_big = describe_scans(statements)
                results[name] = {
                    "route": route,
                    **timed(call, args.samples, warmup=10),
                    "queries": len(statements),
                    "scans": scans,
                    "seq_scan_on_big_table": seq_on_big,
                    "statements": statements,
                }
                print(f"  {name}: p95 {results[name]['p95_ms']:.1f} ms", flush=True)
            summary: dict[str, Any] = {
                "parameters": vars(args),
                "rows": n,
                "load_seconds": load,
                "event_storage": sizes(n["workflows_event"]),
                "queries": results,
                "target_p95_ms": TARGET_MS,
                "global_list": measure_global_list(Spans(args.seed), args.samples),
                "client": client_timings(ids, args.client_samples) if args.client_samples else {},
            }
            print_report(summary)
            print(f"\nresult: {env.write_result(summary)}")
    finally:
        api.close()
        shutil.rmtree(env.workdir / "pg", ignore_errors=True)  # gigabytes of PostgreSQL data, servers stopped


if __name__ == "__main__":
    main()
