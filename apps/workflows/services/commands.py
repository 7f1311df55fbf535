"""Applying an execution's pending commands: the one place where its journal grows.

``apply_pending`` runs on the worker that owns the execution's shard. In one transaction it locks the
execution row, passes the shard fence, folds every unprocessed inbox command through ``decide``, runs the
inline nodes that become ready, appends the events, marks the commands processed and updates the head row.
Node tasks and cache updates are registered to run after commit.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from apps.cluster import identity
from apps.cluster.sharding import fence
from apps.workflows import metrics
from apps.workflows.engine import decide as d
from apps.workflows.engine.dsl import WorkflowDef
from apps.workflows.engine.graph import Graph
from apps.workflows.engine.state import EventRecord, ExecutionState
from apps.workflows.errors import ShardNotOwned
from apps.workflows.models import Command, Execution, ExecutionLog, NodeOutput
from apps.workflows.services import dispatch, journal, runner

logger = logging.getLogger(__name__)


def to_engine(command: Command) -> d.Command:
    p = command.payload
    if command.type == "start":
        return d.Start()
    if command.type == "node_succeeded":
        return d.NodeSucceeded(p["nodeId"], p["attempt"], p["recordsProcessed"], p["duration"])
    if command.type == "node_failed":
        return d.NodeFailed(p["nodeId"], p["attempt"], p["error"], p.get("retryable", False))
    raise ValueError(f"unknown command type {command.type!r}")


@dataclass
class _Batch:
    """The work of one transaction: state moves forward in memory, rows are written once at the end."""

    execution: Execution
    wf: WorkflowDef
    graph: Graph
    state: ExecutionState
    now: datetime
    events: list[EventRecord] = field(default_factory=list)
    remote: list[d.RunNode] = field(default_factory=list)
    outputs: dict[str, list[Any]] = field(default_factory=dict)
    output_rows: list[NodeOutput] = field(default_factory=list)
    logs: list[ExecutionLog] = field(default_factory=list)

    @property
    def now_ms(self) -> int:
        return int(self.now.timestamp() * 1000)

    def apply(self, command: d.Command) -> None:
        inline: deque[d.RunNode] = deque()
        self._decide(command, inline)
        while inline:
            self._decide(self._run_inline(inline.popleft()), inline)

    def _decide(self, command: d.Command, inline: deque[d.RunNode]) -> None:
        decision = d.decide(self.state, self.graph, command, self.now_ms)
        self.state = decision.state
        self.events.extend(decision.events)
        self.logs.extend(self._log(line, node) for line, node in _describe(decision.events))
        for run in decision.runs:
            (inline if run.inline else self.remote).append(run)

    def _run_inline(self, run: d.RunNode) -> d.Command:
        inputs = runner.gather(self.graph, run.node_id, self._upstream_outputs(run.node_id))
        outcome = runner.run(self.wf, self.graph, self.execution.id, run.node_id, run.attempt, inputs)
        self.logs.extend(self._log(line, run.node_id) for line in outcome.logs)
        if not outcome.ok:
            return d.NodeFailed(run.node_id, run.attempt, outcome.error or "", outcome.retryable)
        assert outcome.records is not None
        self.outputs[run.node_id] = outcome.records
        self.output_rows.append(
            NodeOutput(
                execution_id=self.execution.id,
                node_id=run.node_id,
                attempt=run.attempt,
                records=outcome.records,
                record_count=len(outcome.records),
                size_bytes=outcome.size_bytes,
            )
        )
        return d.NodeSucceeded(run.node_id, run.attempt, outcome.records_processed, outcome.duration_ms)

    def _upstream_outputs(self, node_id: str) -> dict[str, list[Any]]:
        missing = [u for u in self.graph.nodes[node_id].upstream if u not in self.outputs]
        self.outputs.update(load_outputs(self.execution.id, {u: self.state.node(u).attempt for u in missing}))
        return self.outputs

    def _log(self, message: str, node_id: str = "") -> ExecutionLog:
        return ExecutionLog(
            execution_id=self.execution.id, node_id=node_id, message=message, created_at=self.now
        )


def _describe(events: Iterable[EventRecord]) -> Iterable[tuple[str, str]]:
    """Engine lines for the execution log."""
    for e in events:
        p = e.payload
        if e.type == "WorkflowStarted":
            yield f"Workflow {p['workflowName']!r} started ({p['totalNodes']} nodes)", ""
        elif e.type == "NodeExecutionStarted":
            yield f"Node {p['nodeId']} ({p['nodeType']}) attempt {p['attempt']} started", p["nodeId"]
        elif e.type == "NodeExecutionCompleted":
            yield (
                f"Node {p['nodeId']} completed: {p['recordsProcessed']} records in {p['duration']} ms",
                p["nodeId"],
            )
        elif e.type == "NodeExecutionFailed":
            yield f"Node {p['nodeId']} failed: {p['error']}", p["nodeId"]
        elif e.type == "WorkflowCompleted":
            yield f"Workflow completed in {p['duration']} ms", ""
        elif e.type == "WorkflowFailed":
            yield f"Workflow failed: {p['reason']}", ""


def load_outputs(execution_id: str, attempts: dict[str, int]) -> dict[str, list[Any]]:
    """Records of the given node attempts."""
    if not attempts:
        return {}
    rows = NodeOutput.objects.filter(execution_id=execution_id, node_id__in=list(attempts)).values_list(
        "node_id", "attempt", "records"
    )
    return {node: records for node, attempt, records in rows if attempts[node] == attempt}


def apply_pending(execution_id: str, *, recover: bool = False) -> None:
    """Apply every unprocessed command of the execution; with ``recover``, also re-drive running attempts.

    Raises ``ShardNotOwned`` (and changes nothing) when this worker does not own the shard.
    """
    node_id = identity.current()
    try:
        with transaction.atomic():
            _apply_locked(execution_id, node_id, recover)
    except ShardNotOwned:
        metrics.workflow_fence_failures_total.inc()
        journal.cache.drop(execution_id)
        raise


def _apply_locked(execution_id: str, node_id: str | None, recover: bool) -> None:
    with connection.cursor() as cur:
        # a row held by a paused process fails fast; the task is retried with back-off (tasks.TRANSIENT)
        cur.execute("SET LOCAL lock_timeout = '5s'")
    execution = Execution.objects.select_for_update().filter(pk=execution_id).first()
    if execution is None:
        return
    epoch = fence(execution.shard_id, node_id)
    pending = list(
        Command.objects.filter(execution_id=execution_id, processed_at__isnull=True).order_by(
            "created_at", "id"
        )
    )
    if not pending and not recover:
        return
    wf, graph = runner.compiled(execution.version_id)
    batch = _Batch(execution, wf, graph, journal.hydrate(execution), timezone.now())
    was_terminal, before_seq = batch.state.terminal, batch.state.last_seq
    for command in pending:
        batch.apply(to_engine(command))
        command.processed_at, command.processed_seq = batch.now, batch.state.last_seq
    if recover:
        batch.remote.extend(_orphaned_runs(batch, graph))
    _persist(batch, pending, epoch, before_seq)
    _after_commit(batch, pending, was_terminal)


def _orphaned_runs(batch: _Batch, graph: Graph) -> list[d.RunNode]:
    """Running attempts of a recovered execution: their worker may be gone, so run them again.

    Safe because node side effects are idempotent under ``{execution}:{node}:{attempt}`` and a second
    result for the same attempt is the same inbox command (invariant 3).
    """
    scheduled = {(r.node_id, r.attempt) for r in batch.remote}
    return [
        d.RunNode(n, a, False)
        for n, a in d.running_attempts(batch.state)
        if (n, a) not in scheduled and not graph.nodes[n].inline
    ]


def _persist(batch: _Batch, pending: list[Command], epoch: int, before_seq: int) -> None:
    if batch.events:
        journal.append(batch.execution, batch.events, epoch, batch.now)
        journal.maybe_snapshot(before_seq, batch.state)
        _update_head(batch)
    NodeOutput.objects.bulk_create(batch.output_rows, ignore_conflicts=True)
    ExecutionLog.objects.bulk_create(batch.logs)
    if pending:
        Command.objects.bulk_update(pending, ["processed_at", "processed_seq"])


def _ms_to_dt(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def _update_head(batch: _Batch) -> None:
    s = batch.state
    Execution.objects.filter(pk=s.execution_id).update(
        status=s.status.value,
        last_seq=s.last_seq,
        started_at=_ms_to_dt(s.started_ms),
        ended_at=_ms_to_dt(s.ended_ms),
        error=s.error or "",
        running_nodes=[] if s.terminal else [list(pair) for pair in d.running_attempts(s)],
        progressed_at=batch.now,
    )


def _after_commit(batch: _Batch, pending: list[Command], was_terminal: bool) -> None:
    state, execution = batch.state, batch.execution
    runs = list(batch.remote)

    def publish() -> None:
        journal.cache.put(state)
        for run in runs:
            inputs = {u: state.node(u).attempt for u in batch.graph.nodes[run.node_id].upstream}
            dispatch.run_node(execution.id, run.node_id, run.attempt, inputs)
        _observe(batch, pending, was_terminal)

    transaction.on_commit(publish)


def _observe(batch: _Batch, pending: list[Command], was_terminal: bool) -> None:
    now = time.time()
    for command in pending:
        metrics.workflow_routing_latency_seconds.labels(command.type).observe(
            max(0.0, now - command.created_at.timestamp())
        )
    state = batch.state
    if any(e.type == "WorkflowStarted" for e in batch.events):
        metrics.workflow_execution_total.labels(state.workflow_id, "started").inc()
    if state.terminal and not was_terminal:
        metrics.workflow_execution_total.labels(state.workflow_id, state.status.value).inc()
        duration = ((state.ended_ms or 0) - (state.started_ms or 0)) / 1000
        metrics.workflow_execution_duration_seconds.labels(state.workflow_id, state.status.value).observe(
            duration
        )
