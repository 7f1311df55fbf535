"""Define a workflow in Python and get the JSON DSL the API takes (docs/sdk.md, "The builder").

    wf = Workflow("orders", name="Orders", tags=["etl"])
    nums = wf.source("sequence.numbers", id="nums", start=1, end=5)
    big = wf.transform("filter", id="big", condition="value > 2")
    log = wf.sink("console.log", id="log")
    nums >> big >> log                    # edges; also wf.connect(nums, big)
    wf.to_dict()                          # the DSL, for POST /api/v1/workflows or `wfe workflows apply -f`
    wf.validate()                         # {} or {field path: [problems]}, offline, as the API's 400 details

A node's keyword arguments are its ``config``; a config key that is also a node option (``id``, ``label``,
``position``, ``retry``, ``timeout``, ``config``), such as ``http.request``'s own ``timeout``, goes in
``config={...}``. Mistakes that the builder can see alone (a duplicate or malformed node id, an edge to a
node of another workflow or to an unknown id, the same edge twice) raise ``ValueError`` at once, naming the
problem; the rest (node types, their config, the graph's shape, policies) is the engine's validation, which
``validate`` runs without a server.

Pure: it imports the standard library and the pure engine (``apps.workflows.engine``) only, so it loads
without Django.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from apps.workflows.engine import dsl, policies
from apps.workflows.engine.sandbox import Sandbox
from wfe import validate as offline

Problems = dict[str, list[str]]

NODE_OPTIONS = ("id", "label", "position", "retry", "timeout", "config")
# the automatic layout: one column per depth (the longest path from a source), one row per node in it
COLUMN_WIDTH = 250
ROW_HEIGHT = 120


def _compact(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


@dataclass(frozen=True)
class Retry:
    """A node's ``retry`` (or the workflow's default one): the DSL's fields, in Python's spelling.

    Durations are the DSL's: ``"500ms"``, ``"30s"``, ``"5m"``, ``"1h"`` or a number of seconds."""

    max_attempts: int | None = None
    backoff: str | None = None  # fixed, linear or exponential
    initial_interval: str | float | None = None
    max_interval: str | float | None = None
    multiplier: float | None = None
    jitter: float | None = None  # 0 to 1
    retry_on: str | None = None  # retryable (the default) or all

    def to_dict(self) -> dict[str, Any]:
        return _compact(
            {
                "maxAttempts": self.max_attempts,
                "backoff": self.backoff,
                "initialInterval": self.initial_interval,
                "maxInterval": self.max_interval,
                "multiplier": self.multiplier,
                "jitter": self.jitter,
                "retryOn": self.retry_on,
            }
        )


@dataclass(frozen=True)
class Concurrency:
    """The workflow's ``settings.concurrency``: at most ``max`` running executions; what happens to one more
    is ``policy`` (queue, skip, reject; allow: no limit)."""

    max: int | None = None
    policy: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return _compact({"max": self.max, "policy": self.policy})


@dataclass(frozen=True)
class Schedule:
    """The workflow's ``metadata.schedule`` (docs/scheduler.md): the server keeps a schedule in step with it.
    Checked by the server when the workflow is saved (a 400 naming ``metadata.schedule.<field>``)."""

    type: str  # fixed_rate, fixed_delay, cron or immediate
    interval: str | None = None  # "15m", for fixed_rate and fixed_delay
    cron: str | None = None  # "30 2 * * MON-FRI"
    timezone: str | None = None
    jitter: str | None = None
    catchup_policy: str | None = None
    catchup_window: str | None = None
    overlap_policy: str | None = None
    enabled: bool = True

    def to_dict(self) -> dict[str, Any]:
        return _compact(
            {
                "enabled": self.enabled,
                "scheduleType": self.type,
                "interval": self.interval,
                "cronExpression": self.cron,
                "timezone": self.timezone,
                "jitter": self.jitter,
                "catchupPolicy": self.catchup_policy,
                "catchupWindow": self.catchup_window,
                "overlapPolicy": self.overlap_policy,
            }
        )


def _policy(value: Retry | Concurrency | Schedule | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, (Retry, Concurrency, Schedule)):
        return value.to_dict()
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"Expected a Retry, Concurrency, Schedule or a dict, got {type(value).__name__}.")


def _check_policy(problems: Problems, what: str) -> None:
    if problems:
        listed = "; ".join(f"{path}: {' '.join(found)}" for path, found in problems.items())
        raise ValueError(f"Invalid {what}: {listed}")


