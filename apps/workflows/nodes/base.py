"""The contract every node type fulfils.

A node type is one class with a ``type_name`` (the DSL's ``nodeType``), a ``category``, a config schema
(``fields``), an optional ``check`` for rules the schema cannot express, and ``run``. It is registered with
``@register`` in its family module (``sources.py``, ``transforms.py``, ``sinks.py``), and
``apps.workflows.nodes.registry`` imports every family so the catalogue is complete.

Guarantees a node must keep:

- ``run`` receives the records of its upstream nodes (JSON values; fan-in concatenated in edge order) and
  returns the records it produces. It must not touch the database: the engine stores outputs and logs.
- A node may be run more than once for the same attempt (at-least-once). Side effects are keyed by
  ``ctx.idempotency_key`` (``{execution}:{node}:{attempt}``) so that a re-run writes nothing twice.
- ``inline = True`` only for cheap, pure, bounded nodes: the engine may run them inside the transaction that
  made them ready, so they must not do I/O.
- Expected failures raise ``NodeError`` (with ``retryable``); anything else is a bug in the node and is
  reported as a non-retryable failure with the exception text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

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


class NodeError(Exception):
    """A node failed in an expected way; ``retryable`` says whether a new attempt may succeed."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


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


@dataclass
class NodeContext:
    """What a running node may know and do. ``log`` lines end up in the execution log."""

    execution_id: str
    workflow_id: str
    node_id: str
    attempt: int
    config: Mapping[str, Any]
    log: Callable[[str], None] = field(default=lambda line: None)
    # each upstream node's records by node id (``sql.query`` exposes them as tables)
    inputs_by_node: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    # True once the execution was cancelled or the attempt timed out: long nodes should stop early
    cancelled: Callable[[], bool] = field(default=lambda: False)
    # the execution's input (a schedule's logical time, a caller's parameters), output by execution.input
    input: Mapping[str, Any] = field(default_factory=dict)

    @property
    def idempotency_key(self) -> str:
        return f"{self.execution_id}:{self.node_id}:{self.attempt}"


@dataclass(frozen=True)
class NodeResult:
    """Records a node produced, and how many records it processed (``recordsProcessed`` in the API)."""

    records: list[Any]
    records_processed: int


class NodeType:
    """Base class of every node type. Subclasses set the class attributes and implement ``run``."""

    type_name: ClassVar[str]
    category: ClassVar[Category]
    display_name: ClassVar[str]
    description: ClassVar[str]
    icon: ClassVar[str] = "box"
    fields: ClassVar[tuple[ConfigField, ...]] = ()
    inline: ClassVar[bool] = False
    # "run": ``run`` maps inputs to records; "wait": the engine waits (``wait_spec``) and never calls ``run``;
    # "task": the engine sends a Celery task and waits for its result (nodes/control.py)
    behavior: ClassVar[str] = "run"

    def wait_spec(self, config: Mapping[str, Any]) -> WaitSpec | None:
        """For ``behavior = "wait"``: what the node waits for, from its (validated) config."""
        return None

    def validate(self, config: Mapping[str, Any]) -> dict[str, list[str]]:
        """Problems per config key: the schema first, then ``check`` when the schema holds."""
        problems = {f.name: p for f in self.fields if (p := f.problems(config))}
        if problems:
            return problems
        return self.check(self.with_defaults(config))

    def check(self, config: Mapping[str, Any]) -> dict[str, list[str]]:
        """Rules the schema cannot express (an expression that does not parse, min > max, ...)."""
        return {}

    def with_defaults(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """``config`` with the declared defaults filled in for absent keys."""
        merged = {f.name: f.default for f in self.fields if f.default is not None}
        merged.update({k: v for k, v in config.items() if v is not None})
        return merged

    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
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
    return _REGISTRY
