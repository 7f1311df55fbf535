"""No execution can be wedged by its data (issue 10), on a real node: values the journal cannot store fail
their node, applies that keep failing end their execution, cancel always wins, the sweeper reports what it
cannot move, and a slow apply does not hold the other executions of its shard."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from apps.cluster.models import ClusterEvent
from apps.cluster.sharding import shard_of
from apps.workflows.models import Command, Event, Execution, Workflow
from apps.workflows.services import doorbell, sweeper
from tests.harness import Api, wait_for
from tests.integration.test_control import create, start, types
from tests.integration.test_executions import step, workflow
from workflow_engine import messaging

pytestmark = pytest.mark.usefixtures("live_db")


def inf_map(workflow_id: str, **node: Any) -> dict[str, Any]:
    """The issue's record: ``float($)`` over ``"1e400"`` is ``inf``."""
    mapper = {**step("m", "map", "transform", expression="float($)"), **node}
    return workflow(
        workflow_id,
        [
            step("src", "memory.collection", "source", data=["1", "1e400"]),
            mapper,
            step("k", "console.log", "sink"),
        ],
        [("src", "m"), ("m", "k")],
    )


def test_a_map_to_1e400_fails_its_node_with_a_clear_error_and_the_execution_ends_failed(
    api: Api, uid: str
) -> None:
    execution_id = start(api, create(api, inf_map(f"inf-{uid}")))
    done = api.wait_finished(execution_id, timeout=30)
    assert done["status"] == "failed", done
    assert done["failedNodeId"] == "m"
    assert "Infinity" in done["error"] or "1e400" in done["error"], done["error"]
    assert types(execution_id)[-2:] == ["NodeExecutionFailed", "WorkflowFailed"]


def test_a_retry_policy_retries_an_unstorable_output_then_fails(api: Api, uid: str) -> None:
    retry = {"retry": {"maxAttempts": 2, "initialInterval": "100ms", "retryOn": "all"}}
    execution_id = start(api, create(api, inf_map(f"inf-retry-{uid}", **retry)))
    done = api.wait_finished(execution_id, timeout=30)
    assert done["status"] == "failed" and done["failedNodeId"] == "m", done
    history = types(execution_id)
    assert history.count("NodeExecutionFailed") == 2 and "NodeRetryScheduled" in history
    assert history[-1] == "WorkflowFailed"


def unstorable_task(workflow_id: str, kind: str) -> dict[str, Any]:
    return workflow(
        workflow_id,
        [
            step("src", "sequence.numbers", "source", start=1, end=2),
            step("t", "celery.task", "transform", task="tests.unstorable", kwargs={"kind": kind}),
            step("k", "console.log", "sink"),
        ],
        [("src", "t"), ("t", "k")],
    )


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("nul", "output record 0 field 'text' is a text with a NUL character"),
        ("nan", "output record 0 field 'scores' item 1 field 'deep' is NaN"),
    ],
)
def test_a_celery_task_result_jsonb_refuses_fails_its_node(
    api: Api, uid: str, kind: str, message: str
) -> None:
    execution_id = start(api, create(api, unstorable_task(f"task-{kind}-{uid}", kind)))
    done = api.wait_finished(execution_id, timeout=30)
    assert done["status"] == "failed" and done["failedNodeId"] == "t", done
    assert message in done["error"], done["error"]


def test_a_node_error_with_a_nul_character_and_a_huge_text_is_stored_and_ends_the_execution(
    api: Api, uid: str
) -> None:
    execution_id = start(api, create(api, unstorable_task(f"task-raise-{uid}", "raise-nul")))
    done = api.wait_finished(execution_id, timeout=30)
    assert done["status"] == "failed" and done["failedNodeId"] == "t", done
    assert "broken \ufffd payload" in done["error"] and len(done["error"]) < 10_000


def test_a_nul_character_read_from_a_file_fails_the_node_naming_it(
    api: Api, uid: str, tmp_path: Path
) -> None:
    source = tmp_path / "nul.txt"
    source.write_bytes(b"fine\nbro\x00ken\n")
    body = workflow(
        f"nul-file-{uid}",
        [step("read", "file.text", "source", path=str(source)), step("k", "console.log", "sink")],
        [("read", "k")],
    )
    done = api.wait_finished(start(api, create(api, body)), timeout=30)
    assert done["status"] == "failed" and done["failedNodeId"] == "read", done
    assert "output record 1 is a text with a NUL character" in done["error"], done["error"]


