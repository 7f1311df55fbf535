"""The original product's JSON DSL (origin-product.md §1.1), read into frozen dataclasses.

We accept every body the original accepted: its minimal body works unchanged. Fields the engine needs
(``id``, ``name``, ``nodes``, ``edges``; a node's ``id`` and ``nodeType``; an edge's ``id``, ``source``,
``target``) are required; the original's UI-only fields (``position``, ``label``, ``metadata`` ...) are
optional but, when present, must have the right JSON type. Unknown fields are kept in the stored body and
ignored, as spray-json did.
Problems are reported per field path (``nodes[1].config.condition``), all at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from apps.workflows.engine.policies import WorkflowPolicies, parse_retry, parse_settings, parse_timeout

Problems = dict[str, list[str]]

NODE_KINDS = ("source", "transform", "sink")


@dataclass(frozen=True)
class NodeDef:
    id: str
    node_type: str
    declared_type: str | None
    label: str
    config: Mapping[str, Any]
    retry_raw: Mapping[str, Any] | None = None  # merged over the workflow's default retry at compile time
    timeout_ms: int | None = None


@dataclass(frozen=True)
class EdgeDef:
    id: str
    source: str
    target: str


@dataclass(frozen=True)
class WorkflowDef:
    id: str
    name: str
    nodes: tuple[NodeDef, ...]
    edges: tuple[EdgeDef, ...]
    policies: WorkflowPolicies = field(default_factory=WorkflowPolicies)

    def node(self, node_id: str) -> NodeDef:
        return self._by_id[node_id]

    @cached_property
    def _by_id(self) -> Mapping[str, NodeDef]:
        return {n.id: n for n in self.nodes}


def _type_problem(value: Any, expected: type | tuple[type, ...], what: str) -> list[str]:
    if isinstance(value, bool) and expected is not bool:
        return [f"Must be {what}."]
    return [] if isinstance(value, expected) else [f"Must be {what}."]


def _required(body: Mapping[str, Any], key: str, expected: type, what: str, path: str, out: Problems) -> Any:
    if key not in body or body[key] is None:
        out[f"{path}{key}"] = ["This field is required."]
        return None
    problems = _type_problem(body[key], expected, what)
    if expected is str and not problems and not body[key].strip():
        problems = ["May not be blank."]
    if problems:
        out[f"{path}{key}"] = problems
        return None
    return body[key]


def _optional(
    body: Mapping[str, Any], key: str, expected: type | tuple[type, ...], what: str, path: str, out: Problems
) -> None:
    if body.get(key) is not None and (problems := _type_problem(body[key], expected, what)):
        out[f"{path}{key}"] = problems


MAX_ID_LENGTH = 200
# A definition's size limits (docs/security.md). Validation, compilation and each apply are linear in the
# graph's size, so these bound the work of one request and of one execution's state rather than protect a
# quadratic step; the request body limit (DATA_UPLOAD_MAX_MEMORY_SIZE) applies first.
MAX_NODES = 10_000
MAX_EDGES = 50_000
_MAX_ITEMS = {"nodes": MAX_NODES, "edges": MAX_EDGES}


def _identifier(value: str | None, field: str, out: Problems) -> str | None:
    """Ids appear in URLs and in inbox keys: no slash, no control character, at most 200 characters."""
    if value is None:
        return None
    if len(value) > MAX_ID_LENGTH:
        out[field] = [f"At most {MAX_ID_LENGTH} characters (got {len(value)})."]
    elif "/" in value or any(ord(c) < 32 for c in value):
        out[field] = ["May not contain '/' or control characters."]
    else:
        return value
    return None


def parse(body: Any) -> tuple[WorkflowDef | None, Problems]:
    """The definition and its shape problems; ``None`` when the body cannot be read as the DSL."""
    if not isinstance(body, Mapping):
        return None, {"non_field_errors": ["The body must be a JSON object (the workflow DSL)."]}
    out: Problems = {}
    wf_id = _identifier(_required(body, "id", str, "a string", "", out), "id", out)
    name = _required(body, "name", str, "a string", "", out)
    for key in ("description", "version", "author"):
        _optional(body, key, str, "a string", "", out)
    _optional(body, "metadata", dict, "an object", "", out)
    _check_tags(body, out)
    nodes = _parse_list(body, "nodes", _parse_node, out)
    edges = _parse_list(body, "edges", _parse_edge, out)
    policies = parse_settings(body.get("settings"), out)
    if out or wf_id is None or name is None or nodes is None or edges is None:
        return None, out
    return WorkflowDef(id=wf_id, name=name, nodes=tuple(nodes), edges=tuple(edges), policies=policies), out


def _check_tags(body: Mapping[str, Any], out: Problems) -> None:
    tags = body.get("tags")
    if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
        out["tags"] = ["Must be an array of strings."]


def _parse_list(body: Mapping[str, Any], key: str, item: Any, out: Problems) -> list[Any] | None:
    items = _required(body, key, list, "an array", "", out)
    if items is None:
        return None
    if len(items) > _MAX_ITEMS[key]:  # before reading them: a huge list is refused at the cost of len()
        out[key] = [f"At most {_MAX_ITEMS[key]} {key} (got {len(items)})."]
        return None
    parsed = [item(raw, f"{key}[{i}].", out) for i, raw in enumerate(items)]
    return None if any(p is None for p in parsed) else parsed


def _parse_node(raw: Any, path: str, out: Problems) -> NodeDef | None:
    if not isinstance(raw, Mapping):
        out[path.rstrip(".")] = ["Must be an object with id, nodeType and config."]
        return None
    before = len(out)
    node_id = _identifier(_required(raw, "id", str, "a string", path, out), f"{path}id", out)
    node_type = _required(raw, "nodeType", str, "a string", path, out)
    _optional(raw, "label", str, "a string", path, out)
    _optional(raw, "config", dict, "an object", path, out)
    _optional(raw, "position", dict, "an object with x and y", path, out)
    declared = raw.get("type")
    if declared is not None and declared not in NODE_KINDS:
        out[f"{path}type"] = [f"Must be one of {', '.join(NODE_KINDS)}; got {declared!r}."]
    parse_retry(raw.get("retry"), f"{path}retry", out)  # checked here, merged at compile time
    timeout_ms = parse_timeout(raw.get("timeout"), f"{path}timeout", out)
    if len(out) > before or node_id is None or node_type is None:
        return None
    label = raw.get("label") or node_id
    return NodeDef(
        id=node_id,
        node_type=node_type,
        declared_type=declared,
        label=label,
        config=dict(raw.get("config") or {}),
        retry_raw=raw.get("retry"),
        timeout_ms=timeout_ms,
    )


def _parse_edge(raw: Any, path: str, out: Problems) -> EdgeDef | None:
    if not isinstance(raw, Mapping):
        out[path.rstrip(".")] = ["Must be an object with id, source and target."]
        return None
    before = len(out)
    values = [_required(raw, key, str, "a string", path, out) for key in ("id", "source", "target")]
    for key in ("sourceHandle", "targetHandle", "label"):
        _optional(raw, key, str, "a string", path, out)
    if len(out) > before or None in values:
        return None
    return EdgeDef(id=values[0], source=values[1], target=values[2])
