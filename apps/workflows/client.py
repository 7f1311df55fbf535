"""A small public Python API for starting workflows from your own code, without HTTP.

Import it in any process where Django is set up with the engine's settings (a Celery task, a management
command, a script calling ``django.setup()``), and talks to PostgreSQL directly, as the REST API does::

    from apps.workflows import client

    client.create_workflow({"id": "hello", "name": "hello", "nodes": [...], "edges": [...]})
    execution_id = client.start("hello", input={"who": "world"}, idempotency_key="order-42")
    status = client.wait(execution_id, timeout=30)  # "completed", "failed" or "cancelled"

``start`` writes the execution row and its start command in one statement and sends the wake-up hint to the
execution's shard after commit (``transaction.on_commit``). Inside the caller's ``transaction.atomic()`` it
joins that transaction: nothing starts if the caller rolls back, and the hint goes out when it commits. A
coordinator and workers must be running for the execution to move.

The control functions (``cancel``, ``signal``, ``approve``) use the services the REST control routes use and
raise the same errors (``NotFound``, ``Conflict``); ``start_canvas`` makes a Celery canvas durable
(``apps.workflows.canvas``; docs/sdk.md).

It lives in ``apps.workflows`` (not ``workflow_engine``) because ``workflow_engine`` is the platform layer
below the apps and may not import them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction

from apps.workflows import canvas as canvases
from apps.workflows.engine.waits import rejection_of
from apps.workflows.models import Execution, NodeOutput, WorkflowVersion
from apps.workflows.services import control, definitions, executions, runner
from workflow_engine.errors import Conflict, NotFound

__all__ = [
    "TERMINAL",
    "CanvasNotSupported",
    "ExecutionNotFinished",
    "approve",
    "cancel",
    "canvas_result",
    "create_workflow",
    "outputs",
    "signal",
    "start",
    "start_canvas",
    "start_many",
    "status",
    "wait",
]

CanvasNotSupported = canvases.CanvasNotSupported

TERMINAL = frozenset({"completed", "failed", "cancelled"})


class ExecutionNotFinished(TimeoutError):
    """``wait`` timed out; ``status`` is the last status seen."""

    def __init__(self, execution_id: str, status: str, timeout: float) -> None:
        super().__init__(f"execution {execution_id!r} still {status!r} after {timeout}s")
        self.execution_id, self.status = execution_id, status


def create_workflow(body: dict[str, Any]) -> str:
    """Store a new workflow definition (version 1) and return its id.

    Raises ``apps.workflows.errors.InvalidDefinition`` (with ``details``) when the body is invalid and
    ``workflow_engine.errors.Conflict`` when the id exists.
    """
    return str(definitions.create(body).id)


def start(
    workflow_id: str, *, input: dict[str, Any] | None = None, idempotency_key: str | None = None
) -> str:
    """Start an execution of the workflow's current version and return the execution id.

    ``input`` is what an ``execution.input`` node outputs. With ``idempotency_key``, a second start with the
    same key (per workflow) returns the id of the first execution instead of starting another. Raises
    ``NotFound`` for an unknown workflow and ``Conflict`` when its concurrency policy rejects or skips the
    start (a ``queue`` policy returns the id of the queued execution).
    """
    execution, _created = executions.start(
        workflow_id, idempotency_key=idempotency_key, trigger="api", input=input
    )
    return str(execution.id)


def status(execution_id: str) -> str:
    """The execution's current status (``pending``, ``queued``, ``running``, ``paused``, ``completed``,
    ``failed``, ``cancelled``); ``NotFound`` if there is no such execution."""
    value = Execution.objects.filter(pk=execution_id).values_list("status", flat=True).first()
    if value is None:
        raise NotFound(f"Execution {execution_id!r} not found.")
    return str(value)


def wait(execution_id: str, timeout: float, *, interval: float = 0.05) -> str:
    """Poll the execution's row until it is finished and return its final status.

    Raises ``ExecutionNotFinished`` after ``timeout`` seconds (the execution keeps running).
    """
    deadline = time.monotonic() + timeout
    while True:
        current = status(execution_id)
        if current in TERMINAL:
            return current
        if time.monotonic() >= deadline:
            raise ExecutionNotFinished(execution_id, current, timeout)
        time.sleep(interval)


def start_many(
    workflow_id: str,
    inputs: Sequence[dict[str, Any] | None],
    *,
    idempotency_keys: Sequence[str | None] | None = None,
) -> list[str]:
    """Start one execution per input, in one transaction, and return their ids in the same order.

    Each start is one statement (execution row and start command); the wake-up hints go out after the
    commit, so none of them starts if one fails (the whole call raises, as ``start`` would). With
    ``idempotency_keys`` (one per input, ``None`` for none), a key used before gives the earlier execution's
    id. Inside the caller's transaction it joins it, as ``start`` does.
    """
    keys = list(idempotency_keys) if idempotency_keys is not None else [None] * len(inputs)
    if len(keys) != len(inputs):
        raise ValueError(f"idempotency_keys has {len(keys)} keys for {len(inputs)} inputs.")
    with transaction.atomic():
        return [
            start(workflow_id, input=item, idempotency_key=key)
            for item, key in zip(inputs, keys, strict=True)
        ]


def cancel(execution_id: str, reason: str | None = None, by: str | None = None) -> None:
    """Ask the execution to stop (a ``cancel`` command its shard owner applies, as ``POST .../cancel``).

    Returns once the command is accepted; ``wait`` sees ``cancelled``. ``NotFound``; ``Conflict`` if it has
    already ended. A queued execution is cancelled at once.
    """
    control.cancel(execution_id, by=by or "", reason=reason or "")


def signal(execution_id: str, name: str, payload: Any = None, *, by: str | None = None) -> None:
    """Send the named signal with a JSON ``payload`` (``wait.signal`` and ``approval`` nodes wait for them;
    one sent before its node waits is kept for it). ``NotFound``; ``Conflict`` if the execution has ended."""
    control.signal(execution_id, name, payload, by=by or "")


def approve(
    execution_id: str,
    node_or_signal: str,
    comment: str | None = None,
    reject: bool = False,
    *,
    by: str | None = None,
) -> None:
    """Approve (or, with ``reject``, reject) an ``approval`` node, named by its node id or its signal name.

    ``comment`` goes into the signal's payload (a rejection's reason shows it). No role is checked: in-process
    code is trusted as the server itself; ``by`` is recorded as the approver. ``NotFound``; ``Conflict`` if
    the execution has ended; ``ValueError`` if the execution's version has no such approval.
    """
    execution = control.get(execution_id)
    name = _approval_signal(execution, node_or_signal)
    payload = {"comment": comment} if comment else None
    control.signal(execution.id, rejection_of(name) if reject else name, payload, by=by or "")


def _approval_signal(execution: Execution, node_or_signal: str) -> str:
    graph = runner.compiled(execution.version_id)[1]
    signals = {
        n.id: n.wait.signal for n in graph.nodes.values() if n.wait and n.wait.approval and n.wait.signal
    }
    if node_or_signal in signals:
        return signals[node_or_signal]
    if node_or_signal in signals.values():
        return node_or_signal
    known = ", ".join(f"{node} (signal {sig!r})" for node, sig in signals.items()) or "none"
    raise ValueError(
        f"Execution {execution.id} has no approval node or signal {node_or_signal!r}; its approvals: {known}."
    )


def outputs(execution_id: str) -> dict[str, list[Any]]:
    """Each node's records, whole, from its latest attempt that produced any, by node id.

    The same nodes and attempts as the ``outputs`` of ``GET /api/v1/executions/{id}``, which shows only a
    preview of each; a node that has not completed is absent. ``NotFound`` if there is no such execution.
    """
    rows = (
        NodeOutput.objects.filter(execution_id=execution_id)
        .order_by("node_id", "-attempt")
        .distinct("node_id")
        .values_list("node_id", "records")
    )
    found = dict(rows)
    if not found and not Execution.objects.filter(pk=execution_id).exists():
        raise NotFound(f"Execution {execution_id!r} not found.")
    return {node: list(records) for node, records in found.items()}


def start_canvas(
    canvas: Any,
    *,
    workflow_id: str | None = None,
    idempotency_key: str | None = None,
    retry: Mapping[str, Any] | None = None,
    node_timeout: str | float | None = None,
    by: str = "",
) -> str:
    """Store ``canvas`` (a Celery ``chain``, ``group``, ``chord`` or signature) as a workflow of
    ``celery.task`` nodes and start it, in one transaction; return the execution id.

    The workflow is created, or updated when its definition changed (a new version; running executions keep
    theirs). Without ``workflow_id`` its id hashes the canvas, so the same canvas reuses one workflow.
    ``retry`` is every node's retry policy (the DSL's ``retry`` object), ``node_timeout`` each task's attempt
    timeout. Raises ``CanvasNotSupported`` (a ``ValueError``) naming what does not map, before writing
    anything, and ``InvalidDefinition`` when the result does not validate (a task not allowed by
    ``WORKFLOW_CELERY_TASKS``, say). ``canvas_result`` gives what Celery would have returned.
    """
    body = canvases.to_definition(canvas, workflow_id=workflow_id, retry=retry, node_timeout=node_timeout)
    with transaction.atomic():
        _store(body, by)
        return start(body["id"], input={}, idempotency_key=idempotency_key)


def _store(body: dict[str, Any], by: str) -> None:
    if not WorkflowVersion.objects.filter(workflow_id=body["id"]).exists():
        try:
            definitions.create(body, by=by)
            return
        except Conflict:  # created meanwhile by another caller: update it like any existing one
            pass
    definitions.update(body["id"], body, by=by)  # no new version when unchanged


def canvas_result(execution_id: str) -> Any:
    """What Celery would have returned for the canvas the execution runs: the last task's return value, or
    the list of the last group's. ``ValueError`` when the execution did not complete a canvas."""
    execution = Execution.objects.select_related("version").filter(pk=execution_id).first()
    if execution is None:
        raise NotFound(f"Execution {execution_id!r} not found.")
    return canvases.result_of(execution.version.definition, outputs(execution_id))
