"""The catalogue of node descriptions: every family is imported here, so a look-up always sees all of them.

Validation, the graph compiler and ``GET /api/v1/workflows/node-types`` read node types through this module;
``apps/workflows/nodes/registry.py`` pairs each description with its implementation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apps.workflows.engine.nodetypes import (  # noqa: F401  (registers the families)
    control,
    databases,
    http,
    python_call,
    sinks,
    sources,
    sql,
    transforms,
)
from apps.workflows.engine.nodetypes.base import Category, NodeType, registered

CATEGORIES: tuple[Category, ...] = ("source", "transform", "sink")


def descriptions() -> Mapping[tuple[Category, str], NodeType]:
    """Every node type's description by (category, type name)."""
    return registered()


def candidates(node_type: str) -> list[NodeType]:
    """Every node type named ``node_type`` (``file.text`` is both a source and a sink)."""
    return [found for (_, name), found in registered().items() if name == node_type]


def resolve(node_type: str, declared: str | None, *, has_inputs: bool, has_outputs: bool) -> NodeType | None:
    """The description of a DSL node.

    ``nodeType`` decides; where one name exists in several categories, the node's place in the graph picks
    (no inputs: a source, no outputs: a sink, else a transform), then its declared ``type``. The original
    always took ``file.text`` as a source, which made it unusable as a sink.
    """
    found = candidates(node_type)
    if len(found) <= 1:
        return found[0] if found else None
    by_place: Category = "source" if not has_inputs else "sink" if not has_outputs else "transform"
    for wanted in (by_place, declared):
        match = next((described for described in found if described.category == wanted), None)
        if match is not None:
            return match
    return found[0]


def catalogue() -> dict[str, list[dict[str, Any]]]:
    """``GET /api/v1/workflows/node-types``: ``{source: [...], transform: [...], sink: [...]}``."""
    out: dict[str, list[dict[str, Any]]] = {c: [] for c in CATEGORIES}
    for (category, _), described in sorted(registered().items()):
        out[category].append(described.describe())
    return out


def type_names() -> list[str]:
    return sorted({name for (_, name) in registered()})
