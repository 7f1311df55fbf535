"""Workflow definitions: create, update and delete, with immutable content-hashed versions.

Each change records its user (``by``). ``if_match`` is optimistic concurrency: the ETags (``etag``) the writer
read; an update or delete of a workflow whose current version is not among them fails with 412, decided under
the workflow's row lock so two writers holding the same ETag cannot both win.

Drafts: through the API (``draft_ok``), a body that is a JSON object with a valid id is saved even when it
does not validate. It is kept on the workflow row with its problems (``Workflow.draft``), never as a version:
versions are what executions pin, so they are only ever valid definitions. While the latest save is a draft,
GET answers it and no execution starts (``admission.refuse_draft``); the last valid version stays for the
executions that pinned it. Python callers (``client``, ``bootstrap``) keep the strict default: an invalid
body raises.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from apps.workflows import hooks, metrics
from apps.workflows.engine import dsl_output
from apps.workflows.engine.state import ACTIVE_STATUSES
from apps.workflows.engine.validation import DefinitionInvalid, validate
from apps.workflows.errors import InvalidDefinition
from apps.workflows.models import Execution, Workflow, WorkflowVersion
from apps.workflows.nodes.sandbox import current_sandbox
from workflow_engine.errors import Conflict, EngineError, NotFound, PreconditionFailed
from workflow_engine.times import iso

Problems = dict[str, list[str]]

# What GET adds to a definition. A client that PUTs back what it read does not store them in the body.
READ_ONLY_FIELDS = ("valid", "problems")
# a draft without them cannot be stored at all: they name the row and the URL
_IDENTITY_FIELDS = ("non_field_errors", "id")
_NAME_LENGTH = Workflow._meta.get_field("name").max_length or 500


def content_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _stored(body: Any) -> Any:
    if isinstance(body, dict) and any(k in body for k in READ_ONLY_FIELDS):
        return {k: v for k, v in body.items() if k not in READ_ONLY_FIELDS}
    return body


def problems_of(body: Any) -> Problems:
    """The body's validation problems under the current sandbox; ``{}`` when it is valid."""
    try:
        validate(body, current_sandbox())
    except DefinitionInvalid as exc:
        return exc.problems
    return {}


def _problems(body: Any, draft_ok: bool) -> Problems:
    """The problems a save may store as a draft; raises when it may not (strict callers, or no usable id)."""
    problems = problems_of(body)
    fatal = {k: v for k, v in problems.items() if k in _IDENTITY_FIELDS}
    if problems and (fatal or not draft_ok):
        message = "The workflow definition is invalid."
        if draft_ok:
            message += " Even a draft must be a JSON object with a valid id."
        raise InvalidDefinition(message, details=fatal if draft_ok else problems)
    return problems


def _name(body: dict[str, Any], default: str = "") -> str:
    """The name column, a label for lists and the admin: the DSL does not bound a name, the column does."""
    name = body.get("name")
    return name[:_NAME_LENGTH] if isinstance(name, str) else default


ANY = "*"  # If-Match: * (any current version)


def etag(version: WorkflowVersion | None) -> str:
    """The opaque entity tag of a workflow's current version: its number and content hash. The number tells
    apart a body that came back to an earlier content (so no ABA); the hash, a workflow deleted and created
    again with another body."""
    return f"{version.number}-{version.content_hash[:16]}" if version else ""


def etag_of(workflow: Workflow) -> str:
    """The ETag of the workflow's latest save: its draft (``draft<revision>-<hash>``), else its current
    version (``etag``). ``workflow.current_version`` must be loaded."""
    if workflow.draft is not None:
        return f"draft{workflow.draft_revision}-{content_hash(workflow.draft)[:16]}"
    return etag(workflow.current_version)


def _check_precondition(workflow: Workflow, if_match: Collection[str] | None) -> None:
    if if_match is None or ANY in if_match:
        return
    tag = etag_of(workflow)
    if tag not in if_match:
        raise PreconditionFailed(
            f'Workflow {workflow.id!r} changed: its latest save has the ETag "{tag}"; read it again and '
            "retry.",
            details={"If-Match": [f'Does not match the current ETag "{tag}".']},
        )


def create(body: Any, *, by: str = "", draft_ok: bool = False) -> Workflow:
    """Store a new workflow at version 1, or as a draft when it does not validate and ``draft_ok``; 409 if
    the id exists. Without ``draft_ok``, nothing is stored when invalid."""
    body = _stored(body)
    try:
        problems = _problems(body, draft_ok)
    except InvalidDefinition:
        metrics.workflow_created_total.labels("failed").inc()
        raise
    try:
        with transaction.atomic():
            workflow = Workflow.objects.create(id=body["id"], name=_name(body), created_by=by, updated_by=by)
            if problems:
                _save_draft(workflow, body, problems, by)
            else:
                _save_version(workflow, body, 1, by, draft_ok)
    except IntegrityError:
        metrics.workflow_created_total.labels("failed").inc()
        raise Conflict(
            f"Workflow {body['id']!r} already exists; update it with PUT.",
            details={"id": [f"Workflow {body['id']!r} already exists."]},
        ) from None
    metrics.workflow_created_total.labels("draft" if workflow.draft is not None else "success").inc()
    return workflow


