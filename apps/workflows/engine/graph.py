"""A workflow's DAG: semantic validation and the compiled graph the engine decides on.

Pure: the node catalogue is passed in as a ``resolve`` function, so tests can give their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

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

    @cached_property
    def position(self) -> Mapping[str, int]:
        """Each node's index in ``order``: ``decide`` starts ready nodes lowest position first."""
        return {node_id: i for i, node_id in enumerate(self.order)}

    @cached_property
    def signal_waiters(self) -> tuple[str, ...]:
        """The nodes that wait for a signal or an approval, in ``order``."""
        return tuple(n for n in self.order if (w := self.nodes[n].wait) is not None and w.signal is not None)


def check(wf: WorkflowDef, resolve: Resolver, known_types: list[str]) -> Problems:
    """Every semantic problem of a parsed definition, keyed by the offending field.

    Linear in nodes + edges, and iterative: a definition of ``dsl.MAX_NODES`` nodes, chained or fanned out,
    is checked in a fraction of a second and never hits Python's recursion limit."""
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


def _ends(wf: WorkflowDef) -> tuple[set[str], set[str]]:
    """The ids of nodes with an incoming edge, and of nodes with an outgoing edge."""
    return {e.target for e in wf.edges}, {e.source for e in wf.edges}


def _check_nodes(wf: WorkflowDef, resolve: Resolver, known: list[str], out: Problems) -> dict[str, str]:
    targets, sources = _ends(wf)
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
    targets, sources = _ends(wf)
    for i, node in enumerate(wf.nodes):
        _check_placement(i, node, categories[node.id], node.id in targets, node.id in sources, out)
    cycle = find_cycle(wf)
    if cycle:
        out["edges"] = [f"The graph has a cycle: {' -> '.join(cycle)}."]


def _check_placement(
    i: int, node: NodeDef, category: str, has_in: bool, has_out: bool, out: Problems
) -> None:
    if category == "source" and has_in:
        out[f"nodes[{i}]"] = [f"Source node {node.id!r} cannot have incoming edges."]
    elif category != "source" and not has_in:
        out[f"nodes[{i}]"] = [f"{category.capitalize()} node {node.id!r} has no incoming edge."]
    elif category == "sink" and has_out:
        out[f"nodes[{i}]"] = [f"Sink node {node.id!r} cannot have outgoing edges."]


def find_cycle(wf: WorkflowDef) -> list[str]:
    """One cycle as a list of node ids (first node repeated at the end), or ``[]``.

    A depth-first search in declaration and edge order, with an explicit stack rather than recursion, so a
    chain of thousands of nodes cannot exhaust Python's stack."""
    children: dict[str, list[str]] = {n.id: [] for n in wf.nodes}
    for e in wf.edges:
        children.setdefault(e.source, []).append(e.target)
    done: set[str] = set()
    for root in wf.nodes:
        if root.id not in done and (found := _cycle_from(root.id, children, done)):
            return found
    return []


def _cycle_from(root: str, children: Mapping[str, list[str]], done: set[str]) -> list[str]:
    path, on_path = [root], {root: 0}  # on_path: node -> its index in path
    pending = [iter(children.get(root, ()))]
    while pending:
        child = next(pending[-1], None)
        if child is None:  # every child of path[-1] explored
            finished = path.pop()
            del on_path[finished]
            done.add(finished)
            pending.pop()
        elif child in on_path:
            return [*path[on_path[child] :], child]
        elif child not in done:
            on_path[child] = len(path)
            path.append(child)
            pending.append(iter(children.get(child, ())))
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
    """Nodes by depth (the longest path from a source), then in declaration order: the order of rounds
    that each place every node whose upstream nodes were all placed in earlier rounds. Kahn's algorithm,
    linear in nodes + edges; the final sort is n log n."""
    index = {n.id: i for i, n in enumerate(wf.nodes)}
    waiting = {node_id: len(u) for node_id, u in ups.items()}
    downs: dict[str, list[str]] = {node_id: [] for node_id in ups}
    for node_id, u in ups.items():
        for up in u:
            downs[up].append(node_id)
    depth = dict.fromkeys(ups, 0)
    ready = [node_id for node_id, count in waiting.items() if count == 0]
    while ready:
        node_id = ready.pop()
        for down in downs[node_id]:
            depth[down] = max(depth[down], depth[node_id] + 1)
            waiting[down] -= 1
            if waiting[down] == 0:
                ready.append(down)
    placed = [node_id for node_id, count in waiting.items() if count == 0]  # a cycle is never placed
    return tuple(sorted(placed, key=lambda node_id: (depth[node_id], index[node_id])))
