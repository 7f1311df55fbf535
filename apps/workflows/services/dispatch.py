"""Publishing wake-up hints. A hint may be lost or duplicated: PostgreSQL holds the work (ARCHITECTURE §2).

Call these after commit (``transaction.on_commit``); recovery and the sweeper cover a crash in between.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from apps.cluster.sharding import queue_name
from apps.workflows.services import doorbell

if TYPE_CHECKING:
    from apps.workflows.engine.decide import RunNode

logger = logging.getLogger(__name__)

NODE_QUEUE = "wf.nodes"


def apply_hint(
    execution_id: str, shard_id: int, *, recover: bool = False, countdown: float | None = None
) -> None:
    """Wake the owner of ``shard_id`` to apply the execution's pending commands.

    A plain hint goes through the shard's doorbell (``doorbell``), which sends one message for all the
    executions of a shard that wait meanwhile; a recovery or a delayed hint is a message of its own.
    """
    from apps.workflows.tasks import apply_commands, apply_shard

    try:
        if not recover and countdown is None:
            if doorbell.ring(shard_id, execution_id):
                apply_shard.apply_async((shard_id,), queue=queue_name(shard_id))
            return
        apply_commands.apply_async(
            (execution_id,), {"recover": recover}, queue=queue_name(shard_id), countdown=countdown
        )
    except Exception:  # the broker is down: recovery and the sweeper will re-send it
        logger.warning("could not publish apply hint", exc_info=True, extra={"execution_id": execution_id})


def apply_alone(execution_id: str, shard_id: int) -> None:
    """A message of its own for one execution (one the doorbell must not batch with others)."""
    from apps.workflows.tasks import apply_commands

    try:
        apply_commands.apply_async((execution_id,), queue=queue_name(shard_id))
    except Exception:
        logger.warning("could not publish apply hint", exc_info=True, extra={"execution_id": execution_id})


def ring_again(shard_id: int, execution_ids: Sequence[str]) -> None:
    """Hand executions a shard batch did not reach back to the doorbell, waking the owner if needed."""
    from apps.workflows.tasks import apply_shard

    try:
        if doorbell.ring_again(shard_id, execution_ids):
            apply_shard.apply_async((shard_id,), queue=queue_name(shard_id))
    except Exception:  # their commands stay unprocessed in PostgreSQL: the sweeper hints them again
        logger.warning("could not ring the shard again", exc_info=True, extra={"shard_id": shard_id})


def run_node(execution_id: str, node_id: str, attempt: int, inputs: dict[str, int]) -> None:
    """Ask any worker to run one node attempt; ``inputs`` names the upstream attempts to read."""
    from apps.workflows.tasks import run_node as task

    try:
        task.apply_async((execution_id, node_id, attempt, inputs), queue=NODE_QUEUE)
    except Exception:
        logger.warning(
            "could not publish node run",
            exc_info=True,
            extra={"execution_id": execution_id, "node_id": node_id},
        )


def node_attempt(execution_id: str, run: RunNode, inputs: dict[str, int]) -> None:
    """A node run on the shared node queue; a ``celery.task`` node sends its task from there."""
    run_node(execution_id, run.node_id, run.attempt, inputs)


def stop_attempts(execution_id: str, attempts: Sequence[tuple[str, int]]) -> None:
    """Tell running attempts to stop: a flag nodes poll, and a revoke for tasks sent by ``celery.task``."""
    from apps.workflows.services import celery_nodes, stops

    stops.request(execution_id, attempts)
    celery_nodes.revoke(execution_id, attempts)
