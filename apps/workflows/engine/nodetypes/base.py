"""What a node type is, without running it: the description every node type has in the pure layer.

A node type's description (``NodeType``) gives its ``type_name`` (the DSL's ``nodeType``), its ``category``,
its config schema (``fields``), the ``check`` for rules the schema cannot express, whether it may run
``inline``, its ``behavior`` (and ``wait_spec`` for waiting nodes) and its catalogue entry (``describe``).
Descriptions are registered with ``@register`` in their family module (``engine/nodetypes/<family>.py``), and
``engine/nodetypes/catalogue.py`` imports every family so the catalogue is complete. Validation and the graph
compiler use them; nothing here runs a node.

What ``run`` does lives in ``apps/workflows/nodes/``: one implementation per description
(``apps/workflows/nodes/base.py``), checked one-for-one when ``apps/workflows/nodes/registry.py`` loads.

Pure: modules of this package import the standard library and the engine, nothing else (no Django, no
driver). A check that depends on configuration reads it from the ``Sandbox`` it is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from apps.workflows.engine.dsl import Problems
from apps.workflows.engine.sandbox import Sandbox
from apps.workflows.engine.waits import WaitSpec

Category = Literal["source", "transform", "sink"]
FieldType = Literal["string", "integer", "number", "boolean", "array", "object", "any", "number_or_string"]

_JSON_TYPE_NAMES: dict[str, str] = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "array": "an array",
    "object": "an object",
    "number_or_string": "a number or a numeric string",
}


@dataclass(frozen=True)
class ConfigField:
    """One key of a node's ``config``: its JSON type, whether it is required, its default and a label."""

    name: str
    type: FieldType
    label: str
    required: bool = False
    default: Any = None
    choices: tuple[Any, ...] = ()

    def describe(self) -> dict[str, Any]:
        """The catalogue entry served by ``GET /api/v1/workflows/node-types``."""
        out: dict[str, Any] = {"type": self.type, "required": self.required, "label": self.label}
        if self.default is not None:
            out["default"] = self.default
        if self.choices:
            out["choices"] = list(self.choices)
        return out

    def problems(self, config: Mapping[str, Any]) -> list[str]:
        """What is wrong with this key in ``config`` (empty when it is fine)."""
        if self.name not in config or config[self.name] is None:
            return ["This field is required."] if self.required else []
        value = config[self.name]
        if not _has_type(value, self.type):
            return [f"Must be {_JSON_TYPE_NAMES[self.type]}, got {_json_type(value)}."]
        if self.choices and value not in self.choices:
            return [f"Must be one of {', '.join(map(str, self.choices))}; got {value!r}."]
        return []


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _has_type(value: Any, kind: FieldType) -> bool:
    if kind == "any":
        return True
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return _is_number(value)
    if kind == "number_or_string":
        return _is_number(value) or (isinstance(value, str) and _parses_as_number(value))
    expected: dict[str, type | tuple[type, ...]] = {
        "string": str,
        "boolean": bool,
        "array": list,
        "object": dict,
    }
    return isinstance(value, expected[kind])


def _parses_as_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class NodeType:
    """A node type's description. Subclasses set the class attributes and, where needed, ``check``."""

    type_name: ClassVar[str]
    category: ClassVar[Category]
    display_name: ClassVar[str]
    description: ClassVar[str]
    icon: ClassVar[str] = "box"
    fields: ClassVar[tuple[ConfigField, ...]] = ()
    # True only for cheap, pure, bounded nodes: the engine may run them inside the transaction that made
    # them ready, so their implementation must not do I/O
    inline: ClassVar[bool] = False
    # "run": the implementation maps inputs to records; "wait": the engine waits (``wait_spec``) and never
    # runs it; "task": the engine sends a Celery task and waits for its result (control.py)
    behavior: ClassVar[str] = "run"

    def wait_spec(self, config: Mapping[str, Any]) -> WaitSpec | None:
        """For ``behavior = "wait"``: what the node waits for, from its (validated) config."""
        return None

    def validate(self, config: Mapping[str, Any], sandbox: Sandbox) -> Problems:
        """Problems per config key: the schema first, then ``check`` when the schema holds."""
        problems = {f.name: p for f in self.fields if (p := f.problems(config))}
        if problems:
            return problems
        return self.check(self.with_defaults(config), sandbox)

    def check(self, config: Mapping[str, Any], sandbox: Sandbox) -> Problems:
        """Rules the schema cannot express (an expression that does not parse, min > max, a host outside the
        sandbox's allow-list...), on the config with its defaults."""
        return {}

    def with_defaults(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """``config`` with the declared defaults filled in for absent keys."""
        merged = {f.name: f.default for f in self.fields if f.default is not None}
        merged.update({k: v for k, v in config.items() if v is not None})
        return merged

    def describe(self) -> dict[str, Any]:
        """The catalogue entry served by ``GET /api/v1/workflows/node-types``."""
        return {
            "type": self.type_name,
            "displayName": self.display_name,
            "icon": self.icon,
            "category": self.category,
            "description": self.description,
            "config": {f.name: f.describe() for f in self.fields},
        }


_REGISTRY: dict[tuple[Category, str], NodeType] = {}


def register(cls: type[NodeType]) -> type[NodeType]:
    """Class decorator: add one instance of ``cls`` to the catalogue under (category, type_name)."""
    key = (cls.category, cls.type_name)
    if key in _REGISTRY:
        raise RuntimeError(f"node type {key} registered twice")
    _REGISTRY[key] = cls()
    return cls


def registered() -> Mapping[tuple[Category, str], NodeType]:
    """Every description registered so far; ``catalogue.py`` imports the families, so use it instead."""
    return _REGISTRY
