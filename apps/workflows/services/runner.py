"""Running one node attempt: inputs in, records or a failure out. Shared by inline runs and node tasks.

Running writes nothing: callers store the outcome in the transaction that reports it. The one read is
``compiled``, which loads a version's definition once per process and keeps it (versions never change).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from apps.workflows import metrics
from apps.workflows.engine.dsl import WorkflowDef
from apps.workflows.engine.graph import Graph
from apps.workflows.engine.validation import compile_definition
from apps.workflows.models import WorkflowVersion
from apps.workflows.nodes.base import NodeContext, NodeError
from apps.workflows.nodes.registry import resolve
from apps.workflows.nodes.sandbox import current_sandbox
from apps.workflows.services import stops
from workflow_engine import storable
from workflow_engine.tunables import engine_settings

logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What an attempt produced: ``records`` on success, ``error`` on failure, and its log lines."""

    node_id: str
    attempt: int
    records: list[Any] | None
    records_processed: int
    duration_ms: int
    error: str | None = None
    retryable: bool = False
    logs: list[str] = field(default_factory=list)
    size_bytes: int = 0

    def __post_init__(self) -> None:
        # an exception's text may hold anything (a NUL character, a whole payload): the journal must take it
        if self.error is not None:
            self.error = storable.text(self.error)
        self.logs = [storable.text(line) for line in self.logs]

    @property
    def ok(self) -> bool:
        return self.error is None


@lru_cache(maxsize=512)
def compiled(version_id: int) -> tuple[WorkflowDef, Graph]:
    """A version's definition and graph; versions are immutable, so the cache never goes stale."""
    body = WorkflowVersion.objects.values_list("definition", flat=True).get(pk=version_id)
    timeout_ms = int(engine_settings.default_node_timeout * 1000)
    return compile_definition(body, current_sandbox(), default_node_timeout_ms=timeout_ms)


def run(
    wf: WorkflowDef,
    graph: Graph,
    execution_id: str,
    node_id: str,
    attempt: int,
    upstream: Mapping[str, Sequence[Any]],
    execution_input: Mapping[str, Any] | None = None,
) -> Outcome:
    """Run one attempt on its upstream nodes' records; a node's failure becomes ``Outcome.error``."""
    node = wf.node(node_id)
    impl = resolve(
        node.node_type,
        node.declared_type,
        has_inputs=bool(graph.nodes[node_id].upstream),
        has_outputs=bool(graph.nodes[node_id].downstream),
    )
    assert impl is not None
    logs: list[str] = []
    ctx = NodeContext(
        execution_id,
        wf.id,
        node_id,
        attempt,
        impl.with_defaults(node.config),
        logs.append,
        inputs_by_node={u: upstream[u] for u in graph.nodes[node_id].upstream},
        cancelled=lambda: stops.requested(execution_id, node_id, attempt),
        input=execution_input or {},
    )
    started = time.perf_counter()
    try:
        result = impl.run(ctx, gather(graph, node_id, upstream))
        outcome = check_limits(node_id, attempt, result.records, result.records_processed, logs)
    except NodeError as exc:
        outcome = Outcome(node_id, attempt, None, 0, 0, str(exc), exc.retryable, logs)
    except Exception as exc:  # a bug in a node must fail the node, not the engine
        logger.exception("node raised", extra={"execution_id": execution_id, "node_id": node_id})
        outcome = Outcome(node_id, attempt, None, 0, 0, f"{type(exc).__name__}: {exc}", False, logs)
    outcome.duration_ms = int((time.perf_counter() - started) * 1000)
    metrics.workflow_node_duration_seconds.labels(node.node_type, "ok" if outcome.ok else "failed").observe(
        outcome.duration_ms / 1000
    )
    return outcome


def check_limits(node_id: str, attempt: int, records: list[Any], processed: int, logs: list[str]) -> Outcome:
    """The single gate for node outputs, inline and remote: an output the journal cannot store (too many
    records, too many bytes, a value ``jsonb`` refuses) fails the node with a clear error, never the apply
    that would store it. Not retryable: the same input gives the same output (a retry policy with
    ``retryOn: all`` still retries it)."""
    max_records, max_bytes = engine_settings.max_node_output_records, engine_settings.max_node_output_bytes
    if len(records) > max_records:
        error = f"output of {len(records)} records exceeds max-node-output-records={max_records}"
        return Outcome(node_id, attempt, None, 0, 0, error, False, logs)
    try:
        size = len(storable.encode(records))
    except storable.Unstorable:
        error = storable.records_problem(records) or "output cannot be written as JSON"
        return Outcome(node_id, attempt, None, 0, 0, error, False, logs)
    if size > max_bytes:
        error = f"output of {size} bytes exceeds max-node-output-bytes={max_bytes}"
        return Outcome(node_id, attempt, None, 0, 0, error, False, logs)
    return Outcome(node_id, attempt, records, processed, 0, logs=logs, size_bytes=size)


def gather(graph: Graph, node_id: str, outputs: Mapping[str, Sequence[Any]]) -> list[Any]:
    """A node's input: its upstream outputs concatenated in edge order (fan-in)."""
    return [record for upstream in graph.nodes[node_id].upstream for record in outputs[upstream]]
