"""Workflow definitions: create, update and delete, with immutable content-hashed versions."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import IntegrityError, transaction

from apps.workflows import metrics
from apps.workflows.engine.validation import DefinitionInvalid, validate
from apps.workflows.errors import Conflict, InvalidDefinition, NotFound
from apps.workflows.models import ACTIVE_STATUSES, Execution, Workflow, WorkflowVersion


def content_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _validated(body: Any) -> Any:
    try:
        return validate(body)
    except DefinitionInvalid as exc:
        raise InvalidDefinition("The workflow definition is invalid.", details=exc.problems) from None


def create(body: Any) -> Workflow:
    """Store a new workflow at version 1; 409 if the id exists. Nothing is stored when invalid."""
    try:
        wf = _validated(body)
    except InvalidDefinition:
        metrics.workflow_created_total.labels("failed").inc()
        raise
    try:
        with transaction.atomic():
            workflow = Workflow.objects.create(id=wf.id, name=wf.name)
            _new_version(workflow, body, 1)
            _sync_schedule(workflow, body)
    except IntegrityError:
        metrics.workflow_created_total.labels("failed").inc()
        raise Conflict(
            f"Workflow {wf.id!r} already exists; update it with PUT.",
            details={"id": [f"Workflow {wf.id!r} already exists."]},
        ) from None
    metrics.workflow_created_total.labels("success").inc()
    return workflow


def _new_version(workflow: Workflow, body: Any, number: int) -> WorkflowVersion:
    version = WorkflowVersion.objects.create(
        workflow=workflow, number=number, content_hash=content_hash(body), definition=body
    )
    workflow.current_version = version
    workflow.save(update_fields=["current_version", "updated_at"])
    return version


def update(workflow_id: str, body: Any) -> tuple[Workflow, bool]:
    """A new version when the body changed; running executions keep the version they pinned."""
    if isinstance(body, dict) and body.get("id") not in (None, workflow_id):
        raise InvalidDefinition(
            "Workflow ID mismatch",
            details={"id": [f"The body's id {body.get('id')!r} does not match the URL's {workflow_id!r}."]},
        )
    wf = _validated(body)
    with transaction.atomic():
        workflow = (
            Workflow.objects.select_for_update(of=("self",))
            .select_related("current_version")
            .filter(pk=workflow_id)
            .first()
        )
        if workflow is None:
            raise NotFound(f"Workflow {workflow_id!r} not found.")
        current = workflow.current_version
        if current is not None and current.content_hash == content_hash(body):
            return workflow, False
        workflow.name = wf.name
        _new_version(workflow, body, (current.number if current else 0) + 1)
        _sync_schedule(workflow, body)
    return workflow, True


def _sync_schedule(workflow: Workflow, body: Any) -> None:
    """The original's ``metadata.schedule`` becomes (or updates, or removes) the workflow's schedule."""
    from apps.schedules.services import schedules

    schedules.sync_from_definition(workflow, body)


def delete(workflow_id: str) -> None:
    """Delete a workflow with its versions and finished executions; 409 while one is still active."""
    with transaction.atomic():
        workflow = Workflow.objects.select_for_update().filter(pk=workflow_id).first()
        if workflow is None:
            raise NotFound(f"Workflow {workflow_id!r} not found.")
        active = Execution.objects.filter(workflow=workflow, status__in=ACTIVE_STATUSES).count()
        if active:
            raise Conflict(
                f"Workflow {workflow_id!r} has {active} running execution(s); wait or cancel them first."
            )
        workflow.delete()


def get(workflow_id: str) -> Workflow:
    workflow = Workflow.objects.select_related("current_version").filter(pk=workflow_id).first()
    if workflow is None:
        raise NotFound(f"Workflow {workflow_id!r} not found.")
    return workflow
