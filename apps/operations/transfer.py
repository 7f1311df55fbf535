"""One workflow as a JSON document: its definition head, every version, and optionally its executions.

An export carries the finished executions (completed, failed, cancelled) with their journals in ``seq``
order, their node outputs and their log lines. Active executions are listed by id, not exported: an
execution that is still running belongs to the cluster that runs it (its commands, timers and node attempts),
and moving it half-way would run its nodes twice; export again once it ends.

An import writes it all in one transaction, keeping version numbers, content hashes, timestamps and each
journal's order, and refuses what would collide (the workflow id unless ``replace``, any execution id or
Idempotency-Key) naming it. ``as_id`` imports under another id: each version's ``id`` field is rewritten
(and its content hash recomputed), so the definitions name the workflow that holds them. Every version must
validate here, as a version saved through the API would: versions are only ever valid definitions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Model

from apps.cluster.sharding import shard_of
from apps.operations.archive import app_version
from apps.operations.errors import OperationError
from apps.workflows import hooks
from apps.workflows.engine.state import ACTIVE_STATUSES, TERMINAL_STATUSES
from apps.workflows.models import Event, Execution, ExecutionLog, NodeOutput, Workflow, WorkflowVersion
from apps.workflows.services import definitions
from workflow_engine.errors import EngineError

FORMAT = "workflow-engine-workflow"
FORMAT_VERSION = 1
_TERMINAL = [s.value for s in TERMINAL_STATUSES]


def _at(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None  # full precision: an import keeps the instant


# --------------------------------------------------------------------------------------------- export


def export(workflow_id: str, *, executions: bool = False) -> dict[str, Any]:
    """The document for ``workflow_id``; with ``executions``, its finished executions and their journals."""
    with transaction.atomic():  # one snapshot-consistent read: versions and executions as of one moment
        workflow = Workflow.objects.filter(pk=workflow_id).select_related("current_version").first()
        if workflow is None:
            raise OperationError(f"ID: no workflow {workflow_id!r}")
        document = {
            "format": FORMAT,
            "formatVersion": FORMAT_VERSION,
            "appVersion": app_version(),
            "workflow": _workflow(workflow),
            "versions": [_version(v) for v in workflow.versions.order_by("number")],
        }
        if executions:
            rows = workflow.executions.order_by("created_at", "id").select_related("version")
            document["executions"] = [_execution(e) for e in rows.filter(status__in=_TERMINAL)]
            document["activeNotExported"] = list(
                rows.filter(status__in=[s.value for s in ACTIVE_STATUSES]).values_list("id", flat=True)
            )
    return document


def _workflow(w: Workflow) -> dict[str, Any]:
    return {
        "id": w.id,
        "name": w.name,
        "currentVersion": w.current_version.number if w.current_version else None,
        "draft": w.draft,
        "draftProblems": w.draft_problems,
        "draftRevision": w.draft_revision,
        "createdAt": _at(w.created_at),
        "updatedAt": _at(w.updated_at),
        "createdBy": w.created_by,
        "updatedBy": w.updated_by,
    }


def _version(v: WorkflowVersion) -> dict[str, Any]:
    return {
        "number": v.number,
        "contentHash": v.content_hash,
        "definition": v.definition,
        "createdAt": _at(v.created_at),
        "createdBy": v.created_by,
    }


_EXECUTION_FIELDS = {  # document key: model field, for the plain columns
    "status": "status",
    "lastSeq": "last_seq",
    "trigger": "trigger",
    "startKey": "start_key",
    "requestHash": "request_hash",
    "startedBy": "started_by",
    "input": "input",
    "error": "error",
    "runningNodes": "running_nodes",
}
_EXECUTION_TIMES = {
    "createdAt": "created_at",
    "startedAt": "started_at",
    "endedAt": "ended_at",
    "progressedAt": "progressed_at",
}


def _execution(e: Execution) -> dict[str, Any]:
    return {
        "id": e.id,
        "version": e.version.number,
        **{key: getattr(e, name) for key, name in _EXECUTION_FIELDS.items()},
        **{key: _at(getattr(e, name)) for key, name in _EXECUTION_TIMES.items()},
        "events": [
            {"seq": seq, "type": kind, "payload": payload, "epoch": epoch, "createdAt": _at(at)}
            for seq, kind, payload, epoch, at in e.events.order_by("seq").values_list(
                "seq", "type", "payload", "epoch", "created_at"
            )
        ],
        "outputs": [
            {"nodeId": n, "attempt": a, "records": r, "recordCount": c, "sizeBytes": s, "createdAt": _at(at)}
            for n, a, r, c, s, at in e.outputs.order_by("node_id", "attempt").values_list(
                "node_id", "attempt", "records", "record_count", "size_bytes", "created_at"
            )
        ],
        "logs": [
            {"nodeId": n, "level": level, "message": m, "createdAt": _at(at)}
            for n, level, m, at in e.logs.order_by("id").values_list(
                "node_id", "level", "message", "created_at"
            )
        ],
    }


# --------------------------------------------------------------------------------------------- import


@dataclass(frozen=True)
class ImportReport:
    workflow_id: str
    versions: int
    executions: int
    events: int


class Doc:
    """Typed reads of the document that fail naming the field (``executions[3].events[0].seq``)."""

    def __init__(self, value: Any, path: str = "") -> None:
        self.value, self.path = value, path

    def at(self, key: str) -> Doc:
        if not isinstance(self.value, dict):
            raise OperationError(f"{self.path or 'the document'}: must be a JSON object")
        if key not in self.value:
            raise OperationError(f"{self._sub(key)}: missing")
        return Doc(self.value[key], self._sub(key))

    def get(self, key: str, default: Any) -> Doc:
        present = isinstance(self.value, dict) and key in self.value
        return self.at(key) if present else Doc(default, self._sub(key))

    def _sub(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def items(self) -> list[Doc]:
        if not isinstance(self.value, list):
            raise OperationError(f"{self.path}: must be a list")
        return [Doc(item, f"{self.path}[{i}]") for i, item in enumerate(self.value)]

    def json(self, kind: type) -> Any:
        if not isinstance(self.value, kind):
            raise OperationError(f"{self.path}: must be a JSON {'object' if kind is dict else 'list'}")
        return self.value

    def str(self, *, max_length: int = 10_000, empty: bool = True) -> str:
        if not isinstance(self.value, str) or len(self.value) > max_length or (not empty and not self.value):
            raise OperationError(f"{self.path}: must be a string of up to {max_length} characters")
        return self.value

    def int(self, *, minimum: int = 0) -> int:
        if isinstance(self.value, bool) or not isinstance(self.value, int) or self.value < minimum:
            raise OperationError(f"{self.path}: must be an integer >= {minimum}")
        return self.value

    def time(self) -> datetime:
        try:
            moment = datetime.fromisoformat(self.str(max_length=64))
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise OperationError(f"{self.path}: must be an ISO 8601 time with its offset")
        return moment

    def optional_time(self) -> datetime | None:
        return None if self.value is None else self.time()


def import_document(
    raw: Any, *, as_id: str | None = None, replace: bool = False, executions: bool = True
) -> ImportReport:
    """Write the document's workflow (as ``as_id``), its versions and (with ``executions``) its executions."""
    doc = Doc(raw)
    if doc.get("format", None).value != FORMAT:
        raise OperationError(f"format: not a workflow export (expected {FORMAT!r})")
    if doc.at("formatVersion").int() > FORMAT_VERSION:
        raise OperationError(
            f"formatVersion: this version reads up to {FORMAT_VERSION}; upgrade to import it"
        )
    source = doc.at("workflow").at("id").str(max_length=200, empty=False)
    workflow_id = as_id or source
    if not workflow_id.strip() or len(workflow_id) > 200:
        raise OperationError("--as: must be 1 to 200 characters")
    with transaction.atomic():
        _make_room(workflow_id, replace)
        workflow = _import_workflow(doc.at("workflow"), workflow_id)
        versions = _import_versions(doc.at("versions"), workflow, renamed=workflow_id != source)
        _set_current(doc.at("workflow"), workflow, versions)
        runs = doc.get("executions", []).items() if executions else []
        events = _import_executions(runs, workflow, versions)
    return ImportReport(workflow_id, len(versions), len(runs), events)


