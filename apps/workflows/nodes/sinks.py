"""Sink implementations: the log, a text file, a count (descriptions: ``engine/nodetypes/sinks.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from apps.workflows.engine.expressions import to_text
from apps.workflows.engine.nodetypes import sinks
from apps.workflows.nodes.base import NodeContext, NodeError, NodeImplementation, NodeResult, implements
from apps.workflows.nodes.files import checked_path, io_error, write_atomically


@implements(sinks.ConsoleLog)
class ConsoleLog(NodeImplementation):
    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        limit = self.with_defaults(ctx.config)["limit"]
        for record in inputs[:limit]:
            ctx.log(to_text(record))
        if len(inputs) > limit:
            ctx.log(f"... {len(inputs) - limit} more records not shown")
        return NodeResult(records=[], records_processed=len(inputs))


@implements(sinks.TextFileSink)
class TextFileSink(NodeImplementation):
    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        config = self.with_defaults(ctx.config)
        path = checked_path(config["path"], for_writing=True)
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


@implements(sinks.AggregateCount)
class AggregateCount(NodeImplementation):
    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        ctx.log(f"count: {len(inputs)}")
        return NodeResult(records=[len(inputs)], records_processed=len(inputs))
