"""The work of one apply transaction: state moves forward in memory; rows are written once, by ``commands``.

A batch folds commands through ``decide``, runs inline nodes as they become ready, and collects everything the
decisions ask for: events, node runs for Celery, timers, attempts to stop, and outputs of nodes the engine
completed itself (a delay's pass-through, a signal's payload).

The inline work of one batch is bounded (``INLINE_BUDGET_SECONDS``, ``INLINE_BUDGET_RUNS``): the executions of
a shard are applied one after another, often in one transaction, so a fan-out of thousands of inline nodes run
in one go would hold every other execution of its shard for as long. Past the budget, the inline attempts
already started stay running, and the one row a batch writes itself, a ``run_started_inline`` inbox command,
continues them in a transaction of their own, after whatever else rang the shard's doorbell meanwhile. Being
a command, it is never lost: the sweeper re-sends an unprocessed one (invariant 4).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction

from apps.workflows.engine import decide as d
from apps.workflows.engine import state as st
from apps.workflows.engine.dsl import WorkflowDef
from apps.workflows.engine.graph import Graph
from apps.workflows.engine.state import EventRecord, ExecutionState
from apps.workflows.models import Command, Execution, NodeOutput
from apps.workflows.services import dispatch, runner
from workflow_engine import storable

# A batch stops running inline nodes once it has run this many, or run them for this long (whichever comes
# first, and after one at least, so that every transaction moves its execution forward).
INLINE_BUDGET_RUNS = 500
INLINE_BUDGET_SECONDS = 0.25


RUN_STARTED_INLINE = "run_started_inline"


def _start(p: dict[str, Any]) -> d.Command:
    return d.Start()


_BUILDERS = {
    "start": _start,
    "node_succeeded": lambda p: d.NodeSucceeded(
        p["nodeId"], p["attempt"], p["recordsProcessed"], p["duration"]
    ),
    "node_failed": lambda p: d.NodeFailed(p["nodeId"], p["attempt"], p["error"], p.get("retryable", False)),
    "timer_fired": lambda p: d.TimerFired(p["kind"], p.get("nodeId", ""), p.get("attempt", 0)),
    "cancel": lambda p: d.Cancel(p.get("by", ""), p.get("reason") or "cancelled"),
    "pause": lambda p: d.Pause(p.get("by", "")),
    "resume": lambda p: d.Resume(p.get("by", "")),
    "retry_failed": lambda p: d.RetryFailed(p.get("by", "")),
    "signal": lambda p: d.Signal(p["name"], p.get("payload"), p.get("by", "")),
    RUN_STARTED_INLINE: lambda p: d.RunStartedInline(),
}
COMMAND_TYPES = tuple(_BUILDERS)


def to_engine(command: Command) -> d.Command:
    builder = _BUILDERS.get(command.type)
    if builder is None:
        raise ValueError(f"unknown command type {command.type!r}")
    return builder(command.payload)


@dataclass
class Batch:
    execution: Execution
    wf: WorkflowDef
    graph: Graph
    state: ExecutionState
    now: datetime
    events: list[EventRecord] = field(default_factory=list)
    remote: list[d.RunNode] = field(default_factory=list)
    timers: list[d.Timer] = field(default_factory=list)
    stops: list[tuple[str, int]] = field(default_factory=list)
    outputs: dict[str, list[Any]] = field(default_factory=dict)
    # rows for services/persist.py, in the shape its JSON parameters take
    output_rows: list[dict[str, Any]] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    upstream_done: dict[str, int] = field(default_factory=dict)  # decide's memo, one per batch
    inline_runs: int = 0
    deferred: str | None = None  # the id of the run_started_inline command this batch wrote
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        # one copy of the nodes mapping per batch, updated in place by every decision (``decide``), never
        # the hydrated state itself: the entity cache may hold it, and a rollback must leave it as it was
        self.state = st.owned(self.state)

    @property
    def now_ms(self) -> int:
        return int(self.now.timestamp() * 1000)

    def apply(self, command: d.Command) -> None:
        inline: deque[d.RunNode] = deque()
        self._decide(command, inline)
        while inline:
            if self._over_budget():
                inline.clear()  # started, left running: the run_started_inline command finds them
                self._defer()
                return
            self.inline_runs += 1
            self._decide(self._run_inline(inline.popleft()), inline)

    def _over_budget(self) -> bool:
        if self.inline_runs == 0:
            return False
        return (
            self.inline_runs >= INLINE_BUDGET_RUNS or time.monotonic() - self.started >= INLINE_BUDGET_SECONDS
        )

    def _defer(self) -> None:
        """Continue the started inline attempts in a later transaction, once per batch (an execution that
        has ended has nothing to continue: its running attempts were stopped)."""
        if self.deferred is not None or self.state.terminal:
            return
        execution = self.execution
        # unique: this batch ran an inline attempt, so its events moved last_seq past any earlier one's
        self.deferred = f"{execution.id}:inline:{self.state.last_seq}"
        Command.objects.create(id=self.deferred, execution_id=execution.id, type=RUN_STARTED_INLINE)
        transaction.on_commit(lambda: dispatch.apply_hint(execution.id, execution.shard_id))

    def _decide(self, command: d.Command, inline: deque[d.RunNode]) -> None:
        decision = d.decide(
            self.state,
            self.graph,
            command,
            self.now_ms,
            owned_state=True,
            upstream_done=self.upstream_done,
        )
        self.state = decision.state
        self.events.extend(decision.events)
        self.timers.extend(decision.timers)
        self.stops.extend(decision.stops)
        self.logs.extend(self._log(line, node) for line, node in describe(decision.events))
        for node_id, (kind, records) in decision.outputs.items():
            self._store_output(
                node_id,
                self.state.node(node_id).attempt,
                self._inputs(node_id) if kind == "passthrough" else records,
            )
        for run in decision.runs:
            (inline if run.inline else self.remote).append(run)

    def _run_inline(self, run: d.RunNode) -> d.Command:
        upstream = self._upstream_outputs(run.node_id)
        outcome = runner.run(
            self.wf, self.graph, self.execution.id, run.node_id, run.attempt, upstream, self.execution.input
        )
        self.logs.extend(self._log(line, run.node_id) for line in outcome.logs)
        if not outcome.ok:
            return d.NodeFailed(run.node_id, run.attempt, outcome.error or "", outcome.retryable)
        assert outcome.records is not None
        self._store_output(run.node_id, run.attempt, outcome.records, outcome.size_bytes)
        return d.NodeSucceeded(run.node_id, run.attempt, outcome.records_processed, outcome.duration_ms)

    def _store_output(self, node_id: str, attempt: int, records: list[Any], size: int | None = None) -> None:
        """Keep a node's output for its downstream nodes and the journal; ``size`` (its JSON bytes) is known
        for a node the runner ran, and measured here for one the engine completed itself (a signal's payload,
        a wait passing its inputs on), which were storable where they came in."""
        if size is None:
            size = len(storable.encode(records, f"node {node_id!r} output"))
        self.outputs[node_id] = records
        self.output_rows.append(
            {
                "node_id": node_id,
                "attempt": attempt,
                "records": records,
                "record_count": len(records),
                "size_bytes": size,
            }
        )

    def _inputs(self, node_id: str) -> list[Any]:
        return runner.gather(self.graph, node_id, self._upstream_outputs(node_id))

    def _upstream_outputs(self, node_id: str) -> dict[str, list[Any]]:
        missing = [u for u in self.graph.nodes[node_id].upstream if u not in self.outputs]
        self.outputs.update(load_outputs(self.execution.id, {u: self.state.node(u).attempt for u in missing}))
        return self.outputs

    def _log(self, message: str, node_id: str = "") -> dict[str, Any]:
        return {"node_id": node_id, "level": "INFO", "message": message}


def load_outputs(execution_id: str, attempts: dict[str, int]) -> dict[str, list[Any]]:
    """Records of the given node attempts."""
    if not attempts:
        return {}
    rows = NodeOutput.objects.filter(execution_id=execution_id, node_id__in=list(attempts)).values_list(
        "node_id", "attempt", "records"
    )
    return {node: records for node, attempt, records in rows if attempts[node] == attempt}


_LINES = {
    "WorkflowStarted": lambda p: f"Workflow {p['workflowName']!r} started ({p['totalNodes']} nodes)",
    "NodeExecutionStarted": lambda p: f"Node {p['nodeId']} ({p['nodeType']}) attempt {p['attempt']} started",
    "NodeWaiting": lambda p: (
        f"Node {p['nodeId']} waiting for {p['waitingFor']}" + (f" {p['signal']!r}" if p.get("signal") else "")
    ),
    "NodeExecutionCompleted": lambda p: (
        f"Node {p['nodeId']} completed: {p['recordsProcessed']} records in "
        f"{p['duration']} ms" + (f" (approved by {p['approvedBy']})" if p.get("approvedBy") else "")
    ),
    "NodeExecutionFailed": lambda p: f"Node {p['nodeId']} attempt {p['attempt']} failed: {p['error']}",
    "NodeRetryScheduled": lambda p: f"Node {p['nodeId']} attempt {p['nextAttempt']} in {p['delayMs']} ms",
    "SignalReceived": lambda p: (
        f"Signal {p['name']!r} received" + (f" from {p['by']}" if p.get("by") else "")
    ),
    "WorkflowPaused": lambda p: f"Workflow paused by {p.get('by') or 'unknown'}",
    "WorkflowResumed": lambda p: f"Workflow resumed by {p.get('by') or 'unknown'}",
    "WorkflowRetried": lambda p: f"Workflow retried from {', '.join(p['nodes']) or 'its failed nodes'}",
    "WorkflowCancelled": lambda p: f"Workflow cancelled by {p.get('by') or 'unknown'}: {p.get('reason')}",
    "WorkflowCompleted": lambda p: f"Workflow completed in {p['duration']} ms",
    "WorkflowFailed": lambda p: f"Workflow failed: {p['reason']}",
}


def describe(events: Iterable[EventRecord]) -> Iterable[tuple[str, str]]:
    """Engine lines for the execution log: ``(message, node id)``."""
    for e in events:
        line = _LINES.get(e.type)
        if line is not None:
            yield line(e.payload), e.payload.get("nodeId", "")
