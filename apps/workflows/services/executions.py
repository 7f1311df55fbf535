"""Starting executions: an execution row and its start command, in one transaction."""

from __future__ import annotations

import hashlib
import uuid

from django.db import IntegrityError, transaction

from apps.cluster.sharding import shard_of
from apps.workflows.errors import NotFound
from apps.workflows.models import Command, Execution, Workflow
from apps.workflows.services import dispatch


def new_execution_id() -> str:
    return f"exec_{uuid.uuid4().hex}"


def start(
    workflow_id: str, *, idempotency_key: str | None = None, trigger: str = "api"
) -> tuple[Execution, bool]:
    """The new execution (``True``), or the one an earlier request with the same key started (``False``).

    The start command's id carries the Idempotency-Key, so a client retry cannot start a second execution.
    """
    command_id = _start_command_id(workflow_id, idempotency_key) if idempotency_key else None
    if command_id and (existing := _started_by(command_id)):
        return existing, False
    try:
        return _start(workflow_id, command_id, trigger), True
    except IntegrityError:
        # a concurrent request with the same key won, or the workflow was deleted meanwhile
        if command_id and (existing := _started_by(command_id)):
            return existing, False
        raise NotFound(f"Workflow {workflow_id!r} not found.") from None


def _start_command_id(workflow_id: str, idempotency_key: str) -> str:
    """Keys are scoped per workflow; hashed, so any key length fits the inbox id."""
    digest = hashlib.sha256(f"{workflow_id}\0{idempotency_key}".encode()).hexdigest()
    return f"start:{digest}"


def _started_by(command_id: str) -> Execution | None:
    command = Command.objects.select_related("execution").filter(pk=command_id).first()
    return command.execution if command else None


def _start(workflow_id: str, command_id: str | None, trigger: str) -> Execution:
    with transaction.atomic():
        workflow = Workflow.objects.filter(pk=workflow_id).only("current_version_id").first()
        if workflow is None or workflow.current_version_id is None:
            raise NotFound(f"Workflow {workflow_id!r} not found.")
        execution_id = new_execution_id()
        execution = Execution.objects.create(
            id=execution_id,
            workflow_id=workflow_id,
            version_id=workflow.current_version_id,
            shard_id=shard_of(execution_id),
            trigger=trigger,
        )
        Command.objects.create(id=command_id or f"start:{execution_id}", execution=execution, type="start")
        transaction.on_commit(lambda: dispatch.apply_hint(execution.id, execution.shard_id))
    return execution
