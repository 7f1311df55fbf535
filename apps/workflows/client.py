"""A small public Python API for starting workflows from your own code, without HTTP.

Import it in any process where Django is set up with the engine's settings (a Celery task, a management
command, a script calling ``django.setup()``), and talks to PostgreSQL directly, as the REST API does::

    from apps.workflows import client

    client.create_workflow({"id": "hello", "name": "hello", "nodes": [...], "edges": [...]})
    execution_id = client.start("hello", input={"who": "world"}, idempotency_key="order-42")
    status = client.wait(execution_id, timeout=30)  # "completed", "failed" or "cancelled"

``start`` commits the execution row and its start command in one transaction and then sends the wake-up hint
to the execution's shard; a coordinator and workers must be running for it to move.
"""

from __future__ import annotations

import time
from typing import Any

from apps.workflows.models import Execution
from apps.workflows.services import definitions, executions
from workflow_engine.errors import NotFound

__all__ = ["TERMINAL", "ExecutionNotFinished", "create_workflow", "start", "status", "wait"]

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
