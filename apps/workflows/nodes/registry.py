"""The implementations of the node catalogue: every family is imported here, and each description of
``engine/nodetypes/catalogue.py`` must have exactly one implementation (and each implementation a
description), or importing this module fails, on gateways and workers alike."""

from __future__ import annotations

from apps.workflows.engine.nodetypes import catalogue
from apps.workflows.engine.nodetypes.base import Category
from apps.workflows.nodes import (  # noqa: F401  (registers the families)
    control,
    databases,
    http,
    python_call,
    sinks,
    sources,
    sql,
    transforms,
)
from apps.workflows.nodes.base import NodeImplementation, implemented


def mismatches() -> list[str]:
    """Descriptions without an implementation and implementations without a description (empty: none)."""
    described, done = set(catalogue.descriptions()), set(implemented())
    return [f"node type {key} has no implementation" for key in sorted(described - done)] + [
        f"node type {key} is implemented but not described" for key in sorted(done - described)
    ]


if problems := mismatches():
    raise RuntimeError("; ".join(problems))


def resolve(
    node_type: str, declared: str | None, *, has_inputs: bool, has_outputs: bool
) -> NodeImplementation | None:
    """The implementation of a DSL node: the one of the description ``catalogue.resolve`` picks."""
    found = catalogue.resolve(node_type, declared, has_inputs=has_inputs, has_outputs=has_outputs)
    return None if found is None else implementation(found.category, found.type_name)


def implementation(category: Category, type_name: str) -> NodeImplementation:
    return implemented()[category, type_name]


def candidates(node_type: str) -> list[NodeImplementation]:
    """Every implementation of a node type named ``node_type``, in the catalogue's order."""
    return [implementation(found.category, found.type_name) for found in catalogue.candidates(node_type)]
