"""The contract of a node type's implementation: what ``run`` receives, returns and must guarantee.

A node type has two halves. Its description (``apps.workflows.engine.nodetypes``: name, category, config
schema, checks, ``inline``, ``behavior``, catalogue entry) is pure, so the engine validates and compiles a
definition without Django. Its implementation, here, is a ``NodeImplementation`` subclass with ``run``,
registered against its description with ``@implements(Description, ...)`` in the family module of this
package (``sources.py``, ``transforms.py``, ...). ``apps.workflows.nodes.registry`` imports every family and
refuses to load unless each description has exactly one implementation and each implementation a
description.

Guarantees an implementation must keep:

- ``run`` receives the records of its upstream nodes (JSON values; fan-in concatenated in edge order) and
  returns the records it produces. It must not touch the database: the engine stores outputs and logs.
- A node may be run more than once for the same attempt (at-least-once). Side effects are keyed by
  ``ctx.idempotency_key`` (``{execution}:{node}:{attempt}``) so that a re-run writes nothing twice.
- A node described as ``inline`` runs inside the transaction that made it ready, so its ``run`` does no I/O.
- What validation checked against the settings (hosts, paths, connections, callables) is checked again in
  ``run`` against the current settings (``nodes/sandbox.py``): they may have changed since.
- Expected failures raise ``NodeError`` (with ``retryable``); anything else is a bug in the node and is
  reported as a non-retryable failure with the exception text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from apps.workflows.engine.nodetypes.base import Category, NodeType, registered


class NodeError(Exception):
    """A node failed in an expected way; ``retryable`` says whether a new attempt may succeed."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


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


class NodeImplementation:
    """Base class of every implementation: ``run`` for the description ``node_type`` it was registered for
    (one instance per description, so a class may implement a type in several categories)."""

    def __init__(self, node_type: NodeType) -> None:
        self.node_type = node_type

    @property
    def type_name(self) -> str:
        return self.node_type.type_name

    @property
    def category(self) -> Category:
        return self.node_type.category

    def with_defaults(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """``config`` with the description's defaults (``ctx.config`` already has them when the engine runs
        the node; a direct caller's may not)."""
        return self.node_type.with_defaults(config)

    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        raise NotImplementedError


_IMPLEMENTATIONS: dict[tuple[Category, str], NodeImplementation] = {}

ImplClass = TypeVar("ImplClass", bound=type[NodeImplementation])


def implements(*described: type[NodeType]) -> Callable[[ImplClass], ImplClass]:
    """Class decorator: ``cls`` runs the node types of these (registered) descriptions."""

    def register(cls: ImplClass) -> ImplClass:
        for description in described:
            key = (description.category, description.type_name)
            node_type = registered().get(key)
            if type(node_type) is not description:
                raise RuntimeError(
                    f"{cls.__name__} implements {description.__name__}, which is not registered"
                )
            if key in _IMPLEMENTATIONS:
                raise RuntimeError(f"node type {key} implemented twice")
            _IMPLEMENTATIONS[key] = cls(node_type)
        return cls

    return register


def implemented() -> Mapping[tuple[Category, str], NodeImplementation]:
    """Every implementation registered so far; ``registry.py`` imports the families, so use it instead."""
    return _IMPLEMENTATIONS