def _new_version(workflow: Workflow, body: Any, number: int, by: str) -> WorkflowVersion:
    version = WorkflowVersion.objects.create(
        workflow=workflow, number=number, content_hash=content_hash(body), definition=body, created_by=by
    )
    workflow.current_version = version
    workflow.draft = workflow.draft_problems = None
    workflow.updated_by = by
    workflow.save(
        update_fields=["name", "current_version", "draft", "draft_problems", "updated_by", "updated_at"]
    )
    return version


def _save_version(workflow: Workflow, body: Any, number: int, by: str, draft_ok: bool) -> None:
    """A new version, kept in step by the apps above (``hooks``). When one of them refuses the body (a
    malformed ``metadata.schedule``: 400) and drafts are allowed, the body is a draft with their problems."""
    previous = workflow.current_version
    try:
        with transaction.atomic():  # a savepoint: a refusal undoes the version, not the workflow's row
            _new_version(workflow, body, number, by)
            hooks.definition_saved(workflow, body)
    except EngineError as exc:
        if not draft_ok or exc.status != 400:
            raise
        workflow.current_version = previous
        _save_draft(workflow, body, exc.details or {"non_field_errors": [exc.message]}, by)


def _save_draft(workflow: Workflow, body: dict[str, Any], problems: Problems, by: str) -> bool:
    """Keep ``body`` as the workflow's draft; False when it is the draft already. Versions are untouched:
    executions that pinned one keep it, and apps above are not told (no schedule from a draft)."""
    if workflow.draft is not None and content_hash(workflow.draft) == content_hash(body):
        return False
    workflow.name = _name(body, workflow.name)
    workflow.draft, workflow.draft_problems = body, problems
    workflow.draft_revision += 1  # under the row lock (update) or on a row not yet committed (create)
    workflow.updated_by = by
    workflow.save(
        update_fields=["name", "draft", "draft_problems", "draft_revision", "updated_by", "updated_at"]
    )
    return True


def _drop_draft(workflow: Workflow, current: WorkflowVersion, by: str) -> bool:
    """The body came back to the current version's: the draft goes, the version is the head again."""
    if workflow.draft is None:
        return False
    workflow.name = _name(current.definition, workflow.name)
    workflow.draft = workflow.draft_problems = None
    workflow.updated_by = by
    workflow.save(update_fields=["name", "draft", "draft_problems", "updated_by", "updated_at"])
    return True


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
    workflow_id: str,
    body: Any,
    *,
    by: str = "",
    if_match: Collection[str] | None = None,
    draft_ok: bool = False,
) -> tuple[Workflow, bool]:
    """A new version when the body changed and validates; a draft when it does not and ``draft_ok``.
    Running executions keep the version they pinned (and what it waits for: an approval of a running
    execution stays, whatever the new version holds). ``changed`` is False when the latest save was this
    body already."""
    if isinstance(body, dict) and body.get("id") not in (None, workflow_id):
        raise InvalidDefinition(
            "Workflow ID mismatch",
            details={"id": [f"The body's id {body.get('id')!r} does not match the URL's {workflow_id!r}."]},
        )
    body = _stored(body)
    problems = _problems(body, draft_ok)
    with transaction.atomic():
        workflow, current = _locked(workflow_id)
        workflow.current_version = current
        _check_precondition(workflow, if_match)
        if problems:
            return workflow, _save_draft(workflow, body, problems, by)
        if current is not None and _unchanged(workflow, current, body):
            return workflow, _drop_draft(workflow, current, by)
        workflow.name = _name(body)
        _save_version(workflow, body, (current.number if current else 0) + 1, by, draft_ok)
    return workflow, True


def _unchanged(workflow: Workflow, current: WorkflowVersion, body: Any) -> bool:
    """Whether ``body`` is the current version: as stored, or as ``GET`` showed it (with the DSL's defaults
    filled in), so that a client that reads a workflow and writes it back unchanged makes no new version."""
    if current.content_hash == content_hash(body):
        return True
    times = {"created_at": iso(workflow.created_at), "updated_at": iso(current.created_at)}
    shown = dsl_output.with_defaults(current.definition, **times)
    return content_hash(dsl_output.with_defaults(body, **times)) == content_hash(shown)


def delete(workflow_id: str, *, if_match: Collection[str] | None = None) -> None:
    """Delete a workflow with its versions and finished executions; 409 while one is still active."""
    with transaction.atomic():
        workflow, current = _locked(workflow_id)
        workflow.current_version = current
        _check_precondition(workflow, if_match)
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


@dataclass(frozen=True)
class Head:
    """What a workflow's latest save is: its body (a draft's or the current version's), whether it is
    valid, its problems (``{}`` when valid), its ETag, and the number of the last valid version (0: none)."""

    definition: dict[str, Any]
    problems: Problems
    etag: str
    version: int

    @property
    def valid(self) -> bool:
        return not self.problems


def head_of(workflow: Workflow) -> Head:
    """``workflow.current_version`` must be loaded (``select_related``)."""
    current = workflow.current_version
    number = current.number if current else 0
    if workflow.draft is not None:
        return Head(workflow.draft, workflow.draft_problems or {}, etag_of(workflow), number)
    assert current is not None  # a workflow row is created with a version or a draft, in one transaction
    return Head(current.definition, {}, etag(current), number)


def head(workflow_id: str) -> Head:
    """The workflow's latest save (``GET /api/v1/workflows/{id}``)."""
    return head_of(get(workflow_id))


def get(workflow_id: str) -> Workflow:
    workflow = Workflow.objects.select_related("current_version").filter(pk=workflow_id).first()
    if workflow is None:
        raise NotFound(f"Workflow {workflow_id!r} not found.")
    return workflow
