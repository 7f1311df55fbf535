"""``celery.task`` nodes: send an existing Celery task by name and turn its outcome into an inbox command.

The task id is ``{execution}:{node}:{attempt}``, so a re-sent attempt (recovery after a crash) is the same
task to Celery and its result the same inbox command to us. The result comes back through ``link`` (a task
of ours, sent by name to the node queue) and a failure through ``link_error``. The attempt's timeout timer
is the backstop when neither ever arrives.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings

from apps.workflows.models import Execution
from apps.workflows.services import outcomes, runner
from apps.workflows.services.batch import load_outputs
from apps.workflows.services.runner import Outcome
from workflow_engine import messaging

logger = logging.getLogger(__name__)


def task_id(execution_id: str, node_id: str, attempt: int) -> str:
    return f"{execution_id}:{node_id}:{attempt}"


class BadInput(ValueError):
    """The node's input does not fit its ``recordsAs`` (not retryable: the same input fails the same way)."""


def arguments(config: Mapping[str, Any], records: list[Any]) -> tuple[list[Any], dict[str, Any]]:
    """Positional and keyword arguments: the configured ones, plus the records as the node says."""
    args, kwargs = list(config.get("args") or []), dict(config.get("kwargs") or {})
    mode = config.get("recordsAs", "arg")
    if mode == "arg":
        args = [records, *args]
    elif mode == "kwarg":
        kwargs[config.get("recordsKwarg") or "records"] = records
    elif mode == "value":
        if len(records) != 1:
            raise BadInput(
                'celery.task: recordsAs "value" needs exactly one input record (the result of the task '
                f"before it); got {len(records)}"
            )
        args = [records[0], *args]
    return args, kwargs


def send(execution: Execution, node_id: str, attempt: int, inputs: dict[str, int]) -> None:
    wf, graph = runner.compiled(execution.version_id)
    config = wf.node(node_id).config
    refused = _not_allowed(config["task"])
    if refused:  # the allow-list may have shrunk since the definition was stored
        outcomes.report(execution, Outcome(node_id, attempt, None, 0, 0, error=refused, retryable=False))
        return
    records = runner.gather(graph, node_id, load_outputs(execution.id, inputs))
    try:
        args, kwargs = arguments(config, records)
    except BadInput as exc:
        outcomes.report(execution, Outcome(node_id, attempt, None, 0, 0, error=str(exc), retryable=False))
        return
    ids = (execution.id, node_id, attempt)
    messaging.user_task(
        config["task"], args, kwargs, task_id=task_id(*ids), queue=config.get("queue"), callback_args=ids
    )


def _not_allowed(task: str) -> str | None:
    allowed = settings.WORKFLOW_CELERY_TASKS
    if "*" in allowed or task in allowed:
        return None
    return f"celery.task: task {task!r} is not in WORKFLOW_CELERY_TASKS"


def as_records(result: Any, result_as: str = "records") -> list[Any]:
    """The node's records: the return value as one record (``resultAs: "value"``), or its elements."""
    if result_as == "value":
        return [result]
    if result is None:
        return []
    return list(result) if isinstance(result, (list, tuple)) else [result]


def succeeded(result: Any, execution_id: str, node_id: str, attempt: int) -> None:
    execution = Execution.objects.filter(pk=execution_id).first()
    if execution is not None:
        config = runner.compiled(execution.version_id)[0].node(node_id).config
        records = as_records(result, config.get("resultAs") or "records")
        outcomes.report(execution, runner.check_limits(node_id, attempt, records, len(records), []))


def failed(error: str, execution_id: str, node_id: str, attempt: int) -> None:
    execution = Execution.objects.filter(pk=execution_id).first()
    if execution is not None:
        # the task's own retries (if it has any) are over; ours follow the node's retry policy
        outcomes.report(execution, Outcome(node_id, attempt, None, 0, 0, error=error, retryable=True))


def revoke(execution_id: str, attempts: Sequence[tuple[str, int]]) -> None:
    if not attempts:
        return
    try:
        # terminate: a hung task must not keep a worker process busy after its attempt was given up
        messaging.revoke([task_id(execution_id, n, a) for n, a in attempts])
    except Exception:
        logger.warning("could not revoke tasks", exc_info=True, extra={"execution_id": execution_id})
