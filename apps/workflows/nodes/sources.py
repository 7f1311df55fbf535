"""Source implementations: files read, records generated (descriptions: ``engine/nodetypes/sources.py``)."""

from __future__ import annotations

import copy
import csv
import hashlib
import math
import random
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TextIO

from apps.workflows.engine.nodetypes import sources
from apps.workflows.nodes.base import NodeContext, NodeError, NodeImplementation, NodeResult, implements
from apps.workflows.nodes.files import checked_path, decode_error, io_error


@implements(sources.MemoryCollection)
class MemoryCollection(NodeImplementation):
    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        data = self.with_defaults(ctx.config)["data"]
        # A copy, so that no downstream consumer can alter the workflow definition's config through a record.
        records = copy.deepcopy(data) if isinstance(data, list) else [data]
        return NodeResult(records=records, records_processed=len(records))


@implements(sources.SequenceNumbers)
class SequenceNumbers(NodeImplementation):
    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        config = self.with_defaults(ctx.config)
        step = config["step"]
        records = list(range(config["start"], config["end"] + (1 if step > 0 else -1), step))
        return NodeResult(records=records, records_processed=len(records))


@implements(sources.RandomNumbers)
class RandomNumbers(NodeImplementation):
    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        config = self.with_defaults(ctx.config)
        seed = config.get("seed")
        rng = random.Random(seed if seed is not None else _stable_seed(ctx.idempotency_key))
        low, high = math.ceil(float(config["min"])), math.floor(float(config["max"]))
        records = [rng.randint(low, high) for _ in range(config["count"])]
        return NodeResult(records=records, records_processed=len(records))


def _stable_seed(key: str) -> int:
    # hash() is salted per process; a re-run on another worker must draw the same numbers.
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


@implements(sources.CsvFile)
class CsvFile(NodeImplementation):
    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        config = self.with_defaults(ctx.config)
        path = checked_path(config["path"])
        try:
            with path.open(encoding=config["encoding"], newline="") as handle:
                records = _read_csv(handle, config)
        except OSError as exc:
            raise io_error(self.type_name, path, exc) from exc
        except UnicodeDecodeError as exc:
            raise decode_error(self.type_name, path, exc) from exc
        ctx.log(f"read {len(records)} rows from {path}")
        return NodeResult(records=records, records_processed=len(records))


def _read_csv(handle: TextIO, config: Mapping[str, Any]) -> list[Any]:
    # strict: an unterminated quote or text after a closing quote is an error naming the line, rather than
    # a silently merged field.
    reader = csv.reader(handle, delimiter=config["delimiter"], quotechar=config["quotechar"], strict=True)
    rows = _numbered_rows(reader, skip_empty=config["skipEmptyLines"])
    convert: Callable[[str], Any] = infer_type if config["inferTypes"] else str
    if config["header"]:
        return _objects(rows, convert)
    return [[convert(field) for field in row] for _, row in rows]


def _numbered_rows(reader: Any, *, skip_empty: bool) -> Iterator[tuple[int, list[str]]]:
    """Rows with the line each starts on (a quoted field may span several lines)."""
    start = 1
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if row or not skip_empty:
                yield line, row
    except csv.Error as exc:
        raise NodeError(f"file.csv: line {start}: {exc}") from exc


def _objects(rows: Iterable[tuple[int, list[str]]], convert: Callable[[str], Any]) -> list[dict[str, Any]]:
    header: list[str] | None = None
    records: list[dict[str, Any]] = []
    for line, row in rows:
        if header is None:
            header = _header(line, row)
            continue
        if not row:  # an empty line the config keeps: a row of empty fields
            row = [""] * len(header)
        if len(row) != len(header):
            raise NodeError(
                f"file.csv: line {line}: expected {len(header)} fields as in the header, got {len(row)}"
            )
        records.append({name: convert(field) for name, field in zip(header, row, strict=True)})
    return records


def _header(line: int, row: list[str]) -> list[str]:
    if not row:
        raise NodeError(f"file.csv: line {line}: the header row is empty")
    duplicates = sorted({name for name in row if row.count(name) > 1})
    if duplicates:
        raise NodeError(f"file.csv: line {line}: the header repeats {', '.join(map(repr, duplicates))}")
    return row


_INTEGER_RE = re.compile(r"-?(?:0|[1-9]\d*)")
_DECIMAL_RE = re.compile(r"-?(?:0|[1-9]\d*)\.\d+")


def infer_type(text: str) -> Any:
    """``"42"`` -> 42, ``"4.5"`` -> 4.5; anything else (``"007"``, ``" 1"``, ``"1e5"``, ``"nan"``) stays text.

    Leading zeros stay text because they are identifiers (ZIP codes, account numbers), not quantities.
    """
    if _INTEGER_RE.fullmatch(text):
        return int(text)
    if _DECIMAL_RE.fullmatch(text):
        return float(text)
    return text


@implements(sources.TextFile)
class TextFile(NodeImplementation):
    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        config = self.with_defaults(ctx.config)
        path = checked_path(config["path"])
        try:
            with path.open(encoding=config["encoding"]) as handle:  # universal newlines: \r\n and \r too
                lines = [line.removesuffix("\n") for line in handle]
        except OSError as exc:
            raise io_error(self.type_name, path, exc) from exc
        except UnicodeDecodeError as exc:
            raise decode_error(self.type_name, path, exc) from exc
        if config["skipEmptyLines"]:
            lines = [line for line in lines if line]
        ctx.log(f"read {len(lines)} lines from {path}")
        return NodeResult(records=lines, records_processed=len(lines))
