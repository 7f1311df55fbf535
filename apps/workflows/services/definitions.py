"""Workflow definitions: create, update and delete, with immutable content-hashed versions.

Each change records its user (``by``). ``if_match`` is optimistic concurrency: the ETags (``etag``) the writer
read; an update or delete of a workflow whose current version is not among them fails with 412, decided under
the workflow's row lock so two writers holding the same ETag cannot both win.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from typing import Any

from django.db import IntegrityError, transaction

from apps.workflows import hooks, metrics
from apps.workflows.engine.state import ACTIVE_STATUSES
from apps.workflows.engine.validation import DefinitionInvalid, validate
from apps.workflows.errors import InvalidDefinition
from apps.workflows.models import Execution, Workflow, WorkflowVersion
from apps.workflows.nodes.sandbox import current_sandbox
from workflow_engine.errors import Conflict, NotFound, PreconditionFailed


def content_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _validated(body: Any) -> Any:
    try:
        return validate(body, current_sandbox())
    except DefinitionInvalid as exc:
        raise InvalidDefinition("The workflow definition is invalid.", details=exc.problems) from None


ANY = "*"  # If-Match: * (any current version)


def etag(version: WorkflowVersion | None) -> str:
    """The opaque entity tag of a workflow's current version: its number and content hash. The number tells
    apart a body that came back to an earlier content (so no ABA); the hash, a workflow deleted and created
    again with another body."""
    return f"{version.number}-{version.content_hash[:16]}" if version else ""


def _check_precondition(
    workflow_id: str, current: WorkflowVersion | None, if_match: Collection[str] | None
) -> None:
    if if_match is None or ANY in if_match:
        return
    tag = etag(current)
    if tag not in if_match:
        raise PreconditionFailed(
            f"Workflow {workflow_id!r} changed: its current version is {current.number if current else 0} "
            f'(ETag "{tag}"); read it again and retry.',
            details={"If-Match": [f'Does not match the current ETag "{tag}".']},
        )


def create(body: Any, *, by: str = "") -> Workflow:
    """Store a new workflow at version 1; 409 if the id exists. Nothing is stored when invalid."""
    try:
        wf = _validated(body)
    except InvalidDefinition:
        metrics.workflow_created_total.labels("failed").inc()
        raise
    try:
        with transaction.atomic():
            workflow = Workflow.objects.create(id=wf.id, name=wf.name, created_by=by, updated_by=by)
            _new_version(workflow, body, 1, by)
            hooks.definition_saved(workflow, body)
    except IntegrityError:
        metrics.workflow_created_total.labels("failed").inc()
        raise Conflict(
            f"Workflow {wf.id!r} already exists; update it with PUT.",
            details={"id": [f"Workflow {wf.id!r} already exists."]},
        ) from None
    metrics.workflow_created_total.labels("success").inc()
    return workflow


def _new_version(workflow: Workflow, body: Any, number: int, by: str) -> WorkflowVersion:
    version = WorkflowVersion.objects.create(
        workflow=workflow, number=number, content_hash=content_hash(body), definition=body, created_by=by
    )
    workflow.current_version = version
    workflow.updated_by = by
    workflow.save(update_fields=["name", "current_version", "updated_by", "updated_at"])
    return version


def _locked(workflow_id: str) -> tuple[Workflow, WorkflowVersion | None]:
    """The workflow's row, locked, and its current version read after the lock was granted.

    Not one query with a join: a request that waited for the lock gets the row as the other writer left
    it, but a joined row from the statement's older snapshot, so the version that writer just created
    would read as NULL (and its number be taken again: the unique violation of issue 10).
    """
    workflow = Workflow.objects.select_for_update().filter(pk=workflow_id).first()
    if workflow is None:
        raise NotFound(f"Workflow {workflow_id!r} not found.")
    version_id = workflow.current_version_id
    current = WorkflowVersion.objects.filter(pk=version_id).first() if version_id is not None else None
    return workflow, current


def update(
    workflow_id: str, body: Any, *, by: str = "", if_match: Collection[str] | None = None
) -> tuple[Workflow, bool]:
    """A new version when the body changed; running executions keep the version they pinned (and what it
    waits for: an approval of a running execution stays, whatever the new version holds)."""
    if isinstance(body, dict) and body.get("id") not in (None, workflow_id):
        raise InvalidDefinition(
            "Workflow ID mismatch",
            details={"id": [f"The body's id {body.get('id')!r} does not match the URL's {workflow_id!r}."]},
        )
    wf = _validated(body)
    with transaction.atomic():
        workflow, current = _locked(workflow_id)
        _check_precondition(workflow_id, current, if_match)
        workflow.current_version = current
        if current is not None and current.content_hash == content_hash(body):
            return workflow, False
        workflow.name = wf.name
        _new_version(workflow, body, (current.number if current else 0) + 1, by)
        hooks.definition_saved(workflow, body)
    return workflow, True


def delete(workflow_id: str, *, if_match: Collection[str] | None = None) -> None:
    """Delete a workflow with its versions and finished executions; 409 while one is still active."""
    with transaction.atomic():
        workflow, current = _locked(workflow_id)
        _check_precondition(workflow_id, current, if_match)
        active = Execution.objects.filter(workflow=workflow, status__in=ACTIVE_STATUSES).count()
        if active:
            raise Conflict(
                f"Workflow {workflow_id!r} has {active} running execution(s); wait or cancel them first."
            )
        workflow.delete()


def current(workflow_id: str) -> WorkflowVersion:
    """The workflow's current version (its definition and ``etag``)."""
    workflow = Workflow.objects.select_related("current_version").filter(pk=workflow_id).first()
    if workflow is None or workflow.current_version is None:
        raise NotFound(f"Workflow {workflow_id!r} not found.", details={"workflowId": [workflow_id]})
    return workflow.current_version


def get(workflow_id: str) -> Workflow:
    workflow = Workflow.objects.select_related("current_version").filter(pk=workflow_id).first()
    if workflow is None:
        raise NotFound(f"Workflow {workflow_id!r} not found.")
    return workflow
