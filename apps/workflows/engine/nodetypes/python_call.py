"""``python.call``'s description: a Python callable that an operator registered, never code sent through the
API. The callable must be one of the sandbox's ``python_callables`` (``WORKFLOW_PYTHON_CALLABLES``); the
implementation (``apps/workflows/nodes/python_call.py``) checks it again when the node runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from apps.workflows.engine.dsl import Problems
from apps.workflows.engine.nodetypes.base import Category, ConfigField, NodeType, register
from apps.workflows.engine.sandbox import Sandbox


class _PythonCall(NodeType):
    icon = "code"
    fields = (
        ConfigField(
            "callable", "string", "Callable (dotted path in WORKFLOW_PYTHON_CALLABLES)", required=True
        ),
        ConfigField("perRecord", "boolean", "Call once per record", default=False),
        ConfigField("kwargs", "object", "Keyword arguments"),
    )

    def check(self, config: Mapping[str, Any], sandbox: Sandbox) -> Problems:
        if config["callable"] in sandbox.python_callables:
            return {}
        listed = ", ".join(sandbox.python_callables) or "none are registered"
        return {
            "callable": [
                f"{config['callable']!r} is not a registered callable (WORKFLOW_PYTHON_CALLABLES: {listed})."
            ]
        }


_DESCRIPTION = (
    "Runs a Python callable registered in WORKFLOW_PYTHON_CALLABLES with the input records (a list, or one "
    "record per call with perRecord) and kwargs; a returned list gives the records, None none, any other "
    "value one record."
)


@register
class PythonCall(_PythonCall):
    type_name = "python.call"
    category: ClassVar[Category] = "transform"
    display_name = "Python callable"
    description = _DESCRIPTION


@register
class PythonCallSink(_PythonCall):
    type_name = "python.call"
    category: ClassVar[Category] = "sink"
    display_name = "Python callable"
    description = _DESCRIPTION
