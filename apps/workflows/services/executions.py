"""Starting executions: an execution row and its start command, in one transaction.

With a concurrency limit in the definition, the start is admitted under the workflow's row lock (see
``admission``): it starts, waits ``queued``, is skipped, or is refused with 409.

An Idempotency-Key is scoped per workflow and per user (``by``): one user's key never returns another's
execution. The same key with another request (``request_hash``) is a 409 naming the key, as Stripe does.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.cluster.sharding import shard_of
from apps.workflows.engine.state import ExecutionStatus
from apps.workflows.models import Command, Execution
from apps.workflows.services import admission, dispatch
from apps.workflows.services.persist import to_json
from workflow_engine.errors import Conflict, NotFound


@dataclass(frozen=True)
class Started:
    execution: Execution | None  # None when the concurrency policy skipped it
    created: bool
    outcome: str  # "started", "queued", "skipped", "duplicate"


def new_execution_id() -> str:
    return f"exec_{uuid.uuid4().hex}"


def request_hash(request: Any) -> str:
    """The sha256 of a request's canonical JSON (key order and spacing do not matter)."""
    text = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def start(
    workflow_id: str,
    *,
    idempotency_key: str | None = None,
    trigger: str = "api",
    version_id: int | None = None,
    input: dict[str, Any] | None = None,
    by: str = "",
) -> tuple[Execution, bool]:
    """The new execution (``True``), or the one an earlier request with the same key started (``False``).

    Raises ``Conflict`` when the workflow's concurrency policy rejects it; use ``admit`` to see a skip.
    """
    result = admit(
        workflow_id,
        idempotency_key=idempotency_key,
        trigger=trigger,
        version_id=version_id,
        input=input,
        by=by,
    )
    if result.execution is None:
        raise Conflict(f"Workflow {workflow_id!r} is at its concurrency limit; the start was skipped.")
    return result.execution, result.created


@dataclass(frozen=True)
class _Request:
    workflow_id: str
    command_id: str | None
    trigger: str
    version_id: int | None
    input: dict[str, Any]
    by: str = ""
    request_hash: str = ""


def admit(
    workflow_id: str,
    *,
    idempotency_key: str | None = None,
    trigger: str = "api",
    version_id: int | None = None,
    input: dict[str, Any] | None = None,
    by: str = "",
    request_hash: str = "",
) -> Started:
    """Start (or queue, or skip) an execution; ``version_id`` pins an older version (a rerun); ``input`` is
    what the ``execution.input`` node outputs (a schedule passes the logical time). ``by`` is the user who
    asked (recorded, and the scope of the key); ``request_hash`` tells a retry from a different request."""
    command_id = _start_command_id(workflow_id, idempotency_key, by) if idempotency_key else None
    request = _Request(workflow_id, command_id, trigger, version_id, input or {}, by, request_hash)
    if command_id and (existing := _started_by(command_id)):
        return _duplicate(existing, idempotency_key, request_hash)
    try:
        return _start(request)
    except IntegrityError:
        # a concurrent request with the same key won, or the workflow was deleted meanwhile
        if command_id and (existing := _started_by(command_id)):
            return _duplicate(existing, idempotency_key, request_hash)
        raise NotFound(f"Workflow {workflow_id!r} not found.") from None


def _duplicate(existing: Execution, key: str | None, request_hash: str) -> Started:
    """The execution the key started; 409 when it was started by a different request (an execution started
    before request hashes were stored has none, and matches any)."""
    if request_hash and existing.request_hash and existing.request_hash != request_hash:
        raise Conflict(
            f"Idempotency-Key {key!r} was already used with a different request body.",
            details={"Idempotency-Key": [f"{key!r} started {existing.id} with another body."]},
        )
    return Started(existing, False, "duplicate")


def _start_command_id(workflow_id: str, idempotency_key: str, by: str) -> str:
    """Keys are scoped per workflow and per user (``by``; the engine's own starts, schedules and
    backfills, have none); hashed, so any key length fits the inbox id."""
    scope = f"{workflow_id}\0{idempotency_key}" + (f"\0user:{by}" if by else "")
    return f"start:{hashlib.sha256(scope.encode()).hexdigest()}"


def _started_by(command_id: str) -> Execution | None:
    command = Command.objects.select_related("execution").filter(pk=command_id).first()
    if command is not None:
        return command.execution
    # a queued start keeps its key on the execution until it is admitted
    return Execution.objects.filter(start_key=command_id).first()


def _start(request: _Request) -> Started:
    believed = None if request.version_id else _current_versions.get(request.workflow_id)
    if believed is not None and not admission.concurrency_of(believed).limited:
        execution = _insert(request, believed, current=believed)
        if execution is not None:
            return Started(execution, True, "started")
    current = _current_version(request.workflow_id)  # NotFound for a deleted workflow, even when pinned
    version = request.version_id or current
    if not admission.concurrency_of(version).limited:
        execution = _insert(request, version, current=current)
        if execution is None:  # the workflow was updated or deleted in between: start over
            return _start(request)
        return Started(execution, True, "started")
    return _admit_locked(request)


