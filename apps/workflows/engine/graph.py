"""A workflow's DAG: semantic validation and the compiled graph the engine decides on.

Pure: the node catalogue is passed in as a ``resolve`` function, so tests can give their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from apps.workflows.engine.dsl import NodeDef, Problems, WorkflowDef
from apps.workflows.engine.policies import NO_RETRY, RetryPolicy, WorkflowPolicies, parse_retry
from apps.workflows.engine.waits import WaitSpec


@dataclass(frozen=True)
class NodeInfo:
    """What the engine needs to know of a node type, from the catalogue."""

    category: str
    inline: bool
    validate: Callable[[Mapping[str, object]], Problems]
    behavior: str = "run"  # "run": a function of its inputs; "wait": see waits.py; "task": a Celery task
    wait_spec: Callable[[Mapping[str, object]], WaitSpec | None] = lambda config: None


# resolve(node_type, declared_type, has_inputs, has_outputs) -> NodeInfo or None
Resolver = Callable[[str, str | None, bool, bool], NodeInfo | None]


@dataclass(frozen=True)
class GraphNode:
    id: str
    node_type: str
    category: str
    inline: bool
    upstream: tuple[str, ...]  # in edge order: fan-in concatenates inputs in this order
    downstream: tuple[str, ...]
    behavior: str = "run"
    retry: RetryPolicy = NO_RETRY
    timeout_ms: int | None = None
    wait: WaitSpec | None = None


@dataclass(frozen=True)
class Graph:
    workflow_id: str
    name: str
    order: tuple[str, ...]  # a topological order, stable in the order nodes were declared
    nodes: Mapping[str, GraphNode]
    policies: WorkflowPolicies = field(default_factory=WorkflowPolicies)

    def sources(self) -> tuple[str, ...]:
        return tuple(n for n in self.order if not self.nodes[n].upstream)


def check(wf: WorkflowDef, resolve: Resolver, known_types: list[str]) -> Problems:
    """Every semantic problem of a parsed definition, keyed by the offending field."""
    out: Problems = {}
    if not wf.nodes:
        out["nodes"] = ["A workflow needs at least one node."]
        return out
    _check_duplicates(wf, out)
    _check_edges(wf, out)
    categories = _check_nodes(wf, resolve, known_types, out)
    if not out:
        _check_shape(wf, categories, out)
    return out


def _check_duplicates(wf: WorkflowDef, out: Problems) -> None:
    for kind, ids in (("nodes", [n.id for n in wf.nodes]), ("edges", [e.id for e in wf.edges])):
        seen: set[str] = set()
        for i, item_id in enumerate(ids):
            if item_id in seen:
                out[f"{kind}[{i}].id"] = [f"Duplicate id {item_id!r}."]
            seen.add(item_id)


def _check_edges(wf: WorkflowDef, out: Problems) -> None:
    ids = {n.id for n in wf.nodes}
    for i, edge in enumerate(wf.edges):
        for end in ("source", "target"):
            if getattr(edge, end) not in ids:
                out.setdefault(f"edges[{i}].{end}", []).append(
                    f"Edge {edge.id!r} points to unknown node {getattr(edge, end)!r}."
                )
        if edge.source == edge.target:
            out.setdefault(f"edges[{i}]", []).append(
                f"Edge {edge.id!r} connects node {edge.source!r} to itself."
            )


def _check_nodes(wf: WorkflowDef, resolve: Resolver, known: list[str], out: Problems) -> dict[str, str]:
    targets = {e.target for e in wf.edges}
    sources = {e.source for e in wf.edges}
    categories: dict[str, str] = {}
    for i, node in enumerate(wf.nodes):
        found = resolve(node.node_type, node.declared_type, node.id in targets, node.id in sources)
        if found is None:
            out[f"nodes[{i}].nodeType"] = [
                f"Node {node.id!r}: unknown nodeType {node.node_type!r}. Known types: {', '.join(known)}."
            ]
            continue
        categories[node.id] = found.category
        for key, problems in found.validate(node.config).items():
            out[f"nodes[{i}].config.{key}"] = [f"Node {node.id!r} ({node.node_type}): {p}" for p in problems]
    return categories


def _check_shape(wf: WorkflowDef, categories: dict[str, str], out: Problems) -> None:
    if "source" not in categories.values():
        out["nodes"] = ["A workflow needs at least one source node."]
    if "sink" not in categories.values():
        out.setdefault("nodes", []).append("A workflow needs at least one sink node.")
    for i, node in enumerate(wf.nodes):
        _check_placement(i, node, categories[node.id], wf, out)
    cycle = find_cycle(wf)
    if cycle:
        out["edges"] = [f"The graph has a cycle: {' -> '.join(cycle)}."]


def _check_placement(i: int, node: NodeDef, category: str, wf: WorkflowDef, out: Problems) -> None:
    has_in = any(e.target == node.id for e in wf.edges)
    has_out = any(e.source == node.id for e in wf.edges)
    if category == "source" and has_in:
        out[f"nodes[{i}]"] = [f"Source node {node.id!r} cannot have incoming edges."]
    elif category != "source" and not has_in:
        out[f"nodes[{i}]"] = [f"{category.capitalize()} node {node.id!r} has no incoming edge."]
    elif category == "sink" and has_out:
        out[f"nodes[{i}]"] = [f"Sink node {node.id!r} cannot have outgoing edges."]


def find_cycle(wf: WorkflowDef) -> list[str]:
    """One cycle as a list of node ids (first node repeated at the end), or ``[]``."""
    children: dict[str, list[str]] = {n.id: [] for n in wf.nodes}
    for e in wf.edges:
        children.setdefault(e.source, []).append(e.target)
    color: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        color[node] = 1
        stack.append(node)
        for child in children.get(node, []):
            if color.get(child) == 1:
                return [*stack[stack.index(child) :], child]
            if color.get(child) is None and (found := visit(child)):
                return found
        stack.pop()
        color[node] = 2
        return []

    for n in wf.nodes:
        if color.get(n.id) is None and (found := visit(n.id)):
            return found
    return []


def compile_graph(wf: WorkflowDef, resolve: Resolver, default_node_timeout_ms: int | None = None) -> Graph:
    """The graph of a definition that passed ``check``. Nodes without a timeout of their own get
    ``default_node_timeout_ms``, so a hung attempt always ends (invariant 4)."""
    ups: dict[str, list[str]] = {n.id: [] for n in wf.nodes}
    downs: dict[str, list[str]] = {n.id: [] for n in wf.nodes}
    for e in wf.edges:
        ups[e.target].append(e.source)
        downs[e.source].append(e.target)
    nodes = {}
    for n in wf.nodes:
        found = resolve(n.node_type, n.declared_type, bool(ups[n.id]), bool(downs[n.id]))
        assert found is not None, f"compile_graph on an unchecked definition ({n.node_type})"
        retry = parse_retry(n.retry_raw, "retry", {}, default=wf.policies.retry)
        nodes[n.id] = GraphNode(
            n.id,
            n.node_type,
            found.category,
            found.inline,
            tuple(ups[n.id]),
            tuple(downs[n.id]),
            found.behavior,
            retry,
            n.timeout_ms or default_node_timeout_ms,
            found.wait_spec(n.config),
        )
    return Graph(wf.id, wf.name, _topological_order(wf, ups), nodes, wf.policies)


def _topological_order(wf: WorkflowDef, ups: dict[str, list[str]]) -> tuple[str, ...]:
    done: list[str] = []
    placed: set[str] = set()
    pending = [n.id for n in wf.nodes]
    while pending:
        ready = [n for n in pending if all(u in placed for u in ups[n])]
        done.extend(ready)
        placed.update(ready)
        pending = [n for n in pending if n not in placed]
    return tuple(done)
