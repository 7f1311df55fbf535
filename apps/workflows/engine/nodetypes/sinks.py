"""Sink descriptions: nodes that consume records and produce none (``aggregate.count`` produces its total)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apps.workflows.engine.dsl import Problems
from apps.workflows.engine.nodetypes.base import ConfigField, NodeType, register
from apps.workflows.engine.nodetypes.files import encoding_problems, path_problems
from apps.workflows.engine.sandbox import Sandbox


@register
class ConsoleLog(NodeType):
    type_name = "console.log"
    category = "sink"
    display_name = "Console log"
    description = "Writes up to limit records to the execution log, strings as they are and others as JSON."
    icon = "terminal"
    inline = True
    fields = (ConfigField("limit", "integer", "Most records to show", default=100),)

    def check(self, config: Mapping[str, Any], sandbox: Sandbox) -> Problems:
        return {} if config["limit"] >= 0 else {"limit": ["Must be at least 0."]}


@register
class TextFileSink(NodeType):
    type_name = "file.text"
    category = "sink"
    display_name = "Text file"
    description = (
        "Replaces a text file, atomically, with one line per record (strings as they are, others as JSON)."
    )
    icon = "file-text"
    fields = (
        ConfigField("path", "string", "File path", required=True),
        ConfigField("encoding", "string", "Encoding", default="utf-8"),
    )

    def check(self, config: Mapping[str, Any], sandbox: Sandbox) -> Problems:
        return {**path_problems(config, sandbox, for_writing=True), **encoding_problems(config)}


@register
class AggregateCount(NodeType):
    type_name = "aggregate.count"
    category = "sink"
    display_name = "Count"
    description = "Counts its input records and emits the total as its single record."
    icon = "hash"
    inline = True
