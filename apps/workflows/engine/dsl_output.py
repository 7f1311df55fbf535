"""A stored definition as the original's clients read it: every DSL field present (origin-product.md §1.1).

The original's parser required every non-``Option`` field, so its clients read them without checking; we
accept bodies without them (and drafts), and fill them in on the way out only, so that what was posted is
what is stored. The rule:

- a field the original required gets a default when absent or null: ``description`` "", ``version``
  "1.0", ``author`` "", ``tags`` [], ``metadata`` {``createdAt``, ``updatedAt``: the server's times};
  a node's ``type`` (its category), ``label`` (its id), ``position`` {x: 0, y: 0} and ``config`` {};
- an optional field with a declared default gets it: an edge's ``sourceHandle`` "out", ``targetHandle`` "in";
- other optional fields (a node's ``style``; an edge's ``animated``, ``label``, ``style``; ``metadata``'s
  ``executionHistory`` and ``schedule``) stay absent, as the original omitted ``None``.

Pure and total: a draft may hold anything, so each default is applied only where the shape around it is
right, and nothing else is touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apps.workflows.engine.nodetypes import catalogue

WORKFLOW_DEFAULTS: Mapping[str, Any] = {"description": "", "version": "1.0", "author": "", "tags": []}
EDGE_DEFAULTS: Mapping[str, Any] = {"sourceHandle": "out", "targetHandle": "in"}


def _fill(body: dict[str, Any], defaults: Mapping[str, Any]) -> None:
    for key, value in defaults.items():
        if body.get(key) is None:
            body[key] = value.copy() if isinstance(value, dict | list) else value


def _ends(edges: Any) -> tuple[set[Any], set[Any]]:
    """(node ids with an incoming edge, node ids with an outgoing edge)."""
    targets: set[Any] = set()
    sources: set[Any] = set()
    for edge in edges if isinstance(edges, list) else []:
        if isinstance(edge, Mapping):
            if isinstance(edge.get("target"), str):
                targets.add(edge["target"])
            if isinstance(edge.get("source"), str):
                sources.add(edge["source"])
    return targets, sources


def _kind(node: Mapping[str, Any], has_inputs: bool, has_outputs: bool) -> str:
    """The node's category from its ``nodeType``; for an unknown type, its place in the graph."""
    node_type = node.get("nodeType")
    if isinstance(node_type, str):
        declared = node.get("type") if isinstance(node.get("type"), str) else None
        found = catalogue.resolve(node_type, declared, has_inputs=has_inputs, has_outputs=has_outputs)
        if found is not None:
            return found.category
    return "source" if not has_inputs else "sink" if not has_outputs else "transform"


def _node(raw: dict[str, Any], ends: tuple[set[Any], set[Any]], index: int) -> dict[str, Any]:
    node = dict(raw)
    node_id = node.get("id") if isinstance(node.get("id"), str) else None  # a draft's may be unhashable
    if node.get("type") is None:
        node["type"] = _kind(node, node_id in ends[0], node_id in ends[1])
    if node.get("label") is None:
        node["label"] = node_id if node_id is not None else f"node-{index + 1}"
    _fill(node, {"position": {"x": 0, "y": 0}, "config": {}})
    return node


def _metadata(raw: Any, created_at: str | None, updated_at: str | None) -> Any:
    if raw is not None and not isinstance(raw, dict):
        return raw  # a draft's wrong type is shown as saved, with its problem
    metadata = dict(raw or {})
    _fill(metadata, {"createdAt": created_at, "updatedAt": updated_at})
    return metadata


def with_defaults(definition: Any, *, created_at: str | None, updated_at: str | None) -> Any:
    """``definition`` with the original's fields filled in (a new dict; the stored one is not changed).

    ``created_at``/``updated_at`` (ISO 8601) stand in for ``metadata.createdAt``/``updatedAt`` when the
    client did not send them: the workflow's creation and its current version's times.
    """
    if not isinstance(definition, dict):
        return definition
    out = dict(definition)
    _fill(out, WORKFLOW_DEFAULTS)
    out["metadata"] = _metadata(out.get("metadata"), created_at, updated_at)
    ends = _ends(out.get("edges"))
    if isinstance(out.get("nodes"), list):
        out["nodes"] = [_node(n, ends, i) if isinstance(n, dict) else n for i, n in enumerate(out["nodes"])]
    if isinstance(out.get("edges"), list):
        out["edges"] = [_edge(e) if isinstance(e, dict) else e for e in out["edges"]]
    return out


def _edge(raw: dict[str, Any]) -> dict[str, Any]:
    edge = dict(raw)
    _fill(edge, EDGE_DEFAULTS)
    return edge
