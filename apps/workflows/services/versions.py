"""A workflow's versions (read side): the list, newest first, and one version's definition as it was posted.

Versions are immutable and only ever valid definitions (a draft makes none, ``definitions``), so a version
read never changes; the console diffs two of them in the browser.
"""

from __future__ import annotations

from typing import Any

from apps.workflows.models import Workflow, WorkflowVersion
from workflow_engine.errors import NotFound
from workflow_engine.times import iso

_FIELDS = ("number", "created_at", "created_by", "content_hash")


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "number": row["number"],
        "createdAt": iso(row["created_at"]),
        "createdBy": row["created_by"] or None,
        "contentHash": row["content_hash"],
    }


def _workflow_not_found(workflow_id: str) -> NotFound:
    return NotFound(f"Workflow {workflow_id!r} not found.", details={"workflowId": [workflow_id]})


def version_list(workflow_id: str, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """A page of the workflow's versions, newest first, and how many it has; 404 for an unknown workflow.
    Three queries; the unique (workflow, number) index serves the page and the count."""
    if not Workflow.objects.filter(pk=workflow_id).exists():
        raise _workflow_not_found(workflow_id)
    versions = WorkflowVersion.objects.filter(workflow_id=workflow_id)
    rows = versions.order_by("-number").values(*_FIELDS)[offset : offset + limit]
    return [_summary(row) for row in rows], versions.count()


def version_detail(workflow_id: str, number: int) -> dict[str, Any]:
    """Version ``number`` with its definition as posted (no DSL defaults added: two versions diff on what
    their authors wrote); 404 naming what is unknown."""
    row = (
        WorkflowVersion.objects.filter(workflow_id=workflow_id, number=number)
        .values(*_FIELDS, "definition")
        .first()
    )
    if row is None:
        if not Workflow.objects.filter(pk=workflow_id).exists():
            raise _workflow_not_found(workflow_id)
        raise NotFound(
            f"Workflow {workflow_id!r} has no version {number}.", details={"version": [str(number)]}
        )
    return {"workflowId": workflow_id, **_summary(row), "definition": row["definition"]}
