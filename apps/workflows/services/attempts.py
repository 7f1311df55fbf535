"""Running one node attempt on a worker: the ``run_node_attempt`` task's service.

A ``celery.task`` node's attempt is sent to the user's task (``celery_nodes``); any other runs here, under a
claim (``claims``), and its outcome is reported as an inbox command (``outcomes``).
"""

from __future__ import annotations

from apps.workflows.engine.state import TERMINAL_STATUSES
from apps.workflows.models import Command, Execution
from apps.workflows.services import celery_nodes, claims, outcomes, runner
from apps.workflows.services.batch import load_outputs


def run_attempt(execution_id: str, node_id: str, attempt: int, inputs: dict[str, int]) -> None:
    """Run the attempt unless its result is already recorded or the execution has ended."""
    if Command.objects.filter(pk=outcomes.result_id(execution_id, node_id, attempt)).exists():
        return
    execution = (
        Execution.objects.filter(pk=execution_id).only("status", "version_id", "shard_id", "input").first()
    )
    if execution is None or execution.status in TERMINAL_STATUSES:
        return
    wf, graph = runner.compiled(execution.version_id)
    if graph.nodes[node_id].behavior == "task":
        celery_nodes.send(execution, node_id, attempt, inputs)
        return
    upstream = load_outputs(execution_id, inputs)
    with claims.claimed(execution_id, node_id, attempt):
        outcome = runner.run(wf, graph, execution_id, node_id, attempt, upstream, execution.input)
        outcomes.report(execution, outcome)