def _check_id(value: Any, what: str) -> str:
    """The DSL's rule for ids (``engine/dsl.py``): a non-blank string of at most 200 characters, without '/'
    or control characters, since ids appear in URLs."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-blank string, got {value!r}.")
    if len(value) > dsl.MAX_ID_LENGTH:
        raise ValueError(f"{what} must be at most {dsl.MAX_ID_LENGTH} characters (got {len(value)}).")
    if "/" in value or any(ord(c) < 32 for c in value):
        raise ValueError(f"{what} {value!r} may not contain '/' or control characters.")
    return value


class Node:
    """One node of a ``Workflow``; made by ``Workflow.source``, ``transform``, ``sink`` or ``node``.

    ``a >> b`` adds the edge a -> b and returns ``b``, so that chains read left to right; ``a >> [b, c]``
    fans out (returns the list), ``[b, c] >> d`` fans in (returns ``d``)."""

    def __init__(
        self,
        workflow: Workflow,
        node_id: str,
        node_type: str,
        kind: str | None,
        *,
        label: str | None,
        position: tuple[float, float] | Mapping[str, float] | None,
        retry: Retry | Mapping[str, Any] | None,
        timeout: str | float | None,
        config: Mapping[str, Any],
    ) -> None:
        self.workflow, self.id, self.node_type, self.kind = workflow, node_id, node_type, kind
        self.label, self.config = label, dict(config)
        self.position = _position(position, node_id)
        self.retry = _policy(retry)
        self.timeout = timeout
        problems: Problems = {}
        policies.parse_retry(self.retry, f"node {node_id!r} retry", problems)
        policies.parse_timeout(timeout, f"node {node_id!r} timeout", problems)
        _check_policy(problems, f"options of node {node_id!r}")

    def __repr__(self) -> str:
        return f"<Node {self.id!r} ({self.node_type}) of workflow {self.workflow.id!r}>"

    def __rshift__(self, other: Node | Sequence[Node]) -> Any:
        if isinstance(other, Node):
            self.workflow.connect(self, other)
            return other
        if isinstance(other, (list, tuple)):
            for target in other:
                self.workflow.connect(self, target)
            return other
        return NotImplemented

    def __rrshift__(self, other: Sequence[Node]) -> Node:
        if isinstance(other, (list, tuple)):
            for source in other:
                self.workflow.connect(source, self)
            return self
        return NotImplemented

    def to_dict(self, position: Mapping[str, float] | None = None) -> dict[str, Any]:
        """The DSL node; ``position`` is used when the node has none of its own."""
        return _compact(
            {
                "id": self.id,
                "type": self.kind,
                "nodeType": self.node_type,
                "label": self.label,
                "position": self.position or position or {"x": 0, "y": 0},
                "config": self.config,
                "retry": self.retry,
                "timeout": self.timeout,
            }
        )


def _position(
    value: tuple[float, float] | Mapping[str, float] | None, node_id: str
) -> dict[str, float] | None:
    if value is None:
        return None
    pair: Any = (value.get("x"), value.get("y")) if isinstance(value, Mapping) else value
    try:
        x, y = pair
    except (TypeError, ValueError):
        raise ValueError(f"position of node {node_id!r} must be (x, y) or {{'x': .., 'y': ..}}.") from None
    if not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in (x, y)):
        raise ValueError(f"position of node {node_id!r} must hold two numbers, got {value!r}.")
    return {"x": x, "y": y}


@dataclass(frozen=True)
class Edge:
    id: str
    source: str
    target: str
    label: str | None = None
    source_handle: str | None = None
    target_handle: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return _compact(
            {
                "id": self.id,
                "source": self.source,
                "target": self.target,
                "label": self.label,
                "sourceHandle": self.source_handle,
                "targetHandle": self.target_handle,
            }
        )


class Workflow:
    """A workflow definition being built; ``to_dict`` gives the DSL (``POST /api/v1/workflows``).

    ``retry``, ``timeout`` and ``concurrency`` are the workflow's ``settings`` (the default retry of its
    nodes, its own timeout, its concurrency limit); ``schedule`` is its ``metadata.schedule``."""

    def __init__(
        self,
        id: str,
        name: str | None = None,
        *,
        description: str | None = None,
        version: str | None = None,
        author: str | None = None,
        tags: Iterable[str] | None = None,
        retry: Retry | Mapping[str, Any] | None = None,
        timeout: str | float | None = None,
        concurrency: Concurrency | Mapping[str, Any] | None = None,
        schedule: Schedule | Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.id = _check_id(id, "The workflow id")
        self.name = name if name is not None else id
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"The name of workflow {id!r} must be a non-blank string, got {name!r}.")
        self.description, self.version, self.author = description, version, author
        self.tags = list(tags) if tags is not None else None
        if isinstance(tags, str) or (
            self.tags is not None and not all(isinstance(t, str) for t in self.tags)
        ):
            raise ValueError(f"tags of workflow {id!r} must be a list of strings, got {tags!r}.")
        self.settings = _compact(
            {"retry": _policy(retry), "timeout": timeout, "concurrency": _policy(concurrency)}
        )
        problems: Problems = {}
        policies.parse_settings(self.settings, problems)
        _check_policy(problems, f"settings of workflow {id!r}")
        self.metadata = dict(metadata) if metadata is not None else None
        if schedule is not None:
            if self.metadata is not None and "schedule" in self.metadata:
                raise ValueError(f"Workflow {id!r}: give the schedule once, as schedule= or in metadata.")
            self.metadata = {**(self.metadata or {}), "schedule": _policy(schedule)}
        self._nodes: dict[str, Node] = {}
        self._edges: list[Edge] = []

    def __repr__(self) -> str:
        return f"<Workflow {self.id!r}: {len(self._nodes)} nodes, {len(self._edges)} edges>"

    # --- nodes ------------------------------------------------------------------------------------------

    @property
    def nodes(self) -> tuple[Node, ...]:
        return tuple(self._nodes.values())

    @property
    def edges(self) -> tuple[Edge, ...]:
        return tuple(self._edges)

    def __getitem__(self, node_id: str) -> Node:
        return self._node(node_id)

    def node(
        self,
        node_type: str,
        *,
        id: str | None = None,
        kind: str | None = None,
        label: str | None = None,
        position: tuple[float, float] | Mapping[str, float] | None = None,
        retry: Retry | Mapping[str, Any] | None = None,
        timeout: str | float | None = None,
        config: Mapping[str, Any] | None = None,
        **config_fields: Any,
    ) -> Node:
        """Add a node of ``node_type`` (a name of ``GET /api/v1/workflows/node-types``). ``kind`` is the DSL's
        ``type`` (source, transform, sink); without it the server infers it from the node's place."""
        if not isinstance(node_type, str) or not node_type.strip():
            raise ValueError(f"node_type must be a non-blank string, got {node_type!r}.")
        if kind is not None and kind not in dsl.NODE_KINDS:
            raise ValueError(f"kind must be one of {', '.join(dsl.NODE_KINDS)}, got {kind!r}.")
        node_id = _check_id(id, "A node id") if id is not None else self._free_id(node_type)
        if node_id in self._nodes:
            raise ValueError(f"Workflow {self.id!r} already has a node {node_id!r}.")
        both = sorted(set(config or {}) & set(config_fields))
        if both:
            raise ValueError(f"Node {node_id!r}: {', '.join(both)} given both in config= and as keywords.")
        made = Node(
            self,
            node_id,
            node_type,
            kind,
            label=label,
            position=position,
            retry=retry,
            timeout=timeout,
            config={**(config or {}), **config_fields},
        )
        self._nodes[node_id] = made
        return made

    def source(self, node_type: str, **options: Any) -> Node:
        """A node of kind ``source`` (no inputs): ``wf.source("file.csv", id="people", path="p.csv")``."""
        return self.node(node_type, kind="source", **options)

    def transform(self, node_type: str, **options: Any) -> Node:
        return self.node(node_type, kind="transform", **options)

    def sink(self, node_type: str, **options: Any) -> Node:
        return self.node(node_type, kind="sink", **options)

    def _free_id(self, node_type: str) -> str:
        base = _check_id(node_type, "A node type used as an id")
        if base not in self._nodes:
            return base
        n = 2
        while f"{base}-{n}" in self._nodes:
            n += 1
        return f"{base}-{n}"

    def _node(self, node: Node | str) -> Node:
        if isinstance(node, Node):
            if node.workflow is not self:
                raise ValueError(
                    f"Node {node.id!r} belongs to workflow {node.workflow.id!r}, not {self.id!r}: "
                    "an edge connects nodes of one workflow."
                )
            return node
        if isinstance(node, str) and node in self._nodes:
            return self._nodes[node]
        known = ", ".join(self._nodes) or "none yet"
        raise ValueError(f"Workflow {self.id!r} has no node {node!r} (its nodes: {known}).")

    # --- edges ------------------------------------------------------------------------------------------

    def connect(
        self,
        source: Node | str,
        target: Node | str,
        *,
        id: str | None = None,
        label: str | None = None,
        source_handle: str | None = None,
        target_handle: str | None = None,
    ) -> Edge:
        """Add the edge ``source`` -> ``target`` (nodes or node ids of this workflow); its id is ``e1``,
        ``e2``, ... unless given. Records flow along it; a node with several inputs gets them in edge
        order."""
        a, b = self._node(source), self._node(target)
        if a is b:
            raise ValueError(f"Node {a.id!r} cannot be connected to itself.")
        if any(e.source == a.id and e.target == b.id for e in self._edges):
            raise ValueError(f"Workflow {self.id!r} already has an edge {a.id!r} -> {b.id!r}.")
        edge_id = _check_id(id, "An edge id") if id is not None else self._free_edge_id()
        if any(e.id == edge_id for e in self._edges):
            raise ValueError(f"Workflow {self.id!r} already has an edge with id {edge_id!r}.")
        edge = Edge(edge_id, a.id, b.id, label, source_handle, target_handle)
        self._edges.append(edge)
        return edge

    def _free_edge_id(self) -> str:
        taken = {e.id for e in self._edges}
        n = len(self._edges) + 1
        while f"e{n}" in taken:
            n += 1
        return f"e{n}"

    # --- output -----------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The workflow in the JSON DSL (a new dict at every call; the fields that were not given are left
        out, and the server fills in its defaults)."""
        laid_out = layout(self.nodes, self._edges)
        body = _compact(
            {
                "id": self.id,
                "name": self.name,
                "description": self.description,
                "version": self.version,
                "author": self.author,
                "tags": list(self.tags) if self.tags is not None else None,
                "nodes": [node.to_dict(laid_out[node.id]) for node in self.nodes],
                "edges": [edge.to_dict() for edge in self._edges],
                "settings": dict(self.settings) or None,
                "metadata": self.metadata,
            }
        )
        return copy.deepcopy(body)  # the caller may change it: the workflow must not change with it

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def validate(self, sandbox: Sandbox | None = None) -> Problems:
        """The problems the API would answer in a 400's ``details`` ({} when there are none), keyed by the
        same field paths, found offline by the pure engine (``wfe.validate``, as ``wfe workflows validate``).

        The checks that read the server's configuration (the HTTP allow-list, file roots, Celery task names,
        database connections, Python callables) need its ``Sandbox``: given one, they count; without one,
        their problems are left out, since only the server can tell (``wfe.validate.validate`` lists them as
        ``server_checks``)."""
        result = offline.validate(self.to_dict(), sandbox)
        if sandbox is None:
            return result.problems
        merged = {path: list(found) for path, found in result.problems.items()}
        for path, found in result.server_checks.items():
            merged.setdefault(path, []).extend(found)
        return merged


def layout(nodes: Sequence[Node], edges: Sequence[Edge]) -> dict[str, dict[str, float]]:
    """A position for each node: column = its depth (the longest path from a node without inputs), row =
    its order among the nodes of that depth. Iterative (Kahn's order); nodes on a cycle, which validation
    refuses anyway, go in the column after the deepest other one."""
    inputs: dict[str, int] = {n.id: 0 for n in nodes}
    targets: dict[str, list[str]] = {n.id: [] for n in nodes}
    for edge in edges:
        inputs[edge.target] += 1
        targets[edge.source].append(edge.target)
    depth = {node_id: 0 for node_id in inputs}
    ready = [node_id for node_id, count in inputs.items() if count == 0]
    placed: set[str] = set()
    while ready:
        current = ready.pop()
        placed.add(current)
        for target in targets[current]:
            depth[target] = max(depth[target], depth[current] + 1)
            inputs[target] -= 1
            if inputs[target] == 0:
                ready.append(target)
    last = max((depth[n] for n in placed), default=-1) + 1
    rows: dict[int, int] = {}
    out: dict[str, dict[str, float]] = {}
    for node in nodes:
        column = depth[node.id] if node.id in placed else last
        row = rows.get(column, 0)
        rows[column] = row + 1
        out[node.id] = {"x": column * COLUMN_WIDTH, "y": row * ROW_HEIGHT}
    return out