# --------------------------------------------------------------------------- applies that keep failing


@pytest.fixture
def failing_events() -> Iterator[Any]:
    """``install(workflow_id, sql_condition)``: a real PostgreSQL error (data exception, as the issue's
    ``Token "Infinity" is invalid``) on every insert of the workflow's events whose type is not one of the
    terminal ones, so every apply of its executions fails in PostgreSQL until the test ends."""
    names: list[str] = []

    def install(workflow_id: str) -> None:
        name = f"wedge_{uuid.uuid4().hex[:10]}"
        names.append(name)
        with connection.cursor() as cur:
            cur.execute(
                f"""CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.type NOT IN ('WorkflowFailed', 'WorkflowCancelled') AND EXISTS (
                        SELECT 1 FROM workflows_execution
                        WHERE id = NEW.execution_id AND workflow_id = '{workflow_id}'
                    ) THEN
                        RAISE EXCEPTION 'Token "Infinity" is invalid (test %)', NEW.type
                            USING ERRCODE = '22P02';
                    END IF;
                    RETURN NEW;
                END $$;
                CREATE TRIGGER {name} BEFORE INSERT ON workflows_event
                FOR EACH ROW EXECUTE FUNCTION {name}();"""
            )

    yield install
    with connection.cursor() as cur:
        for name in names:
            cur.execute(
                f"DROP TRIGGER IF EXISTS {name} ON workflows_event; DROP FUNCTION IF EXISTS {name}();"
            )


def waiting(workflow_id: str) -> dict[str, Any]:
    return workflow(
        workflow_id,
        [
            step("nums", "sequence.numbers", "source", start=1, end=3),
            step("wait", "delay", "transform", duration="1h"),
            step("k", "console.log", "sink"),
        ],
        [("nums", "wait"), ("wait", "k")],
    )


def test_an_apply_that_keeps_failing_ends_the_execution_failed_with_the_reason_in_its_journal(
    api: Api, uid: str, failing_events: Any
) -> None:
    workflow_id = create(api, waiting(f"wedge-{uid}"))
    failing_events(workflow_id)
    execution_id = start(api, workflow_id)
    done = api.wait_finished(execution_id, timeout=90)
    assert done["status"] == "failed", done
    n = settings.WORKFLOW_ENGINE.get("max-apply-failures", 5)
    assert done["error"].startswith(f"apply failed {n} times: DataError: "), done["error"]
    assert 'Token "Infinity" is invalid' in done["error"]
    assert types(execution_id) == ["WorkflowFailed"]
    event = Event.objects.get(execution_id=execution_id, seq=1)
    assert event.payload["reason"] == done["error"] and event.payload["applyFailed"] is True
    assert not Command.objects.filter(execution_id=execution_id, processed_at=None).exists()
    assert api.call("DELETE", f"/api/v1/workflows/{workflow_id}")[0] in (200, 204)


def test_cancel_wins_over_an_apply_that_keeps_failing(api: Api, uid: str, failing_events: Any) -> None:
    workflow_id = create(api, waiting(f"wedge-cancel-{uid}"))
    execution_id = start(api, workflow_id)
    wait_for("the delay to wait", lambda: "NodeWaiting" in types(execution_id))
    failing_events(workflow_id)
    before = types(execution_id)
    assert api.post(f"/api/v1/executions/{execution_id}/signals/poke", {"payload": {"n": 1}})[0] == 202
    assert api.post(f"/api/v1/executions/{execution_id}/cancel", {"reason": "give up"})[0] == 202
    done = api.wait_finished(execution_id, timeout=60)
    assert done["status"] == "cancelled" and "give up" in done["error"], done
    assert types(execution_id) == [*before, "WorkflowCancelled"], "the failing signal was never applied"
    assert api.call("DELETE", f"/api/v1/workflows/{workflow_id}")[0] in (200, 204)


# --------------------------------------------------------------------------- the sweeper