def _make_room(workflow_id: str, replace: bool) -> None:
    if not Workflow.objects.filter(pk=workflow_id).exists():
        return
    if not replace:
        raise OperationError(
            f"workflow {workflow_id!r} exists: import with --replace to overwrite it (its versions and "
            "executions go), or with --as NEW_ID to import it under another id"
        )
    try:
        definitions.delete(workflow_id)
    except EngineError as exc:  # 409 while it has active executions
        raise OperationError(f"cannot replace workflow {workflow_id!r}: {exc.message}") from exc


def _import_workflow(w: Doc, workflow_id: str) -> Workflow:
    workflow = Workflow(
        id=workflow_id,
        name=w.at("name").str(max_length=500),
        draft=w.get("draft", None).value,
        draft_problems=w.get("draftProblems", None).value,
        draft_revision=w.get("draftRevision", 0).int(),
        created_at=w.at("createdAt").time(),
        updated_at=w.at("updatedAt").time(),
        created_by=w.get("createdBy", "").str(max_length=150),
        updated_by=w.get("updatedBy", "").str(max_length=150),
    )
    _insert([workflow])
    return workflow


def _import_versions(items: Doc, workflow: Workflow, *, renamed: bool) -> dict[int, WorkflowVersion]:
    versions: dict[int, WorkflowVersion] = {}
    for v in items.items():
        number = v.at("number").int(minimum=1)
        if number in versions:
            raise OperationError(f"{v.path}.number: version {number} appears twice")
        body = v.at("definition").value
        if renamed and isinstance(body, dict) and "id" in body:
            body = {**body, "id": workflow.id}
        problems = definitions.problems_of(body)
        if problems:
            raise OperationError(f"{v.path}.definition: version {number} does not validate here: {problems}")
        digest = definitions.content_hash(body)
        stated = v.at("contentHash").str(max_length=64)
        if not renamed and stated != digest:
            raise OperationError(f"{v.path}.contentHash: {stated} is not the definition's sha256 ({digest})")
        versions[number] = WorkflowVersion(
            workflow=workflow,
            number=number,
            content_hash=digest,
            definition=body,
            created_at=v.at("createdAt").time(),
            created_by=v.get("createdBy", "").str(max_length=150),
        )
    _insert(versions.values())
    return versions


