"""Transform descriptions: records in, records out, pure and cheap, so all of them may run inline.

Their conditions, expressions and keys are in the expression language (``engine/expressions.py``), parsed
here when a workflow is defined so that a mistake is a 400 naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apps.workflows.engine.dsl import Problems
from apps.workflows.engine.expressions import ExpressionError, describe, parse
from apps.workflows.engine.nodetypes.base import ConfigField, NodeType, register
from apps.workflows.engine.sandbox import Sandbox

# The original product's map keywords, and the str method each applies. They are matched before parsing, so
# "trim" is the keyword, not a field.
STRING_KEYWORDS: Mapping[str, str] = {"toUpperCase": "upper", "toLowerCase": "lower", "trim": "strip"}
PREFIX = "prefix:"


def is_keyword(expression: str) -> bool:
    return expression in STRING_KEYWORDS or expression.startswith(PREFIX)


def _expression_problems(key: str, text: str) -> Problems:
    try:
        parse(text)
    except ExpressionError as exc:
        return {key: [str(exc)]}
    return {}


@register
class Filter(NodeType):
    type_name = "filter"
    category = "transform"
    display_name = "Filter"
    description = "Keeps the records for which the condition is true, e.g. age > 30 and city == 'Paris'."
    icon = "filter"
    inline = True
    fields = (ConfigField("condition", "string", "Condition", required=True),)

    def check(self, config: Mapping[str, Any], sandbox: Sandbox) -> Problems:
        return _expression_problems("condition", config["condition"])


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

    def check(self, config: Mapping[str, Any], sandbox: Sandbox) -> Problems:
        if ("expression" in config) == ("fields" in config):
            return {"expression": ["Give either expression or fields."]}
        if "fields" in config:
            return _fields_problems(config["fields"])
        if is_keyword(config["expression"]):
            return {}
        return _expression_problems("expression", config["expression"])


def _fields_problems(fields: Mapping[str, Any]) -> Problems:
    if not fields:
        return {"fields": ["Give at least one field."]}
    problems = []
    for key, text in fields.items():
        if not isinstance(text, str):
            problems.append(f"{key}: must be an expression in a string, got {describe(text)}.")
        elif found := _expression_problems(key, text):
            problems.append(f"{key}: {found[key][0]}")
    return {"fields": problems} if problems else {}


@register
class Distinct(NodeType):
    type_name = "distinct"
    category = "transform"
    display_name = "Distinct"
    description = "Drops records equal to an earlier one, or whose key expression gives an earlier value."
    icon = "copy-minus"
    inline = True
    fields = (ConfigField("key", "string", "Key expression (optional; default: the whole record)"),)

    def check(self, config: Mapping[str, Any], sandbox: Sandbox) -> Problems:
        return _expression_problems("key", config["key"]) if "key" in config else {}


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

    def check(self, config: Mapping[str, Any], sandbox: Sandbox) -> Problems:
        return {} if config["batchSize"] >= 1 else {"batchSize": ["Must be at least 1."]}
