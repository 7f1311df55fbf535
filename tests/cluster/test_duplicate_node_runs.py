"""Two runs of one node attempt at the same time, as a paused worker and the re-drive of its attempt make.

The paused-worker scenario (``test_worker_failover``) runs into this across processes: the worker's pool
child is paused while writing a ``file.text`` sink; its attempt is re-driven on another worker; on SIGCONT
both runs of ``{execution}:{node}:{attempt}`` overlap. Invariant 3 promises at-least-once node runs with a
stable idempotency key and idempotent built-in sinks, so the overlap must be harmless. This is the same
interleaving, reduced to threads in one process so that it is deterministic.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, overload

from apps.workflows.nodes.base import NodeContext, NodeError
from apps.workflows.nodes.registry import resolve


class PausedInput(Sequence[str]):
    """Records a sink iterates over; iteration stops half-way until ``resume`` is set (a SIGSTOP)."""

    def __init__(self, records: list[str]) -> None:
        self.records = records
        self.halfway, self.resume = threading.Event(), threading.Event()

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self.records[index]

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[str]:
        for i, record in enumerate(self.records):
            if i == len(self.records) // 2:
                self.halfway.set()
                self.resume.wait(10)
            yield record


def test_two_overlapping_runs_of_the_same_file_text_attempt_both_succeed_and_write_every_line_once(
    tmp_path: Path,
) -> None:
    target = tmp_path / "out.txt"
    sink = resolve("file.text", "sink", has_inputs=True, has_outputs=False)
    assert sink is not None
    ctx = NodeContext("exec_dup", "wf_dup", "out", 1, sink.with_defaults({"path": str(target)}))
    lines = [f"line {i}" for i in range(1000)]
    paused = PausedInput(lines)
    outcomes: dict[str, Any] = {}

    def first_run() -> None:
        try:
            outcomes["paused run"] = sink.run(ctx, paused).records_processed
        except NodeError as exc:
            outcomes["paused run"] = exc

    thread = threading.Thread(target=first_run)
    thread.start()
    assert paused.halfway.wait(10), "the first run never started writing"
    outcomes["re-driven run"] = sink.run(ctx, lines).records_processed  # the same attempt, run again
    paused.resume.set()
    thread.join(10)

    assert outcomes == {"paused run": 1000, "re-driven run": 1000}, (
        f"a duplicate run of one attempt failed: {outcomes}; the inbox keeps whichever outcome comes first, "
        "so such a failure fails the execution although its sink was written"
    )
    assert target.read_text().splitlines() == lines
