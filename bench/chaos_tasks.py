"""The Celery task of the fault campaign's ``celery.task`` nodes (``bench/chaos.py``).

Workers import it through ``WORKFLOW_CELERY_IMPORTS=bench.chaos_tasks`` (with the repository on
``PYTHONPATH``). Whether an attempt fails depends only on its task id, ``{execution}:{node}:{attempt}``, so
a replayed seed fails the same attempts, and a re-run of one attempt after a crash behaves as the first run.
"""

from __future__ import annotations

import hashlib
from typing import Any

from workflow_engine.celery import app


def fails_first_attempt(execution_id: str) -> bool:
    """Half the executions fail their first attempt: the retry policy must carry them on."""
    return hashlib.sha256(execution_id.encode()).digest()[0] % 2 == 0


@app.task(name="chaos.flaky", bind=True)
def flaky(self: Any, records: list[Any]) -> list[Any]:
    execution_id, _node, attempt = str(self.request.id).rsplit(":", 2)
    if attempt == "1" and fails_first_attempt(execution_id):
        raise RuntimeError(f"chaos: first attempt of {execution_id} fails on purpose")
    return [{**record, "k": 3} for record in records]