def _set_current(w: Doc, workflow: Workflow, versions: dict[int, WorkflowVersion]) -> None:
    number = w.get("currentVersion", None).value
    if number is None:
        return
    if number not in versions:
        raise OperationError(f"{w.path}.currentVersion: there is no version {number!r} in versions")
    workflow.current_version = versions[number]
    Workflow.objects.filter(pk=workflow.pk).update(current_version=versions[number])
    try:
        hooks.definition_saved(workflow, versions[number].definition)  # the schedules app keeps its schedule
    except EngineError as exc:
        raise OperationError(f"{w.path}.currentVersion: version {number} is refused: {exc.message}") from exc


def _import_executions(items: list[Doc], workflow: Workflow, versions: dict[int, WorkflowVersion]) -> int:
    ids = [e.at("id").str(max_length=64, empty=False) for e in items]
    taken = sorted(Execution.objects.filter(pk__in=ids).values_list("pk", flat=True))
    if taken:
        raise OperationError(
            f"executions: ids already in this database: {', '.join(taken[:10])}"
            f"{' ...' if len(taken) > 10 else ''}; import without --executions, or delete them first"
        )
    keys = [k for e in items if (k := e.get("startKey", "").str(max_length=300))]
    used = sorted(Execution.objects.filter(start_key__in=keys).values_list("start_key", flat=True))
    if used:
        raise OperationError(f"executions: Idempotency-Keys already used here: {', '.join(used[:10])}")
    events = 0
    for e in items:
        events += _import_execution(e, workflow, versions)
    return events