def test_the_sweeper_reports_an_execution_it_cannot_move_once_instead_of_re_driving_it_forever(
    api: Api, uid: str
) -> None:
    workflow_id = create(api, waiting(f"stuck-{uid}"))
    execution = _insert_pending(workflow_id, shard_of(f"exec_{uid}"), ago=1.0)
    # Its row stays locked by another session: no apply can move it, however often it is hinted. The sweeps
    # here run faster than the session node's own sweeper, which leaves commands younger than 10 s alone.
    with psycopg.connect(settings.DATABASE_URL) as holder:
        holder.execute("SELECT 1 FROM workflows_execution WHERE id = %s FOR UPDATE", [execution.id])
        fast = {**settings.WORKFLOW_ENGINE, "sweep-interval": "100ms", "sweeper-max-redrives": 3}
        reports = []
        with override_settings(WORKFLOW_ENGINE=fast):
            for _ in range(8):
                reports.append(sweeper.sweep())
                time.sleep(0.7)
        holder.rollback()
    assert sum(execution.id in r.unprocessed for r in reports) == 3, "re-driven at most 3 times"
    first_stuck = next(i for i, r in enumerate(reports) if execution.id in r.stuck)
    assert all(execution.id in r.stuck and execution.id not in r.unprocessed for r in reports[first_stuck:])
    stuck = [
        e
        for e in ClusterEvent.objects.filter(event_type="execution_stuck", severity="ERROR")
        if execution.id in e.payload.get("execution_ids", [])
    ]
    assert len(stuck) == 1, "reported once"
    assert stuck[0].payload["reason"] == "unprocessed_command"
    assert api.post(f"/api/v1/executions/{execution.id}/cancel")[0] in (202, 409)


def _insert_pending(workflow_id: str, shard_id: int, ago: float = 0) -> Execution:
    """An execution with its start command, on a chosen shard (as ``executions.admit`` would write it)."""
    while True:
        execution_id = f"exec_{uuid.uuid4().hex}"
        if shard_of(execution_id) == shard_id:
            break
    workflow = Workflow.objects.get(pk=workflow_id)
    execution = Execution.objects.create(
        id=execution_id, workflow=workflow, version_id=workflow.current_version_id, shard_id=shard_id
    )
    Command.objects.create(
        id=f"start:{execution_id}",
        execution=execution,
        type="start",
        payload={},
        created_at=timezone.now() - timedelta(seconds=ago),
    )
    return execution


# --------------------------------------------------------------------------- shard isolation


def test_small_executions_on_the_shard_of_a_slow_apply_are_not_held_by_it(api: Api, uid: str) -> None:
    small_id = create(
        api,
        workflow(
            f"small-{uid}",
            [step("s", "sequence.numbers", "source", start=1, end=3), step("k", "console.log", "sink")],
            [("s", "k")],
        ),
    )
    slow_id = create(api, waiting(f"slow-{uid}"))
    with connection.cursor() as cur:  # every start of the slow workflow's executions takes 6 s in PostgreSQL
        cur.execute(
            f"""CREATE FUNCTION slow_{uid}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.type = 'WorkflowStarted' AND EXISTS (
                    SELECT 1 FROM workflows_execution
                    WHERE id = NEW.execution_id AND workflow_id = '{slow_id}'
                ) THEN PERFORM pg_sleep(6); END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER slow_{uid} BEFORE INSERT ON workflows_event
            FOR EACH ROW EXECUTE FUNCTION slow_{uid}();"""
        )
    try:
        shard = shard_of(f"exec_{uid}")
        slow = _insert_pending(slow_id, shard)
        smalls = [_insert_pending(small_id, shard) for _ in range(3)]
        # one doorbell answer for all four, the slow one first: the batch that used to hold them all
        for execution in [slow, *smalls]:
            doorbell.ring(shard, execution.id)
        rung = time.monotonic()
        messaging.apply_shard(shard)
        for execution in smalls:
            api.wait_finished(execution.id, timeout=30)
        small_time = time.monotonic() - rung
        wait_for("the slow one to start", lambda: "WorkflowStarted" in types(slow.id), timeout=60)
        slow_time = time.monotonic() - rung
    finally:
        with connection.cursor() as cur:
            cur.execute(f"DROP TRIGGER IF EXISTS slow_{uid} ON workflows_event; DROP FUNCTION slow_{uid}();")
    assert small_time < 4.5, f"the small executions took {small_time:.1f}s beside a 6 s apply"
    assert slow_time >= 6.0
    assert all(Execution.objects.get(pk=e.id).status == "completed" for e in smalls)
