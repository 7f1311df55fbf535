"""Celery tasks "of the user's own", run by ``celery.task`` nodes in the tests.

The session node's workers import this module (``WORKFLOW_CELERY_IMPORTS``). Attempts are counted in a file
whose path the test passes, since each attempt may run in another worker process.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

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
