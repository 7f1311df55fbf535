"""``python.call``: runs a Python callable that an operator registered, never code sent through the API
(description: ``engine/nodetypes/python_call.py``).

``WORKFLOW_PYTHON_CALLABLES`` lists the dotted paths a definition may name (``myapp.enrich.score``); it is
checked when the workflow is defined and again when the node runs. The callable receives the input records
(a list, or one record at a time with ``perRecord``) and ``kwargs`` from the config, plus ``ctx`` (the
``NodeContext``, for its idempotency key and log) when it declares a parameter of that name.

What it returns becomes the node's records: a list gives its elements, None nothing, anything else one
record; with ``perRecord`` the results of all calls are concatenated. An exception fails the node, retryably
only when it has ``retryable = True``.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.utils.module_loading import import_string

from apps.workflows.engine.nodetypes import python_call
from apps.workflows.nodes.base import NodeContext, NodeError, NodeImplementation, NodeResult, implements
from apps.workflows.nodes.sandbox import python_callables


def _load(path: str) -> Callable[..., Any]:
    if path not in python_callables():  # the setting may have changed since the workflow was defined
        raise NodeError(f"python.call: {path} is not in WORKFLOW_PYTHON_CALLABLES")
    try:
        target = import_string(path)
    except ImportError as exc:
        raise NodeError(f"python.call: cannot import {path}: {exc}") from exc
    if not callable(target):
        raise NodeError(f"python.call: {path} is not callable")
    return target  # type: ignore[no-any-return]


def _wants_ctx(target: Callable[..., Any]) -> bool:
    try:
        return "ctx" in inspect.signature(target).parameters
    except (TypeError, ValueError):  # some builtins have no signature
        return False


def _as_records(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _call(path: str, target: Callable[..., Any], argument: Any, kwargs: Mapping[str, Any], label: str) -> Any:
    try:
        return target(argument, **kwargs)
    except NodeError:
        raise
    except Exception as exc:
        retryable = getattr(exc, "retryable", False) is True
        raise NodeError(
            f"python.call {path}: {label}{type(exc).__name__}: {exc}", retryable=retryable
        ) from exc


def _check_json(path: str, records: list[Any]) -> None:
    # Outputs are stored as JSON; say which callable returned something else rather than fail later.
    try:
        json.dumps(records, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise NodeError(f"python.call {path}: returned a value that is not JSON: {exc}") from exc


@implements(python_call.PythonCall, python_call.PythonCallSink)
class PythonCall(NodeImplementation):
    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        config = self.with_defaults(ctx.config)
        path = config["callable"]
        target = _load(path)
        kwargs = {**(config.get("kwargs") or {}), **({"ctx": ctx} if _wants_ctx(target) else {})}
        if config["perRecord"]:
            records = [
                record
                for index, item in enumerate(inputs)
                for record in _as_records(_call(path, target, item, kwargs, f"record {index}: "))
            ]
        else:
            records = _as_records(_call(path, target, list(inputs), kwargs, ""))
        _check_json(path, records)
        ctx.log(f"python.call {path}: {len(inputs)} records in, {len(records)} out")
        return NodeResult(records=records, records_processed=len(inputs))
