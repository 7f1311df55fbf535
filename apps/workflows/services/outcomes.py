"""A node attempt's outcome, stored once as an inbox command.

The outcome's command id is ``{execution}:{node}:{attempt}:result``: a duplicate delivery, or a re-run after a
crash, produces the same command, which the inbox stores once (invariant 2). Outputs and logs are written only
by the transaction that stored the command, so they are never doubled.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from apps.workflows.models import Command, Execution, ExecutionLog, NodeOutput
from apps.workflows.services import dispatch
from apps.workflows.services.runner import Outcome


def result_id(execution_id: str, node_id: str, attempt: int) -> str:
    return f"{execution_id}:{node_id}:{attempt}:result"


def report(execution: Execution, outcome: Outcome) -> None:
    """Store the outcome once, then wake the shard owner."""
    now = timezone.now()
    with transaction.atomic():
        _, created = Command.objects.get_or_create(
            pk=result_id(execution.id, outcome.node_id, outcome.attempt),
            defaults={
                "execution_id": execution.id,
                "type": "node_succeeded" if outcome.ok else "node_failed",
                "payload": _payload(outcome),
            },
        )
        if created:
            _store(execution.id, outcome, now)
        transaction.on_commit(lambda: dispatch.apply_hint(execution.id, execution.shard_id))


def _payload(o: Outcome) -> dict[str, object]:
    base: dict[str, object] = {"nodeId": o.node_id, "attempt": o.attempt, "duration": o.duration_ms}
    if o.ok:
        return {**base, "recordsProcessed": o.records_processed}
    return {**base, "error": o.error, "retryable": o.retryable}


def _store(execution_id: str, o: Outcome, now: datetime) -> None:
    if o.ok and o.records is not None:
        NodeOutput.objects.bulk_create(
            [
                NodeOutput(
                    execution_id=execution_id,
                    node_id=o.node_id,
                    attempt=o.attempt,
                    records=o.records,
                    record_count=len(o.records),
                    size_bytes=o.size_bytes,
                )
            ],
            ignore_conflicts=True,  # the attempt may already have an output (an inline run, a re-run)
        )
    ExecutionLog.objects.bulk_create(
        ExecutionLog(execution_id=execution_id, node_id=o.node_id, message=line, created_at=now)
        for line in o.logs
    )
