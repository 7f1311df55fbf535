"""Durable Celery canvases: a ``chain``, ``group`` or ``chord`` of existing tasks as a workflow definition.

Each task signature becomes a ``celery.task`` node; the edges follow the canvas, so a worker dying in the
middle loses nothing: the execution's journal knows which tasks finished, and the rest are sent again (or
retried by the node's policy). Results flow as in Celery:

- in a chain, a task gets the previous step's return value as its first argument (``recordsAs: "value"``),
  unless its signature is immutable (``.si()``, ``recordsAs: "none"``);
- after a group (or a chord's header), the next task gets the list of the members' results, in order
  (``recordsAs: "arg"``: the members' single records concatenated in edge order);
- every task's return value is kept as it is, as one record (``resultAs: "value"``), so ``None``, a list
  or a dict reach the next task unchanged.

Anything that does not map (``link``, ``link_error``, ``eta``, ``chunks``, ``map``, ``starmap``, a frozen
signature, options other than ``queue`` and ``countdown``) raises ``CanvasNotSupported`` naming the part.
``client.start_canvas`` stores the definition and starts it in one call; docs/sdk.md has the mapping table.

This module only translates: it imports Celery's canvas classes but no Django, and writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from celery.canvas import Signature, _chain, chord, chunks, group, xmap, xstarmap

__all__ = ["INPUT_NODE", "CanvasNotSupported", "result_of", "to_definition"]

INPUT_NODE = "input"
# Options of a task signature that map: the queue it is sent to, and a countdown (a durable ``delay``
# node before it: a timer row, never a Celery ETA that a dying worker would take with it).
MAPPED_OPTIONS = frozenset({"queue", "countdown"})
METADATA_KEY = "celeryCanvas"


class CanvasNotSupported(ValueError):
    """A part of the canvas that has no durable equivalent; the message names it."""


@dataclass(frozen=True)
class _Exit:
    """Where a canvas part ends: the nodes whose results the next step gets, and in which form."""

    nodes: tuple[str, ...]
    many: bool  # a list of results (after a group), else one value (after a task)
    start: bool = False  # nothing before it: the next task gets no parent result


@dataclass
class _Builder:
    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: list[tuple[str, str]] = field(default_factory=list)

    def add(self, sig: Any, parents: _Exit) -> _Exit:
        if isinstance(sig, dict):  # a canvas read back from JSON holds its parts as dicts
            sig = Signature.from_dict(sig)
        if isinstance(sig, (chunks, xmap, xstarmap)):
            raise CanvasNotSupported(f"{type(sig).__name__} ({sig!r}) does not map; use a group of tasks.")
        if isinstance(sig, chord):
            return self._chord(sig, parents)
        if isinstance(sig, group):
            return self._group(sig, parents)
        if isinstance(sig, _chain):
            return self._chain(sig, parents)
        if isinstance(sig, Signature):
            return self._task(sig, parents)
        raise CanvasNotSupported(f"{sig!r} is not a Celery signature, chain, group or chord.")

    def _chain(self, sig: _chain, parents: _Exit) -> _Exit:
        _no_options(sig, "chain")
        if not sig.tasks:
            raise CanvasNotSupported("An empty chain does not map.")
        for part in sig.tasks:
            parents = self.add(part, parents)
        return parents

    def _group(self, sig: group, parents: _Exit) -> _Exit:
        _no_options(sig, "group")
        return self._members(list(sig.tasks), parents, "group")

    def _members(self, members: Sequence[Any], parents: _Exit, what: str) -> _Exit:
        if not members:
            raise CanvasNotSupported(f"An empty {what} does not map.")
        ends: list[str] = []
        for member in members:
            end = self.add(member, parents)
            if end.many:
                raise CanvasNotSupported(
                    f"A {what} member that ends in a group ({member!r}) does not map: its result would be "
                    "a nested list. Flatten the group."
                )
            ends.extend(end.nodes)
        return _Exit(tuple(ends), many=True)

    def _chord(self, sig: chord, parents: _Exit) -> _Exit:
        _no_options(sig, "chord")
        if sig.kwargs.get("kwargs"):
            raise CanvasNotSupported(f"Chord keyword arguments ({sig.kwargs['kwargs']!r}) do not map.")
        if sig.body is None:
            raise CanvasNotSupported(f"A chord without a body ({sig!r}) does not map.")
        header = sig.tasks.tasks if isinstance(sig.tasks, group) else sig.tasks
        return self.add(sig.body, self._members(list(header), parents, "chord header"))

    def _task(self, sig: Signature, parents: _Exit) -> _Exit:
        name = str(sig.task)
        if name.startswith("celery."):
            raise CanvasNotSupported(f"Celery's built-in task {name!r} ({sig!r}) does not map.")
        options = _task_options(sig)
        if "countdown" in options:
            parents = self._countdown(sig, options["countdown"], parents)
        config: dict[str, Any] = {
            "task": name,
            "args": _json(list(sig.args), sig, "args"),
            "kwargs": _json(dict(sig.kwargs), sig, "kwargs"),
            "recordsAs": _records_as(sig, parents),
            "resultAs": "value",
        }
        if options.get("queue"):
            config["queue"] = str(options["queue"])
        return _Exit((self._node("celery.task", _short(name), config, parents),), many=False)

    def _countdown(self, sig: Signature, countdown: Any, parents: _Exit) -> _Exit:
        valid = isinstance(countdown, (int, float)) and not isinstance(countdown, bool)
        if not valid or not math.isfinite(countdown) or not countdown > 0:
            raise CanvasNotSupported(f"countdown of {sig!r} must be a positive number of seconds.")
        delay = self._node("delay", "countdown", {"duration": f"{int(countdown * 1000)}ms"}, parents)
        return _Exit((delay,), parents.many, parents.start)

    def _node(self, node_type: str, label: str, config: dict[str, Any], parents: _Exit) -> str:
        node_id = f"{len(self.nodes):03d}-{label}"
        self.nodes.append(
            {"id": node_id, "type": "transform", "nodeType": node_type, "label": label, "config": config}
        )
        self.edges.extend((parent, node_id) for parent in parents.nodes)
        return node_id


def _no_options(sig: Signature, what: str) -> None:
    if sig.options:
        raise CanvasNotSupported(
            f"Options of a {what} ({', '.join(sorted(sig.options))}) do not map; set them on its tasks."
        )


def _task_options(sig: Signature) -> Mapping[str, Any]:
    unsupported = sorted(set(sig.options) - MAPPED_OPTIONS)
    if unsupported:
        raise CanvasNotSupported(
            f"Option(s) {', '.join(unsupported)} of {sig!r} do not map (supported: "
            f"{', '.join(sorted(MAPPED_OPTIONS))}); see docs/sdk.md."
        )
    return sig.options


def _records_as(sig: Signature, parents: _Exit) -> str:
    if parents.start or sig.immutable:
        return "none"
    return "arg" if parents.many else "value"


def _json(value: Any, sig: Signature, what: str) -> Any:
    """The value, if JSON can carry it unchanged (a definition and a Celery message are JSON)."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise CanvasNotSupported(f"The {what} of {sig!r} are not JSON: {exc}.") from None
    if json.loads(text) != value:  # tuples, non-string keys: Celery would not pass them as given either
        raise CanvasNotSupported(f"The {what} of {sig!r} do not survive JSON unchanged (tuples, keys).")
    return value


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def _short(task_name: str) -> str:
    return _UNSAFE.sub("-", task_name.rsplit(".", 1)[-1])[:60] or "task"


