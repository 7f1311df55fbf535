"""Source descriptions: nodes without inputs, which produce the records a workflow starts from."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from apps.workflows.engine.dsl import Problems
from apps.workflows.engine.nodetypes.base import ConfigField, NodeType, register
from apps.workflows.engine.nodetypes.files import encoding_problems, path_problems
from apps.workflows.engine.sandbox import Sandbox

# Generated sources run inline (inside a transaction), so they are bounded; a million records is already a
# large payload to store as one node output.
MAX_GENERATED = 1_000_000


@register
class MemoryCollection(NodeType):
    type_name = "memory.collection"
    category = "source"
    display_name = "Memory collection"
    description = "Emits each element of a JSON array as one record, or a string as a single record."
    icon = "database"
    inline = True
    fields = (ConfigField("data", "any", "Data (array or string)", required=True),)

    def check(self, config: Mapping[str, Any], sandbox: Sandbox) -> Problems:
        if isinstance(config["data"], (list, str)):
            return {}
        return {"data": ["Must be an array or a string"]}


@register
class SequenceNumbers(NodeType):
    type_name = "sequence.numbers"
    category = "source"
    display_name = "Number sequence"
    description = "Emits the integers from start to end inclusive, counting by step."
    icon = "list-ordered"
    inline = True
    fields = (
        ConfigField("start", "integer", "Start", default=1),
        ConfigField("end", "integer", "End (inclusive)", default=100),
        ConfigField("step", "integer", "Step", default=1),
    )

    def check(self, config: Mapping[str, Any], sandbox: Sandbox) -> Problems:
        start, end, step = config["start"], config["end"], config["step"]
        if step == 0:
            return {"step": ["Must not be 0."]}
        if (end - start) * step < 0:
            direction = "positive" if end > start else "negative"
            return {"step": [f"Must be {direction} to count from {start} to {end}."]}
        if (end - start) // step + 1 > MAX_GENERATED:
            return {"end": [f"The sequence would have more than {MAX_GENERATED} numbers."]}
        return {}


@register
class RandomNumbers(NodeType):
    type_name = "random.numbers"
    category = "source"
    display_name = "Random numbers"
    description = (
        "Emits count uniformly random integers between min and max inclusive; the same seed, or else a "
        "re-run of the same attempt, gives the same numbers."
    )
    icon = "shuffle"
    inline = True
    fields = (
        ConfigField("count", "integer", "Count", default=100),
        ConfigField("min", "number_or_string", "Minimum", default=1),
        ConfigField("max", "number_or_string", "Maximum", default=100),
        ConfigField("seed", "integer", "Seed (optional)"),
    )

    def check(self, config: Mapping[str, Any], sandbox: Sandbox) -> Problems:
        if not 0 <= config["count"] <= MAX_GENERATED:
            return {"count": [f"Must be between 0 and {MAX_GENERATED}."]}
        low, high = float(config["min"]), float(config["max"])
        for key, bound in (("min", low), ("max", high)):
            if not math.isfinite(bound):
                return {key: ["Must be a finite number."]}
        if low > high:
            return {"min": [f"Must not be greater than max ({config['max']})."]}
        if math.ceil(low) > math.floor(high):
            return {"min": ["There is no integer between min and max."]}
        return {}


@register
class CsvFile(NodeType):
    type_name = "file.csv"
    category = "source"
    display_name = "CSV file"
    description = (
        "Reads a CSV file (quoted fields may hold delimiters and newlines) into one record per row: an "
        "object keyed by the header, or an array of fields."
    )
    icon = "file-spreadsheet"
    fields = (
        ConfigField("path", "string", "File path", required=True),
        ConfigField("delimiter", "string", "Delimiter", default=","),
        ConfigField("header", "boolean", "First row is a header", default=True),
        ConfigField("quotechar", "string", "Quote character", default='"'),
        ConfigField("inferTypes", "boolean", "Read numbers as numbers", default=True),
        ConfigField("skipEmptyLines", "boolean", "Skip empty lines", default=True),
        ConfigField("encoding", "string", "Encoding", default="utf-8"),
    )

    def check(self, config: Mapping[str, Any], sandbox: Sandbox) -> Problems:
        problems = {**path_problems(config, sandbox), **encoding_problems(config)}
        for key in ("delimiter", "quotechar"):
            if len(config[key]) != 1 or config[key] in "\r\n":
                problems[key] = ["Must be exactly one character, not a line break."]
        if config["delimiter"] == config["quotechar"]:
            problems["quotechar"] = ["Must differ from the delimiter."]
        return problems


@register
class TextFile(NodeType):
    type_name = "file.text"
    category = "source"
    display_name = "Text file"
    description = "Reads a text file into one string record per line, without the line break."
    icon = "file-text"
    fields = (
        ConfigField("path", "string", "File path", required=True),
        ConfigField("skipEmptyLines", "boolean", "Skip empty lines", default=False),
        ConfigField("encoding", "string", "Encoding", default="utf-8"),
    )

    def check(self, config: Mapping[str, Any], sandbox: Sandbox) -> Problems:
        return {**path_problems(config, sandbox), **encoding_problems(config)}
