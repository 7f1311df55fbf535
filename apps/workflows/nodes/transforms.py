"""Transform nodes: records in, records out, pure and cheap, so all of them may run inline.

Per-record failures name the record's index (0-based, in the node's input) and are not retryable: the same
records would fail the same way again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from apps.workflows.nodes.base import ConfigField, NodeContext, NodeError, NodeResult, NodeType, register
from apps.workflows.nodes.expressions import (
    EvaluationError,
    ExpressionError,
    describe,
    evaluate,
    is_true,
    parse,
    to_text,
)


def _expression_problems(key: str, text: str) -> dict[str, list[str]]:
    try:
        parse(text)
    except ExpressionError as exc:
        return {key: [str(exc)]}
    return {}


def _per_record(node: str, inputs: Sequence[Any], apply: Callable[[Any], Any]) -> list[Any]:
    """``apply`` to every record, turning an evaluation problem into a ``NodeError`` naming the record."""
    results = []
    for index, record in enumerate(inputs):
        try:
            results.append(apply(record))
        except EvaluationError as exc:
            raise NodeError(f"{node}: record {index}: {exc}", retryable=False) from exc
    return results


@register
class Filter(NodeType):
    type_name = "filter"
    category = "transform"
    display_name = "Filter"
    description = "Keeps the records for which the condition is true, e.g. age > 30 and city == 'Paris'."
    icon = "filter"
    inline = True
    fields = (ConfigField("condition", "string", "Condition", required=True),)

    def check(self, config: Mapping[str, Any]) -> dict[str, list[str]]:
        return _expression_problems("condition", config["condition"])

    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        condition = parse(self.with_defaults(ctx.config)["condition"])
        verdicts = _per_record(self.type_name, inputs, lambda record: is_true(evaluate(condition, record)))
        kept = [record for record, keep in zip(inputs, verdicts, strict=True) if keep]
        return NodeResult(records=kept, records_processed=len(inputs))


# The original product's map keywords. They are matched before parsing, so "trim" is the keyword, not a field.
_STRING_KEYWORDS: dict[str, Callable[[str], str]] = {
    "toUpperCase": str.upper,
    "toLowerCase": str.lower,
    "trim": str.strip,
}
_PREFIX = "prefix:"


def _is_keyword(expression: str) -> bool:
    return expression in _STRING_KEYWORDS or expression.startswith(_PREFIX)


@register
class Map(NodeType):
    type_name = "map"
    category = "transform"
    display_name = "Map"
    description = (
        "Replaces each record with the value of an expression, or sets object fields from expressions; "
        "also accepts the keywords toUpperCase, toLowerCase, trim and prefix:<text>."
    )
    icon = "wand"
    inline = True
    fields = (
        ConfigField("expression", "string", "Expression"),
        ConfigField("fields", "object", "Fields ({name: expression})"),
        ConfigField("keep", "boolean", "Keep the record's other fields", default=True),
    )

    def check(self, config: Mapping[str, Any]) -> dict[str, list[str]]:
        if ("expression" in config) == ("fields" in config):
            return {"expression": ["Give either expression or fields."]}
        if "fields" in config:
            return _fields_problems(config["fields"])
        if _is_keyword(config["expression"]):
            return {}
        return _expression_problems("expression", config["expression"])

    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        mapper = _mapper(self.with_defaults(ctx.config))
        return NodeResult(records=_per_record(self.type_name, inputs, mapper), records_processed=len(inputs))


def _fields_problems(fields: Mapping[str, Any]) -> dict[str, list[str]]:
    if not fields:
        return {"fields": ["Give at least one field."]}
    problems = []
    for key, text in fields.items():
        if not isinstance(text, str):
            problems.append(f"{key}: must be an expression in a string, got {describe(text)}.")
        elif found := _expression_problems(key, text):
            problems.append(f"{key}: {found[key][0]}")
    return {"fields": problems} if problems else {}


def _mapper(config: Mapping[str, Any]) -> Callable[[Any], Any]:
    if "fields" in config:
        return _fields_mapper(config["fields"], keep=config["keep"])
    expression: str = config["expression"]
    if expression in _STRING_KEYWORDS:
        return _string_keyword(expression, _STRING_KEYWORDS[expression])
    if expression.startswith(_PREFIX):
        prefix = expression.removeprefix(_PREFIX)
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


@register
class Distinct(NodeType):
    type_name = "distinct"
    category = "transform"
    display_name = "Distinct"
    description = "Drops records equal to an earlier one, or whose key expression gives an earlier value."
    icon = "copy-minus"
    inline = True
    fields = (ConfigField("key", "string", "Key expression (optional; default: the whole record)"),)

    def check(self, config: Mapping[str, Any]) -> dict[str, list[str]]:
        return _expression_problems("key", config["key"]) if "key" in config else {}

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


@register
class Batch(NodeType):
    type_name = "batch"
    category = "transform"
    display_name = "Batch"
    description = (
        "Groups consecutive records into arrays of up to batchSize records (the original regrouped and "
        "flattened again, leaving the records unchanged)."
    )
    icon = "layers"
    inline = True
    fields = (ConfigField("batchSize", "integer", "Batch size", required=True),)

    def check(self, config: Mapping[str, Any]) -> dict[str, list[str]]:
        return {} if config["batchSize"] >= 1 else {"batchSize": ["Must be at least 1."]}

    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        size = self.with_defaults(ctx.config)["batchSize"]
        batches = [list(inputs[i : i + size]) for i in range(0, len(inputs), size)]
        return NodeResult(records=batches, records_processed=len(inputs))