def _admit_locked(request: _Request) -> Started:
    """A workflow with a concurrency limit: decide under its row lock (``admission``)."""
    with transaction.atomic():
        workflow = admission.lock(request.workflow_id)
        if workflow is not None and workflow.draft_problems is not None:
            raise admission.refuse_draft(request.workflow_id, workflow.draft_problems)
        if workflow is None or workflow.current_version_id is None:
            raise NotFound(f"Workflow {request.workflow_id!r} not found.")
        current = workflow.current_version_id  # cannot change while the row is locked
        version = request.version_id or current
        outcome = _admission(request.workflow_id, version)
        if outcome == "skipped":
            return Started(None, False, "skipped")
        if outcome == "queued":
            return Started(_queue(request, version), True, outcome)
        execution = _insert(request, version, current=current)
        assert execution is not None
        return Started(execution, True, outcome)


# workflow id -> the current version this process last saw. Only a belief: the start's INSERT inserts
# nothing unless it is still the current version, and the start then reads it again. It saves a start the
# round trip of that read.
_current_versions: dict[str, int] = {}
_MAX_REMEMBERED = 4096


def _current_version(workflow_id: str) -> int:
    """The current version's id; ``NotFound``, or the 400 of a draft (whose current version, if any, is the
    last valid one: a start must not run what the user is still editing)."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT current_version_id, draft_problems IS NOT NULL FROM workflows_workflow WHERE id = %s",
            [workflow_id],
        )
        row = cur.fetchone()
    if row is not None and row[1]:
        _current_versions.pop(workflow_id, None)
        raise admission.refuse_draft(workflow_id)
    if row is None or row[0] is None:
        _current_versions.pop(workflow_id, None)
        raise NotFound(f"Workflow {workflow_id!r} not found.")
    if len(_current_versions) >= _MAX_REMEMBERED:
        _current_versions.clear()
    _current_versions[workflow_id] = int(row[0])
    return int(row[0])


# The execution row and its start command in one statement, so one round trip and (outside a transaction)
# one commit. It inserts nothing if ``current`` is no longer the workflow's current version, or a draft was
# saved over it, or the workflow is gone; a duplicate key fails it whole with an IntegrityError.
_INSERT_SQL = """WITH e AS (
    INSERT INTO workflows_execution (id, workflow_id, version_id, shard_id, status, last_seq, trigger,
        start_key, request_hash, started_by, input, error, running_nodes, created_at)
    SELECT %(id)s, w.id, %(version)s, %(shard)s, 'pending', 0, %(trigger)s, %(key)s, %(hash)s, %(by)s,
        %(input)s::jsonb, '', '[]', %(now)s
    FROM workflows_workflow w
    WHERE w.id = %(workflow)s AND w.current_version_id = %(current)s AND w.draft_problems IS NULL
    RETURNING id, created_at
)
INSERT INTO workflows_command (id, execution_id, type, payload, created_at)
SELECT %(command)s, e.id, 'start', '{}', e.created_at FROM e
RETURNING execution_id"""


def _insert(request: _Request, version_id: int, *, current: int) -> Execution | None:
    """Start an execution of a workflow without a concurrency limit (no admission lock needed); ``None`` if
    ``current`` is not the workflow's current version any more."""
    execution_id = new_execution_id()
    shard, key = shard_of(execution_id), request.command_id or ""
    params: dict[str, Any] = {
        "id": execution_id,
        "workflow": request.workflow_id,
        "version": version_id,
        "current": current,
        "shard": shard,
        "trigger": request.trigger,
        "key": key,
        "hash": request.request_hash,
        "by": request.by,
        "input": to_json(request.input),
        "command": request.command_id or f"start:{execution_id}",
        "now": timezone.now(),  # the application's clock, as every other timestamp of the execution
    }
    # inside a caller's transaction, a savepoint keeps its transaction usable after an IntegrityError
    savepoint = transaction.atomic() if connection.in_atomic_block else nullcontext()
    with savepoint, connection.cursor() as cur:
        cur.execute(_INSERT_SQL, params)
        inserted = cur.fetchone() is not None
    if not inserted:
        _current_versions.pop(request.workflow_id, None)
        return None
    execution = Execution(
        id=execution_id,
        workflow_id=request.workflow_id,
        version_id=version_id,
        shard_id=shard,
        trigger=request.trigger,
        status=ExecutionStatus.PENDING,
        start_key=key,
        request_hash=request.request_hash,
        started_by=request.by,
        input=request.input,
        created_at=params["now"],
    )
    transaction.on_commit(lambda: dispatch.apply_hint(execution.id, execution.shard_id))
    return execution


def _admission(workflow_id: str, version_id: int) -> str:
    """``started``, ``queued`` or ``skipped``; ``Conflict`` when the policy rejects (under the row lock)."""
    limit = admission.concurrency_of(version_id)
    if not limit.limited or limit.max_running is None:  # the version changed to one without a limit
        return "started"
    if admission.active_count(workflow_id) < limit.max_running:
        return "started"
    if limit.policy == "reject":
        raise Conflict(
            f"Workflow {workflow_id!r} already has {limit.max_running} running execution(s), "
            "its concurrency limit (policy: reject)."
        )
    return {"queue": "queued", "skip": "skipped"}[limit.policy]


def _queue(request: _Request, version_id: int) -> Execution:
    """A ``queued`` execution: no start command until a slot frees (``admission.release``)."""
    execution_id = new_execution_id()
    return Execution.objects.create(
        id=execution_id,
        workflow_id=request.workflow_id,
        version_id=version_id,
        shard_id=shard_of(execution_id),
        trigger=request.trigger,
        status=ExecutionStatus.QUEUED,
        start_key=request.command_id or "",
        request_hash=request.request_hash,
        started_by=request.by,
        input=request.input,
    )
