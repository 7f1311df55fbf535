"""When to publish which wake-up hint (the messages themselves are ``workflow_engine.messaging``'s).

A hint may be lost or duplicated: PostgreSQL holds the work (ARCHITECTURE §2). Call these after commit
(``transaction.on_commit``); recovery and the sweeper cover a crash in between, and a broker that is down.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from apps.workflows.services import doorbell
from workflow_engine import messaging

if TYPE_CHECKING:
    from apps.workflows.engine.decide import RunNode

logger = logging.getLogger(__name__)


def apply_hint(
    execution_id: str, shard_id: int, *, recover: bool = False, countdown: float | None = None
) -> None:
    """Wake the owner of ``shard_id`` to apply the execution's pending commands.

    A plain hint goes through the shard's doorbell (``doorbell``), which sends one message for all the
    executions of a shard that wait meanwhile; a recovery or a delayed hint is a message of its own.
    """
    try:
        if not recover and countdown is None:
            if doorbell.ring(shard_id, execution_id):
                messaging.apply_shard(shard_id)
            return
        messaging.apply_commands(execution_id, shard_id, recover=recover, countdown=countdown)
    except Exception:  # the broker is down: recovery and the sweeper will re-send it
        logger.warning("could not publish apply hint", exc_info=True, extra={"execution_id": execution_id})


def apply_alone(execution_id: str, shard_id: int) -> None:
    """A message of its own for one execution (one the doorbell must not batch with others)."""
    try:
        messaging.apply_commands(execution_id, shard_id)
    except Exception:
        logger.warning("could not publish apply hint", exc_info=True, extra={"execution_id": execution_id})


def ring_again(shard_id: int, execution_ids: Sequence[str]) -> None:
    """Hand executions a shard batch did not reach back to the doorbell, waking the owner if needed."""
    try:
        if doorbell.ring_again(shard_id, execution_ids):
            messaging.apply_shard(shard_id)
    except Exception:  # their commands stay unprocessed in PostgreSQL: the sweeper hints them again
        logger.warning("could not ring the shard again", exc_info=True, extra={"shard_id": shard_id})


def node_attempt(execution_id: str, run: RunNode, inputs: dict[str, int]) -> None:
    """A node run on the shared node queue; a ``celery.task`` node sends its task from there."""
    try:
        messaging.run_node_attempt(execution_id, run.node_id, run.attempt, inputs)
    except Exception:  # the attempt stays scheduled in PostgreSQL: the sweeper re-sends it
        logger.warning(
            "could not publish node run",
            exc_info=True,
            extra={"execution_id": execution_id, "node_id": run.node_id},
        )
