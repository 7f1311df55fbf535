"""Writing a batch: every row one apply transaction produces, in one round trip to PostgreSQL.

The statement text never changes; the rows travel as a few JSON arrays that PostgreSQL unpacks with
``jsonb_to_recordset``. So psycopg parses the text once per process (its client-side query cache), the ORM
builds nothing, and an apply costs the same five round trips whatever it wrote: ``BEGIN``, the row lock, the
fence with the pending commands, this, and ``COMMIT``. It used to be thirteen, each built by the ORM, and that
was over half of the cost of a three-node execution (docs/benchmarks.md).

The statements run in order, so the ``DELETE`` of a finished execution's timers sees the ones inserted before
it; the last one answers whether the workflow has queued executions waiting for the slot this one frees.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.db import connection

from apps.workflows import metrics
from apps.workflows.engine import decide as d
from apps.workflows.models import Command
from apps.workflows.services.batch import Batch
from workflow_engine import storable

PERSIST_SQL = """
INSERT INTO workflows_event (execution_id, seq, type, payload, epoch, created_at)
SELECT %(id)s, r.seq, r.type, r.payload, %(epoch)s, %(now)s
FROM jsonb_to_recordset(%(events)s::jsonb) AS r(seq integer, type text, payload jsonb);

UPDATE workflows_execution SET status = h.status, last_seq = h.last_seq,
    started_at = to_timestamp(h.started_ms / 1000.0), ended_at = to_timestamp(h.ended_ms / 1000.0),
    error = h.error, running_nodes = h.running_nodes, progressed_at = %(now)s
FROM jsonb_to_recordset(%(head)s::jsonb)
    AS h(status text, last_seq integer, started_ms bigint, ended_ms bigint, error text, running_nodes jsonb)
WHERE id = %(id)s;

INSERT INTO workflows_nodeoutput
    (execution_id, node_id, attempt, records, record_count, size_bytes, created_at)
SELECT %(id)s, r.node_id, r.attempt, r.records, r.record_count, r.size_bytes, %(now)s
FROM jsonb_to_recordset(%(outputs)s::jsonb)
    AS r(node_id text, attempt integer, records jsonb, record_count integer, size_bytes bigint)
ON CONFLICT DO NOTHING;

INSERT INTO workflows_executionlog (execution_id, node_id, level, message, created_at)
SELECT %(id)s, r.node_id, r.level, r.message, %(now)s
FROM jsonb_to_recordset(%(logs)s::jsonb) AS r(node_id text, level text, message text);

INSERT INTO workflows_timer (execution_id, kind, node_id, attempt, fire_at, created_at)
SELECT %(id)s, r.kind, r.node_id, r.attempt, to_timestamp(r.fire_at_ms / 1000.0), %(now)s
FROM jsonb_to_recordset(%(timers)s::jsonb) AS r(kind text, node_id text, attempt integer, fire_at_ms bigint);

DELETE FROM workflows_timer WHERE %(terminal)s AND execution_id = %(id)s AND fired_at IS NULL;

UPDATE workflows_command SET processed_at = %(now)s, processed_seq = r.seq
FROM jsonb_to_recordset(%(commands)s::jsonb) AS r(id text, seq integer)
WHERE workflows_command.id = r.id;

SELECT %(finished)s AND EXISTS (
    SELECT 1 FROM workflows_execution WHERE workflow_id = %(workflow)s AND status = 'queued'
)"""


logger = logging.getLogger(__name__)


def to_json(value: Any) -> str:
    """JSON text for a ``jsonb`` parameter; ``storable.Unstorable`` (a ``ValueError``) naming the part that
    ``jsonb`` would refuse. Records are checked where they are accepted (``runner.check_limits``), so an
    apply never gets this far with one."""
    return storable.dumps(value)


def engine_json(value: Any, what: str) -> str:
    """As ``to_json`` for rows the engine writes about an execution (events, logs, the head row): their texts
    come from anywhere (an exception's message, a signal's sender), and one the journal cannot store must
    not fail every apply of the execution, so it is stored scrubbed (``storable.scrub``) instead."""
    try:
        return storable.dumps(value)
    except storable.Unstorable as exc:
        metrics.workflow_unstorable_scrubbed_total.labels(what).inc()
        logger.warning("unstorable %s scrubbed before persist: %s", what, exc)
        return storable.dumps(storable.scrub(value))


def persist(batch: Batch, pending: Sequence[Command], epoch: int, was_terminal: bool) -> bool:
    """Write the batch's rows; whether queued executions of the workflow wait for a slot (asked only when
    this execution has just finished, since its slot is the one that frees)."""
    finished = batch.state.terminal and not was_terminal
    params = _params(batch, pending, epoch, finished)
    with connection.cursor() as cur:
        if len(params["outputs"]) > OUTPUTS_SPLIT_CHARS:
            _write_outputs_apart(cur, batch, params)
        cur.execute(PERSIST_SQL, params)
        while cur.nextset():
            pass
        row = cur.fetchone()
    for e in batch.events:
        metrics.workflow_events_appended_total.labels(e.type).inc()
    return bool(row and row[0])


# One jsonb value holds at most 256 MiB: outputs that add up to more than this go one statement each (each is
# below max-node-output-bytes, which conf keeps below that limit).
OUTPUTS_SPLIT_CHARS = 64 * 1024 * 1024
_OUTPUTS_SQL = PERSIST_SQL[PERSIST_SQL.index("INSERT INTO workflows_nodeoutput") :].split(";")[0]


def _write_outputs_apart(cur: Any, batch: Batch, params: dict[str, Any]) -> None:
    for row in batch.output_rows:
        cur.execute(_OUTPUTS_SQL, {"id": params["id"], "now": params["now"], "outputs": to_json([row])})
    params["outputs"] = "[]"


def _params(batch: Batch, pending: Sequence[Command], epoch: int, finished: bool) -> dict[str, Any]:
    execution, state = batch.execution, batch.state
    return {
        "id": execution.id,
        "workflow": execution.workflow_id,
        "epoch": epoch,
        "now": batch.now,
        "terminal": state.terminal,
        "finished": finished,
        "events": engine_json(
            [{"seq": e.seq, "type": e.type, "payload": e.payload} for e in batch.events], "event"
        ),
        "head": engine_json([_head(batch)] if batch.events else [], "head"),
        "outputs": to_json(batch.output_rows),
        "logs": engine_json(batch.logs, "log"),
        # a finished execution's timers are deleted below; do not write new ones only to delete them
        "timers": to_json(
            []
            if state.terminal
            else [
                {"kind": t.kind, "node_id": t.node_id, "attempt": t.attempt, "fire_at_ms": t.fire_at_ms}
                for t in batch.timers
            ]
        ),
        "commands": to_json([{"id": c.id, "seq": c.processed_seq} for c in pending]),
    }


def _head(batch: Batch) -> dict[str, Any]:
    s = batch.state
    return {
        "status": s.status.value,
        "last_seq": s.last_seq,
        "started_ms": s.started_ms,
        "ended_ms": s.ended_ms,
        "error": s.error or "",
        "running_nodes": [] if s.terminal else claimable(batch),
    }


def claimable(batch: Batch) -> list[list[object]]:
    """Running attempts that hold a claim while they run (``claims``): the ones the sweeper can check.

    A ``celery.task`` attempt holds none; its timeout timer ends it instead.
    """
    return [[n, a] for n, a in d.running_attempts(batch.state) if batch.graph.nodes[n].behavior == "run"]
