"""Transform implementations: records in, records out (descriptions: ``engine/nodetypes/transforms.py``).

Per-record failures name the record's index (0-based, in the node's input) and are not retryable: the same
records would fail the same way again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from apps.workflows.engine.expressions import EvaluationError, describe, evaluate, is_true, parse, to_text
from apps.workflows.engine.nodetypes import transforms
from apps.workflows.engine.nodetypes.transforms import PREFIX, STRING_KEYWORDS
from apps.workflows.nodes.base import NodeContext, NodeError, NodeImplementation, NodeResult, implements


def _per_record(node: str, inputs: Sequence[Any], apply: Callable[[Any], Any]) -> list[Any]:
    """``apply`` to every record, turning an evaluation problem into a ``NodeError`` naming the record."""
    results = []
    for index, record in enumerate(inputs):
        try:
            results.append(apply(record))
        except EvaluationError as exc:
            raise NodeError(f"{node}: record {index}: {exc}", retryable=False) from exc
    return results


@implements(transforms.Filter)
class Filter(NodeImplementation):
    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        condition = parse(self.with_defaults(ctx.config)["condition"])
        verdicts = _per_record(self.type_name, inputs, lambda record: is_true(evaluate(condition, record)))
        kept = [record for record, keep in zip(inputs, verdicts, strict=True) if keep]
        return NodeResult(records=kept, records_processed=len(inputs))


@implements(transforms.Map)
class Map(NodeImplementation):
    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        mapper = _mapper(self.with_defaults(ctx.config))
        return NodeResult(records=_per_record(self.type_name, inputs, mapper), records_processed=len(inputs))


def _mapper(config: Mapping[str, Any]) -> Callable[[Any], Any]:
    if "fields" in config:
        return _fields_mapper(config["fields"], keep=config["keep"])
    expression: str = config["expression"]
    if expression in STRING_KEYWORDS:
        return _string_keyword(expression, getattr(str, STRING_KEYWORDS[expression]))
    if expression.startswith(PREFIX):
        prefix = expression.removeprefix(PREFIX)
        return lambda record: prefix + to_text(record)
    parsed = parse(expression)
    return lambda record: evaluate(parsed, record)


def _string_keyword(name: str, method: Callable[[str], str]) -> Callable[[Any], str]:
    def apply(record: Any) -> str:
        if not isinstance(record, str):
            raise EvaluationError(f"{name} needs a string record, got {describe(record)}")
        return method(record)

    return apply


def _fields_mapper(fields: Mapping[str, str], *, keep: bool) -> Callable[[Any], Any]:
    """Every expression sees the incoming record, so fields never depend on each other's new values."""
    parsed = {key: parse(text) for key, text in fields.items()}

    def apply(record: Any) -> dict[str, Any]:
        out = dict(record) if keep and isinstance(record, dict) else {}
        out.update({key: evaluate(expr, record) for key, expr in parsed.items()})
        return out

    return apply


@implements(transforms.Distinct)
class Distinct(NodeImplementation):
    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        key = self.with_defaults(ctx.config).get("key")
        parsed = parse(key) if key is not None else None
        identify = _canonical if parsed is None else lambda record: _canonical(evaluate(parsed, record))
        identities = _per_record(self.type_name, inputs, identify)
        seen: set[str] = set()
        kept = []
        for record, identity in zip(inputs, identities, strict=True):
            if identity not in seen:
                seen.add(identity)
                kept.append(record)
        return NodeResult(records=kept, records_processed=len(inputs))


def _canonical(value: Any) -> str:
    """Identity of a JSON value: objects compare equal whatever the order of their keys."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@implements(transforms.Batch)
class Batch(NodeImplementation):
    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        size = self.with_defaults(ctx.config)["batchSize"]
        batches = [list(inputs[i : i + size]) for i in range(0, len(inputs), size)]
        return NodeResult(records=batches, records_processed=len(inputs))
