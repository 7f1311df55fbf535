"""The fault campaign's workload (``bench/chaos.py``): its workflows, and the thread that starts their runs
through the gateway and sends their signals.

Linear with a delay, fan-out/fan-in with a ``celery.task`` node that fails its first attempt for half the
executions (``bench/chaos_tasks.py``, retried), one parked on ``wait.signal`` and one on ``approval``, both
signalled here. Every workflow ends in a ``db.write`` sink into ``SINK_TABLE``, unique on the attempt's
idempotency key; ``WORKFLOWS`` says which ``k`` values each run writes, for the check. The fan-out workflow
also replaces a file (``FILE_SINK``).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

TOKEN = secrets.token_hex(20)  # the campaign's API token (migrated into its database)
SINK_TABLE = "chaos_sink"
# the fan-out workflow's second sink, under the workers' file root (<data dir>/files): each run replaces it
# whole (``file.text``), so at the end it must hold exactly one run's records, each once
FILE_SINK = "chaos/fan.txt"

# --------------------------------------------------------------------------------------------- workflows


def node(node_id: str, node_type: str, kind: str, **config: Any) -> dict[str, Any]:
    return {"id": node_id, "type": kind, "nodeType": node_type, "config": config}


def sink() -> dict[str, Any]:
    # no ``key``: each row is keyed by its attempt ({execution}:{node}:{attempt}:{index}), so a re-run of one
    # attempt writes nothing twice, and a second attempt's rows would show up as duplicates in the check
    return node("save", "db.write", "sink", connection="warehouse", table=SINK_TABLE)


def body(workflow_id: str, nodes: list[dict[str, Any]], edges: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "id": workflow_id,
        "name": workflow_id,
        "nodes": nodes,
        "edges": [{"id": f"e{i}", "source": s, "target": t} for i, (s, t) in enumerate(edges)],
    }


FLAKY_RETRY = {"maxAttempts": 4, "backoff": "fixed", "initialInterval": "500ms"}

# workflow id -> (definition, the ``k`` values its sink writes per run)
WORKFLOWS: dict[str, tuple[dict[str, Any], list[int]]] = {
    "chaos-linear": (
        body(
            "chaos-linear",
            [
                node("in", "execution.input", "source"),
                node("one", "map", "transform", fields={"k": "1"}),
                node("nap", "delay", "transform", duration="1s"),
                sink(),
            ],
            [("in", "one"), ("one", "nap"), ("nap", "save")],
        ),
        [1],
    ),
    "chaos-fan": (
        body(
            "chaos-fan",
            [
                node("in", "execution.input", "source"),
                node("a", "map", "transform", fields={"k": "1"}),
                node("b", "map", "transform", fields={"k": "2"}),
                {**node("c", "celery.task", "transform", task="chaos.flaky"), "retry": FLAKY_RETRY},
                sink(),
                node("file", "file.text", "sink", path=FILE_SINK),
            ],
            [
                *[("in", n) for n in "abc"],
                *[(n, "save") for n in "abc"],
                *[(n, "file") for n in "abc"],
            ],
        ),
        [1, 2, 3],
    ),
    "chaos-signal": (
        body(
            "chaos-signal",
            [
                node("in", "execution.input", "source"),
                node("two", "map", "transform", fields={"k": "2"}),
                node("go", "wait.signal", "transform", name="go"),
                sink(),
            ],
            [("in", "two"), ("in", "go"), ("two", "save"), ("go", "save")],
        ),
        [1, 2],
    ),
    "chaos-approval": (
        body(
            "chaos-approval",
            [
                node("in", "execution.input", "source"),
                node("ok", "approval", "transform", name="approve"),
                node("one", "map", "transform", fields={"k": "1"}),
                sink(),
            ],
            [("in", "ok"), ("ok", "one"), ("one", "save")],
        ),
        [1],
    ),
}


# --------------------------------------------------------------------------------------------- HTTP


def call(base: str, path: str, payload: Any, key: str) -> tuple[int, Any]:
    """POST through the gateway; 0 when it does not answer (killed, restarting, PostgreSQL down)."""
    request = urllib.request.Request(base + path, data=json.dumps(payload).encode(), method="POST")
    request.add_header("Authorization", f"Token {TOKEN}")
    request.add_header("Content-Type", "application/json")
    request.add_header("Idempotency-Key", key)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()[:300].decode(errors="replace")
    except OSError as exc:
        return 0, repr(exc)


# --------------------------------------------------------------------------------------------- workload


@dataclass
class Run:
    workflow_id: str
    execution_id: str | None = None
    signals: list[tuple[str, Any]] = field(default_factory=list)  # (name, payload) still to send


class Workload(threading.Thread):
    """Starts runs at a steady rate, round-robin over the workflows, and sends their signals; every call
    is retried (same Idempotency-Key) until the gateway answers."""

    def __init__(self, base: str, rate: float) -> None:
        super().__init__(daemon=True, name="workload")
        self.base, self.rate = base, rate
        self.stopped = threading.Event()
        self.runs: dict[str, Run] = {}
        self.refused: Counter[str] = Counter()  # non-retryable answers, by status

    def run(self) -> None:
        kinds = list(WORKFLOWS)
        n = 0
        next_at = time.monotonic()
        while not self.stopped.is_set():
            if time.monotonic() >= next_at:
                rid = f"r{n:05d}-{uuid.uuid4().hex[:6]}"
                self.runs[rid] = Run(kinds[n % len(kinds)])
                n += 1
                next_at += 1 / self.rate
            self.pump()
            time.sleep(0.05)

    def pump(self) -> None:
        """One try for each run not started yet, and for each signal not yet accepted."""
        for rid, run in list(self.runs.items()):
            if run.execution_id is None:
                self.start_run(rid, run)
            elif run.signals:
                self.send_signal(rid, run)

    def pending(self) -> int:
        return sum(1 for r in self.runs.values() if r.execution_id is None or r.signals)

    def start_run(self, rid: str, run: Run) -> None:
        status, answer = call(
            self.base, f"/api/v1/workflows/{run.workflow_id}/execute", {"input": {"run": rid}}, f"start-{rid}"
        )
        if status == 200 and answer.get("executionId"):
            run.execution_id = answer["executionId"]
            if run.workflow_id == "chaos-signal":
                run.signals = [("go", {"run": rid, "k": 1})]
            elif run.workflow_id == "chaos-approval":
                run.signals = [("approve", {"comment": "chaos"})]
        elif status not in (0, 502, 503, 504):
            self.refused[f"start {status}"] += 1
            del self.runs[rid]

    def send_signal(self, rid: str, run: Run) -> None:
        name, payload = run.signals[0]
        status, _ = call(
            self.base, f"/api/v1/executions/{run.execution_id}/signals/{name}", payload, f"{name}-{rid}"
        )
        if status in (200, 201, 202):
            run.signals.pop(0)
        elif status not in (0, 502, 503, 504):
            self.refused[f"signal {status}"] += 1
            run.signals.pop(0)
