"""A shard message whose apply loses its PostgreSQL connection (a failover, a restart) keeps its wake-ups.

``apply_shard`` takes the executions queued at the shard's doorbell; the task is retried on a transient error,
and the retry answers the doorbell again. A batch put its executions back; a lone execution did not, so the
retry found the doorbell empty and the execution waited for the sweeper (seen as an ``execution_redriven``
event and ~12 s of delay in tests/cluster/test_postgres_failover.py).
"""

from __future__ import annotations

import psycopg
import pytest
from django.conf import settings
from django.db import OperationalError, connection

from apps.workflows.services import apply, doorbell, executions
from tests.harness import Api
from tests.integration.test_sweeper_guards import create, hints_lost, quick

pytestmark = pytest.mark.usefixtures("live_db")


def _terminate_our_backend() -> None:
    """End this process's PostgreSQL session from another one, as a dying server does."""
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    with psycopg.connect(settings.DATABASE_URL, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


def test_a_lone_execution_goes_back_to_its_doorbell_when_its_apply_loses_the_connection(
    api: Api, uid: str
) -> None:
    workflow_id = create(api, quick(f"lone-lost-conn-{uid}"))
    with hints_lost():
        execution, _ = executions.start(workflow_id)
    doorbell.ring(execution.shard_id, execution.id)  # queued; its message is this test's to deliver
    _terminate_our_backend()

    try:
        with pytest.raises(OperationalError):
            apply.apply_shard(execution.shard_id)
    finally:
        connection.close()

    # what the retried message finds: the execution, not an empty doorbell
    requeued = doorbell.answer(execution.shard_id)
    assert requeued == [execution.id]
    doorbell.put_back(execution.shard_id, requeued)
    apply.apply_shard(execution.shard_id)  # the retry; then the session's node runs it to the end
    assert api.wait_finished(execution.id, timeout=60)["status"] == "completed"