def _import_execution(e: Doc, workflow: Workflow, versions: dict[int, WorkflowVersion]) -> int:
    execution_id = e.at("id").str(max_length=64, empty=False)
    number = e.at("version").int(minimum=1)
    if number not in versions:
        raise OperationError(f"{e.path}.version: there is no version {number} in versions")
    status = e.at("status").str(max_length=16)
    if status not in _TERMINAL:
        raise OperationError(
            f"{e.path}.status: only finished executions are imported ({', '.join(_TERMINAL)})"
        )
    execution = Execution(
        id=execution_id,
        workflow=workflow,
        version=versions[number],
        shard_id=shard_of(execution_id),
        status=status,
        last_seq=e.at("lastSeq").int(),
        trigger=e.get("trigger", "api").str(max_length=32),
        start_key=e.get("startKey", "").str(max_length=300),
        request_hash=e.get("requestHash", "").str(max_length=64),
        started_by=e.get("startedBy", "").str(max_length=150),
        input=e.get("input", {}).json(dict),
        error=e.get("error", "").str(max_length=10_000_000),
        running_nodes=e.get("runningNodes", []).json(list),
        created_at=e.at("createdAt").time(),
        **{
            name: e.get(key, None).optional_time()
            for key, name in _EXECUTION_TIMES.items()
            if key != "createdAt"
        },
    )
    _insert([execution])
    journal = [_event(x, execution, seq) for seq, x in enumerate(e.get("events", []).items(), start=1)]
    if len(journal) != execution.last_seq:
        raise OperationError(f"{e.path}.events: {len(journal)} events, but lastSeq is {execution.last_seq}")
    Event.objects.bulk_create(journal, batch_size=1000)
    _insert([_output(x, execution) for x in e.get("outputs", []).items()])
    ExecutionLog.objects.bulk_create([_log(x, execution) for x in e.get("logs", []).items()], batch_size=1000)
    return len(journal)


def _event(x: Doc, execution: Execution, expected: int) -> Event:
    seq = x.at("seq").int(minimum=1)
    if seq != expected:  # the journal is contiguous from 1 (invariant 1)
        raise OperationError(f"{x.path}.seq: {seq}, expected {expected}: a journal is contiguous from 1")
    return Event(
        execution=execution,
        seq=seq,
        type=x.at("type").str(max_length=64),
        payload=x.at("payload").value,
        epoch=x.get("epoch", 0).int(),
        created_at=x.at("createdAt").time(),
    )


def _output(x: Doc, execution: Execution) -> NodeOutput:
    return NodeOutput(
        execution=execution,
        node_id=x.at("nodeId").str(max_length=200),
        attempt=x.at("attempt").int(),
        records=x.at("records").value,
        record_count=x.at("recordCount").int(),
        size_bytes=x.at("sizeBytes").int(),
        created_at=x.at("createdAt").time(),
    )


def _log(x: Doc, execution: Execution) -> ExecutionLog:
    return ExecutionLog(
        execution=execution,
        node_id=x.get("nodeId", "").str(max_length=200),
        level=x.get("level", "INFO").str(max_length=10),
        message=x.at("message").str(max_length=10_000_000),
        created_at=x.at("createdAt").time(),
    )


def _insert(rows: Iterable[Model]) -> None:
    """Insert keeping the document's timestamps: a raw save skips ``auto_now``/``auto_now_add`` (as
    ``loaddata`` does), which ``bulk_create`` would overwrite with the time of the import."""
    for row in rows:
        row.save_base(raw=True, force_insert=True)
