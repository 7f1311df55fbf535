"""A workflow's concurrency policy: at most ``max`` active executions; what happens to one more.

``allow`` starts it anyway, ``queue`` keeps it ``queued`` until a slot frees, ``skip`` does not create it,
and ``reject`` answers 409. Starts and releases of one workflow lock its row, so the limit holds with any
number of gateways starting executions at once.
"""

from __future__ import annotations

import logging

from django.db import transaction

from apps.workflows.engine.policies import Concurrency
from apps.workflows.engine.state import ACTIVE_STATUSES, ExecutionStatus
from apps.workflows.engine.validation import DefinitionInvalid
from apps.workflows.errors import InvalidDefinition
from apps.workflows.models import Command, Execution, Workflow
from apps.workflows.services import dispatch, runner
from workflow_engine.errors import NotFound

logger = logging.getLogger(__name__)


def concurrency_of(version_id: int) -> Concurrency:
    """The version's concurrency policy. A version saved under older rules that no longer validates (an
    operator narrowed ``WORKFLOW_HTTP_ALLOWED_HOSTS``, a check became stricter) cannot start: 400 naming its
    problems, rather than an execution whose every apply would fail."""
    try:
        return runner.compiled(version_id)[1].policies.concurrency
    except DefinitionInvalid as exc:
        raise InvalidDefinition(
            "The workflow's definition no longer validates; save a corrected version to run it.",
            details=exc.problems,
        ) from None


def refuse_draft(workflow_id: str, problems: dict[str, list[str]] | None = None) -> InvalidDefinition:
    """The 400 a start of a workflow whose latest save is a draft gets: its problems, as the save answered
    them (loaded when not given). Every way to start comes here: execute, a schedule's fire, a backfill, a
    rerun (services/executions.py)."""
    if problems is None:
        found = Workflow.objects.filter(pk=workflow_id).values_list("draft_problems", flat=True).first()
        problems = found or {}
    return InvalidDefinition(
        f"Workflow {workflow_id!r} is a draft: its latest save does not validate. Fix the problems and save "
        "it to run it.",
        details=problems,
    )


def require_runnable(workflow_id: str) -> None:
    """``NotFound`` for an unknown workflow, ``refuse_draft`` for a draft (a schedule or a backfill is not
    created for one); a workflow saved valid passes."""
    row = Workflow.objects.filter(pk=workflow_id).values("draft_problems").first()
    if row is None:
        raise NotFound(f"Workflow {workflow_id!r} not found.", details={"workflowId": ["Not found."]})
    if row["draft_problems"] is not None:
        raise refuse_draft(workflow_id, row["draft_problems"])


def active_count(workflow_id: str) -> int:
    return Execution.objects.filter(workflow_id=workflow_id, status__in=ACTIVE_STATUSES).count()


def lock(workflow_id: str) -> Workflow | None:
    """Serialize admission decisions for one workflow (call inside a transaction)."""
    return (
        Workflow.objects.select_for_update()
        .filter(pk=workflow_id)
        .only("current_version_id", "draft_problems")
        .first()
    )


def release(workflow_id: str) -> int:
    """Start queued executions while slots are free; returns how many started."""
    if not Execution.objects.filter(workflow_id=workflow_id, status=ExecutionStatus.QUEUED).exists():
        return 0
    with transaction.atomic():
        workflow = lock(workflow_id)
        if workflow is None or workflow.current_version_id is None:
            return 0
        limit = concurrency_of(workflow.current_version_id).max_running
        free = (limit - active_count(workflow_id)) if limit else None
        queued = Execution.objects.filter(workflow_id=workflow_id, status=ExecutionStatus.QUEUED).order_by(
            "created_at", "id"
        )
        started = list(queued if free is None else queued[: max(0, free)])
        for execution in started:
            start_queued(execution)
    return len(started)


def start_queued(execution: Execution) -> None:
    Execution.objects.filter(pk=execution.pk).update(status=ExecutionStatus.PENDING)
    command_id = execution.start_key or f"start:{execution.id}"
    Command.objects.get_or_create(pk=command_id, defaults={"execution": execution, "type": "start"})
    transaction.on_commit(lambda: dispatch.apply_hint(execution.id, execution.shard_id))
