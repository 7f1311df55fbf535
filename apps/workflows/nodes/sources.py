"""Source nodes: they have no inputs and produce the records a workflow starts from."""

from __future__ import annotations

import copy
import csv
import hashlib
import math
import random
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TextIO

from apps.workflows.nodes.base import ConfigField, NodeContext, NodeError, NodeResult, NodeType, register
from apps.workflows.nodes.files import decode_error, encoding_problems, io_error, path_problems, resolve_path

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

    def check(self, config: Mapping[str, Any]) -> dict[str, list[str]]:
        if isinstance(config["data"], (list, str)):
            return {}
        return {"data": ["Must be an array or a string"]}

    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        data = self.with_defaults(ctx.config)["data"]
        # A copy, so that no downstream consumer can alter the workflow definition's config through a record.
        records = copy.deepcopy(data) if isinstance(data, list) else [data]
        return NodeResult(records=records, records_processed=len(records))


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

    def check(self, config: Mapping[str, Any]) -> dict[str, list[str]]:
        start, end, step = config["start"], config["end"], config["step"]
        if step == 0:
            return {"step": ["Must not be 0."]}
        if (end - start) * step < 0:
            direction = "positive" if end > start else "negative"
            return {"step": [f"Must be {direction} to count from {start} to {end}."]}
        if (end - start) // step + 1 > MAX_GENERATED:
            return {"end": [f"The sequence would have more than {MAX_GENERATED} numbers."]}
        return {}

    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        config = self.with_defaults(ctx.config)
        step = config["step"]
        records = list(range(config["start"], config["end"] + (1 if step > 0 else -1), step))
        return NodeResult(records=records, records_processed=len(records))


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

    def check(self, config: Mapping[str, Any]) -> dict[str, list[str]]:
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

    def check(self, config: Mapping[str, Any]) -> dict[str, list[str]]:
        problems = {**path_problems(config), **encoding_problems(config)}
        for key in ("delimiter", "quotechar"):
            if len(config[key]) != 1 or config[key] in "\r\n":
                problems[key] = ["Must be exactly one character, not a line break."]
        if config["delimiter"] == config["quotechar"]:
            problems["quotechar"] = ["Must differ from the delimiter."]
        return problems

    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        config = self.with_defaults(ctx.config)
        path = resolve_path(config["path"])
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

    def check(self, config: Mapping[str, Any]) -> dict[str, list[str]]:
        return {**path_problems(config), **encoding_problems(config)}

    def run(self, ctx: NodeContext, inputs: Sequence[Any]) -> NodeResult:
        config = self.with_defaults(ctx.config)
        path = resolve_path(config["path"])
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
