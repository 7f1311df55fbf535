"""Descriptions of the nodes the engine itself drives: ``delay``, ``wait.signal``, ``approval`` (behavior
"wait") and ``celery.task`` (behavior "task"), and ``execution.input``.

Waiting nodes never run code: the engine starts a durable timer or waits for a signal sent through
``POST /api/v1/executions/{id}/signals/{name}``; ``wait_spec`` says which, from the node's config. A
``celery.task`` node sends an existing Celery task by name (one the sandbox allows) and waits, durably, for
the result to come back as an inbox command.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from apps.workflows.engine.dsl import Problems
from apps.workflows.engine.nodetypes.base import Category, ConfigField, NodeType, register
from apps.workflows.engine.policies import duration_ms, duration_problem
from apps.workflows.engine.sandbox import Sandbox
from apps.workflows.engine.waits import WaitSpec


def _timestamp_ms(text: str) -> int | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return int(moment.timestamp() * 1000) if moment.tzinfo else None


def _duration_problem(config: Mapping[str, Any], key: str) -> Problems:
    if config.get(key) is not None and (problem := duration_problem(config[key])):
        return {key: [problem]}
    return {}


class _Waiting(NodeType):
    behavior = "wait"
    category: ClassVar[Category] = "transform"


@register
class Delay(_Waiting):
    type_name = "delay"
    display_name = "Delay"
    icon = "clock"
    description = "Waits for a duration or until a time (a durable timer), then passes its inputs on."
    fields = (
        ConfigField("duration", "any", "Duration (30s, 5m, 1h)"),
        ConfigField("until", "string", "Until (ISO 8601 time with a zone)"),
    )

    def check(self, config: Mapping[str, Any], sandbox: Sandbox) -> Problems:
        if (config.get("duration") is None) == (config.get("until") is None):
            return {"duration": ["Give either duration or until."]}
        if config.get("until") is not None and _timestamp_ms(config["until"]) is None:
            return {"until": ["Must be an ISO 8601 time with a zone, such as 2026-12-01T09:00:00Z."]}
        return _duration_problem(config, "duration")

    def wait_spec(self, config: Mapping[str, Any]) -> WaitSpec:
        if config.get("until") is not None:
            return WaitSpec("timer", until_ms=_timestamp_ms(config["until"]))
        return WaitSpec("timer", delay_ms=duration_ms(config["duration"]))


class _SignalWait(_Waiting):
    type_name = "wait.signal"
    display_name = "Wait for a signal"
    icon = "bell"
    description = "Waits for a named signal sent to the execution; outputs the signal's JSON payload."
    fields = (
        ConfigField("name", "string", "Signal name", required=True),
        ConfigField("timeout", "any", "Give up after (30s, 5m, 1h)"),
    )

    def check(self, config: Mapping[str, Any], sandbox: Sandbox) -> Problems:
        return _duration_problem(config, "timeout")

    def wait_spec(self, config: Mapping[str, Any]) -> WaitSpec:
        return WaitSpec(
            "signal", signal=config["name"], timeout_ms=duration_ms(config.get("timeout") or 0) or None
        )


@register
class WaitSignal(_SignalWait):
    category = "transform"


@register
class WaitSignalSource(_SignalWait):
    category = "source"


@register
class Approval(_Waiting):
    type_name = "approval"
    display_name = "Approval"
    icon = "check"
    description = (
        "Waits until a user with the approve permission approves (signal <name>) or rejects (signal "
        "<name>.reject); passes its inputs on when approved and records who approved."
    )
    fields = (
        ConfigField("name", "string", "Signal name", default="approve"),
        ConfigField("timeout", "any", "Give up after (30s, 5m, 1h)"),
    )

    def check(self, config: Mapping[str, Any], sandbox: Sandbox) -> Problems:
        return _duration_problem(config, "timeout")

    def wait_spec(self, config: Mapping[str, Any]) -> WaitSpec:
        timeout = duration_ms(config.get("timeout") or 0) or None
        return WaitSpec("signal", signal=config.get("name") or "approve", timeout_ms=timeout, approval=True)


class _CeleryTask(NodeType):
    type_name = "celery.task"
    display_name = "Celery task"
    icon = "zap"
    description = (
        "Sends an existing Celery task by name (allowed in WORKFLOW_CELERY_TASKS) with the input records, "
        "and waits durably for its result, which becomes the output records."
    )
    behavior = "task"
    fields = (
        ConfigField("task", "string", "Task name", required=True),
        ConfigField("args", "array", "Extra positional arguments"),
        ConfigField("kwargs", "object", "Keyword arguments"),
        # "value": the one input record itself, first: a Celery chain's "result of the previous task"
        ConfigField(
            "recordsAs",
            "string",
            "Pass the records as",
            default="arg",
            choices=("arg", "kwarg", "none", "value"),
        ),
        ConfigField("recordsKwarg", "string", "Keyword for the records", default="records"),
        ConfigField("queue", "string", "Queue to send the task to"),
        # "value": the return value is one record as it is (a list stays a list, None stays None), so a
        # downstream node gets exactly what the task returned, as in a Celery canvas
        ConfigField(
            "resultAs", "string", "Turn the result into", default="records", choices=("records", "value")
        ),
    )

    def check(self, config: Mapping[str, Any], sandbox: Sandbox) -> Problems:
        allowed = sandbox.celery_tasks
        if "*" not in allowed and config["task"] not in allowed:
            known = ", ".join(allowed) or "none"
            return {"task": [f"Task {config['task']!r} is not allowed (WORKFLOW_CELERY_TASKS: {known})."]}
        return {}


@register
class CeleryTaskTransform(_CeleryTask):
    category = "transform"


@register
class CeleryTaskSink(_CeleryTask):
    category = "sink"


@register
class ExecutionInput(NodeType):
    type_name = "execution.input"
    category = "source"
    display_name = "Execution input"
    icon = "log-in"
    description = (
        "Outputs the execution's input as one record: the parameters a caller started it with, or a "
        "schedule's logical time."
    )
    inline = True
