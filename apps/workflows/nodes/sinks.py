"""Sink nodes: they consume records and produce none (``aggregate.count`` produces its total)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from apps.workflows.nodes.base import ConfigField, NodeContext, NodeError, NodeResult, NodeType, register
from apps.workflows.nodes.expressions import to_text
from apps.workflows.nodes.files import (
    encoding_problems,
    io_error,
    path_problems,
    resolve_path,
    write_atomically,
)


@register
class ConsoleLog(NodeType):
    type_name = "console.log"
    category = "sink"
    display_name = "Console log"
    description = "Writes up to limit records to the execution log, strings as they are and others as JSON."
    icon = "terminal"
    inline = True
    fields = (ConfigField("limit", "integer", "Most records to show", default=100),)

    def check(self, config: Mapping[str, Any]) -> dict[str, list[str]]:
        return {} if config["limit"] >= 0 else {"limit": ["Must be at least 0."]}

    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        limit = self.with_defaults(ctx.config)["limit"]
        for record in inputs[:limit]:
            ctx.log(to_text(record))
        if len(inputs) > limit:
            ctx.log(f"... {len(inputs) - limit} more records not shown")
        return NodeResult(records=[], records_processed=len(inputs))


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

    def check(self, config: Mapping[str, Any]) -> dict[str, list[str]]:
        return {**path_problems(config, for_writing=True), **encoding_problems(config)}

    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        config = self.with_defaults(ctx.config)
        path = resolve_path(config["path"], for_writing=True)
        lines = (to_text(record) + "\n" for record in inputs)
        try:
            write_atomically(path, lines, encoding=config["encoding"], key=ctx.idempotency_key)
        except OSError as exc:
            raise io_error(self.type_name, path, exc) from exc
        except UnicodeEncodeError as exc:
            message = f"file.text: a record cannot be written as {config['encoding']}: {exc.reason}"
            raise NodeError(message, retryable=False) from exc
        ctx.log(f"wrote {len(inputs)} lines to {path}")
        return NodeResult(records=[], records_processed=len(inputs))


@register
class AggregateCount(NodeType):
    type_name = "aggregate.count"
    category = "sink"
    display_name = "Count"
    description = "Counts its input records and emits the total as its single record."
    icon = "hash"
    inline = True

    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        ctx.log(f"count: {len(inputs)}")
        return NodeResult(records=[len(inputs)], records_processed=len(inputs))
