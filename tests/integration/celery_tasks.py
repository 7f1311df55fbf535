"""Celery tasks "of the user's own", run by ``celery.task`` nodes in the tests.

The session node's workers import this module (``WORKFLOW_CELERY_IMPORTS``). Attempts are counted in a file
whose path the test passes, since each attempt may run in another worker process.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from workflow_engine import redis_client
from workflow_engine.celery import app


def _attempt(counter: str) -> int:
    path = Path(counter)
    count = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(count))
    return count


@app.task(name="tests.total")
def total(records: list[Any], field: str = "n") -> list[dict[str, Any]]:
    return [{"total": sum(r[field] for r in records), "count": len(records)}]


@app.task(name="tests.flaky")
def flaky(records: list[Any], counter: str, failures: int) -> list[Any]:
    """Fails ``failures`` times, then returns its records."""
    attempt = _attempt(counter)
    Path(counter + f".{attempt}").write_text(str(time.time()))
    if attempt <= failures:
        raise RuntimeError(f"flaky failure {attempt}")
    return records


@app.task(name="tests.hangs_once")
def hangs_once(records: list[Any], counter: str) -> list[Any]:
    """The first attempt hangs far longer than the node's timeout; the next one answers at once."""
    if _attempt(counter) == 1:
        time.sleep(60)
    return records


@app.task(name="tests.unstorable")
def unstorable(records: list[Any], kind: str) -> list[Any]:
    """Returns (or raises with) a value PostgreSQL's jsonb refuses (tests/integration/test_data_wedge.py)."""
    if kind == "nul":
        return [{"text": "before\x00after"}]
    if kind == "nan":
        return [{"scores": [1.0, {"deep": float("nan")}]}]
    if kind == "raise-nul":
        raise RuntimeError("broken \x00 payload " + "x" * 100_000)
    return records


# --- tasks of a durable canvas (tests/integration/test_canvases.py) ---------------------------------------
# Each records its effect once per canvas step, under the step's stable key (the task id without the
# attempt, ``{execution}:{node}``), and logs every run, so a test can tell "ran twice" from "applied twice".


def _effect(request_id: str, tag: str, what: Any) -> None:
    step = request_id.rsplit(":", 1)[0]
    pipe = redis_client.client().pipeline(transaction=True)
    pipe.hsetnx(redis_client.key("canvas-effects", tag), step, json.dumps(what))
    pipe.rpush(redis_client.key("canvas-runs", tag), step)
    pipe.execute()


def _block_once(block: str | None) -> None:
    """The first run with ``block`` set says so (key ``<block>:started``) and waits to be killed."""
    if block and redis_client.client().incr(redis_client.key(block, "runs")) == 1:
        redis_client.client().set(redis_client.key(block, "started"), "1")
        time.sleep(120)


@app.task(name="tests.canvas.add", bind=True)
def canvas_add(self: Any, x: Any, y: Any, *, tag: str) -> Any:
    _effect(self.request.id, tag, ["add", x, y])
    return x + y


@app.task(name="tests.canvas.scale", bind=True)
def canvas_scale(self: Any, values: list[int], factor: int, *, tag: str, block: str | None = None) -> int:
    """``sum(values) * factor``; its effect is applied before it blocks (when asked), as a task that dies
    after writing but before answering."""
    _effect(self.request.id, tag, ["scale", values, factor])
    _block_once(block)
    return sum(values) * factor


@app.task(name="tests.canvas.echo", bind=True)
def canvas_echo(self: Any, *args: Any, tag: str) -> list[Any]:
    _effect(self.request.id, tag, ["echo", *args])
    return list(args)


@app.task(name="tests.canvas.total", bind=True)
def canvas_total(self: Any, values: list[int], *, tag: str) -> int:
    _effect(self.request.id, tag, ["total", values])
    return sum(values)
