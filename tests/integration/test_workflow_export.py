"""``manage.py export_workflow`` and ``manage.py import_workflow``: one workflow, its versions and its
finished executions as JSON (apps/operations/transfer.py), against the session's node."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from apps.workflows.models import Event, Execution, WorkflowVersion
from tests.harness import Api
from tests.integration.test_executions import step, workflow

pytestmark = pytest.mark.usefixtures("live_db")


def body(workflow_id: str, expression: str) -> dict[str, Any]:
    return workflow(
        workflow_id,
        [
            step("src", "memory.collection", "source", data=["a", "b"]),
            step("map", "map", "transform", expression=expression),
            step("out", "console.log", "sink"),
        ],
        [("src", "map"), ("map", "out")],
    )


def exported(workflow_id: str, *args: str) -> dict[str, Any]:
    out, err = io.StringIO(), io.StringIO()
    call_command("export_workflow", workflow_id, *args, stdout=out, stderr=err)
    return dict(json.loads(out.getvalue()))


def imported(tmp_path: Path, document: dict[str, Any], *args: str) -> str:
    path = tmp_path / f"doc-{len(list(tmp_path.iterdir()))}.json"
    path.write_text(json.dumps(document))
    out = io.StringIO()
    call_command("import_workflow", str(path), *args, stdout=out)
    return out.getvalue()


def journal(execution_id: str) -> list[tuple[Any, ...]]:
    return list(
        Event.objects.filter(execution_id=execution_id)
        .order_by("seq")
        .values_list("seq", "type", "payload", "epoch", "created_at")
    )


@pytest.fixture
def two_versions_one_run(api: Api, uid: str) -> tuple[str, str]:
    workflow_id = f"export-{uid}"
    assert api.post("/api/v1/workflows", body(workflow_id, "upper(value)"))[0] == 201
    assert api.call("PUT", f"/api/v1/workflows/{workflow_id}", body(workflow_id, "lower(value)"))[0] == 200
    status, started = api.post(f"/api/v1/workflows/{workflow_id}/execute")
    assert status == 200, started
    assert api.wait_finished(started["executionId"])["status"] == "completed"
    return workflow_id, started["executionId"]


def test_a_workflow_exported_deleted_and_imported_keeps_its_versions_and_journals(
    api: Api, two_versions_one_run: tuple[str, str], tmp_path: Path
) -> None:
    workflow_id, execution_id = two_versions_one_run
    before = journal(execution_id)
    document = exported(workflow_id, "--executions")
    assert [v["number"] for v in document["versions"]] == [1, 2]
    assert [e["seq"] for e in document["executions"][0]["events"]] == list(range(1, len(before) + 1))
    assert api.call("DELETE", f"/api/v1/workflows/{workflow_id}")[0] == 200

    printed = imported(tmp_path, document)

    assert f"imported workflow {workflow_id}: 2 versions, 1 executions, {len(before)} events" in printed
    assert journal(execution_id) == before
    assert list(WorkflowVersion.objects.filter(workflow_id=workflow_id).values_list("number", flat=True)) == [
        1,
        2,
    ]
    status, shown = api.get(f"/api/v1/executions/{execution_id}")
    assert status == 200 and shown["status"] == "completed"
    assert (
        api.get(f"/api/v1/workflows/{workflow_id}/versions/2")[1]["definition"]
        == document["versions"][1]["definition"]
    )


def test_an_import_refuses_to_overwrite_an_existing_workflow_unless_told(
    two_versions_one_run: tuple[str, str], tmp_path: Path
) -> None:
    workflow_id, _ = two_versions_one_run
    document = exported(workflow_id)
    with pytest.raises(CommandError, match=f"workflow '{workflow_id}' exists: import with --replace"):
        imported(tmp_path, document)
    assert "2 versions, 0 executions" in imported(tmp_path, document, "--replace")


def test_an_import_under_another_id_names_the_execution_ids_that_collide(
    two_versions_one_run: tuple[str, str], tmp_path: Path
) -> None:
    workflow_id, execution_id = two_versions_one_run
    document = exported(workflow_id, "--executions")
    copy = f"{workflow_id}-copy"
    with pytest.raises(CommandError, match=f"ids already in this database: {execution_id}"):
        imported(tmp_path, document, "--as", copy)
    assert not Execution.objects.filter(workflow_id=copy).exists()  # nothing half-written

    imported(tmp_path, document, "--as", copy, "--skip-executions")

    definitions = WorkflowVersion.objects.filter(workflow_id=copy).order_by("number")
    assert [v.definition["id"] for v in definitions] == [copy, copy]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["executions"][0]["events"].pop(0), r"executions\[0\]\.events\[0\]\.seq: 2, expected 1"),
        (lambda d: d["versions"][0].update(number="one"), r"versions\[0\]\.number: must be an integer"),
        (lambda d: d["versions"][1].update(contentHash="0" * 64), r"versions\[1\]\.contentHash"),
        (lambda d: d["workflow"].update(createdAt="yesterday"), r"workflow\.createdAt: must be an ISO 8601"),
        (lambda d: d.update(format="something else"), "format: not a workflow export"),
    ],
)
def test_an_import_of_a_damaged_document_names_the_field(
    two_versions_one_run: tuple[str, str], tmp_path: Path, change: Any, message: str
) -> None:
    workflow_id, _ = two_versions_one_run
    document = exported(workflow_id, "--executions")
    change(document)
    with pytest.raises(CommandError, match=message):
        imported(tmp_path, document, "--replace")
    # the replace is rolled back with the rest: the workflow and its run are still there
    assert Execution.objects.filter(workflow_id=workflow_id).count() == 1
    assert WorkflowVersion.objects.filter(workflow_id=workflow_id).count() == 2
