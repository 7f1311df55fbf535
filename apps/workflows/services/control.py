"""Controlling executions: cancel, pause, resume, retry from the failed nodes, rerun, and signals.

Each is a command in the execution's inbox, applied by the shard owner like any other (so it survives any
process dying); the checks here only turn requests that cannot apply into a clear 404 or 409.

Every command records its user (``by``) in its payload, and so in the event it becomes. An Idempotency-Key is
scoped per execution, command and user; the same key with another payload is a 409 naming the key.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from django.db import transaction

from apps.workflows.engine.state import TERMINAL_STATUSES, ExecutionStatus
from apps.workflows.engine.waits import rejection_of
from apps.workflows.models import Command, Execution
from apps.workflows.services import commands, runner
from apps.workflows.services.executions import Started, admit
from workflow_engine.errors import Conflict, NotFound

_REQUIRES = {
    "pause": (ExecutionStatus.RUNNING,),
    "resume": (ExecutionStatus.PAUSED,),
    "retry_failed": (ExecutionStatus.FAILED,),
}


def get(execution_id: str) -> Execution:
    execution = Execution.objects.filter(pk=execution_id).first()
    if execution is None:
        raise NotFound(f"Execution {execution_id!r} not found.")
    return execution


def _command_id(kind: str, execution_id: str, key: str | None, by: str) -> str:
    if not key:
        return f"{kind}:{execution_id}:{uuid.uuid4().hex}"
    scoped = f"{by}\0{key}"
    return f"{kind}:{execution_id}:{hashlib.sha256(scoped.encode()).hexdigest()[:32]}"


def _submit(execution: Execution, kind: str, payload: dict[str, Any], key: str | None) -> Execution:
    command_id = _command_id(kind, execution.id, key, str(payload.get("by", "")))
    if not commands.submit(execution, kind, payload, command_id):
        _same_request(command_id, payload, key)
    return execution


def _same_request(command_id: str, payload: dict[str, Any], key: str | None) -> None:
    """A retry with the key must repeat the request; another payload under it is refused (409)."""
    stored = Command.objects.filter(pk=command_id).values_list("payload", flat=True).first()
    # compared as values, not hashes: jsonb may write a number back in another form (1e2 as 100)
    if stored is not None and stored != payload:
        raise Conflict(
            f"Idempotency-Key {key!r} was already used with a different request body.",
            details={"Idempotency-Key": [f"{key!r} was used for another request to this execution."]},
        )


def _require(execution: Execution, kind: str) -> None:
    allowed = _REQUIRES.get(kind)
    if allowed is not None and execution.status not in allowed:
        wanted = " or ".join(allowed)
        raise Conflict(
            f"Execution {execution.id} is {execution.status}; {kind.replace('_', ' ')} needs it {wanted}."
        )


def control(execution_id: str, kind: str, *, by: str, key: str | None = None) -> Execution:
    """``pause``, ``resume`` or ``retry_failed``."""
    execution = get(execution_id)
    _require(execution, kind)
    return _submit(execution, kind, {"by": by}, key)


def cancel(execution_id: str, *, by: str, reason: str = "", key: str | None = None) -> Execution:
    execution = get(execution_id)
    if execution.status in TERMINAL_STATUSES:
        raise Conflict(f"Execution {execution.id} has already ended ({execution.status}).")
    if execution.status == ExecutionStatus.QUEUED and _cancel_queued(execution):
        execution.refresh_from_db()
        return execution
    return _submit(execution, "cancel", {"by": by, "reason": reason or f"cancelled by {by}"}, key)


def _cancel_queued(execution: Execution) -> bool:
    """A queued execution has no journal yet: it is cancelled on its head row, unless it just started."""
    with transaction.atomic():
        return bool(
            Execution.objects.filter(pk=execution.pk, status=ExecutionStatus.QUEUED).update(
                status=ExecutionStatus.CANCELLED, error="cancelled while queued"
            )
        )


def signal(execution_id: str, name: str, payload: Any, *, by: str, key: str | None = None) -> Execution:
    execution = get(execution_id)
    if execution.status in TERMINAL_STATUSES:
        raise Conflict(f"Execution {execution.id} has ended ({execution.status}); it takes no signals.")
    return _submit(execution, "signal", {"name": name, "payload": payload, "by": by}, key)


def approval_signals(execution: Execution) -> set[str]:
    """Signal names that approve or reject an approval node of the execution (they need a permission)."""
    graph = runner.compiled(execution.version_id)[1]
    names = {n.wait.signal for n in graph.nodes.values() if n.wait and n.wait.approval and n.wait.signal}
    return names | {rejection_of(name) for name in names}


def rerun(execution_id: str, *, by: str = "", key: str | None = None) -> Started:
    """A new execution of the same workflow version, under the workflow's concurrency policy."""
    execution = get(execution_id)
    return admit(
        execution.workflow_id,
        idempotency_key=f"rerun:{execution_id}:{key}" if key else None,
        trigger="rerun",
        version_id=execution.version_id,
        input=execution.input,
        by=by,
    )