def to_definition(
    canvas: Any,
    *,
    workflow_id: str | None = None,
    retry: Mapping[str, Any] | None = None,
    node_timeout: str | float | None = None,
) -> dict[str, Any]:
    """The workflow definition of ``canvas``: an ``execution.input`` source, a node per task (and per
    countdown), edges as the canvas says; the last task(s) are sinks.

    ``retry`` is the retry policy of every node (the DSL's ``retry`` object), ``node_timeout`` each task's
    attempt timeout. Without ``workflow_id``, the id is ``canvas-`` and a hash of the definition, so the same
    canvas (tasks, arguments, options) reuses one workflow. Raises ``CanvasNotSupported``.
    """
    builder = _Builder()
    end = builder.add(canvas, _Exit((INPUT_NODE,), many=False, start=True))
    for node in builder.nodes:
        if node["id"] in end.nodes:
            node["type"] = "sink"
        if node_timeout is not None and node["nodeType"] == "celery.task":
            node["timeout"] = node_timeout
    body: dict[str, Any] = {
        "nodes": [
            {"id": INPUT_NODE, "type": "source", "nodeType": "execution.input", "config": {}},
            *builder.nodes,
        ],
        "edges": [{"id": f"e{i}", "source": s, "target": t} for i, (s, t) in enumerate(builder.edges)],
        "metadata": {METADATA_KEY: {"result": list(end.nodes), "many": end.many}},
    }
    if retry is not None:
        body["settings"] = {"retry": dict(retry)}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]
    name = f"Celery canvas {canvas!r}"
    return {"id": workflow_id or f"canvas-{digest}", "name": name[:200], **body}


def result_of(definition: Mapping[str, Any], outputs: Mapping[str, Sequence[Any]]) -> Any:
    """What Celery would give as the canvas's result, from the node outputs of a completed execution of
    ``definition``: the last task's return value, or the list of the last group's."""
    meta = (definition.get("metadata") or {}).get(METADATA_KEY)
    if not isinstance(meta, dict):
        raise ValueError(f"Workflow {definition.get('id')!r} was not made from a Celery canvas.")
    values = [_single(outputs, node) for node in meta["result"]]
    return values if meta["many"] else values[0]


def _single(outputs: Mapping[str, Sequence[Any]], node: str) -> Any:
    records = outputs.get(node)
    if records is None or len(records) != 1:
        raise ValueError(f"Node {node!r} has no result (has the execution completed?).")
    return records[0]
