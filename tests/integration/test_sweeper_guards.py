"""Nothing gets stuck (invariant 4), on the session's real node: a lost hint is re-sent by the leader's
sweeper, and a timer fires from its row alone.

A hint is lost for real: the service commits its rows and the after-commit work that would publish the hint is
dropped, as when a process dies between its commit and its publish. Each test first shows that nothing else
would have moved the execution: an execution started later, with its hint, finishes while the hintless one
has not moved. Then the hintless one moves, and not before the sweeper looks at commands (2 x
``sweep-interval``, 5 s in the node's environment, the default), and the sweeper reports the re-drive.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction

from apps.cluster.models import ClusterEvent
from apps.workflows.models import Command, Event, Execution, Timer
from apps.workflows.services import doorbell, executions, timers
from tests.harness import Api, wait_for
from tests.integration.test_executions import step, workflow
from workflow_engine.tunables import engine_settings

pytestmark = pytest.mark.usefixtures("live_db")

LONG_AGO = datetime(
    2000, 1, 1, tzinfo=UTC
)  # due before any timer of the session: the first one fire_due takes


@contextlib.contextmanager
def hints_lost() -> Iterator[None]:
    """Commit what the block writes through the services, and drop the after-commit work it registered: the
    hints it would have published."""
    with transaction.atomic():
        yield
        connection.run_on_commit.clear()


def quick(workflow_id: str) -> dict[str, Any]:
    return workflow(
        workflow_id,
        [step("s", "sequence.numbers", "source", start=1, end=3), step("k", "console.log", "sink")],
        [("s", "k")],
    )


def waiting(workflow_id: str) -> dict[str, Any]:
    return workflow(
        workflow_id,
        [
            step("s", "sequence.numbers", "source", start=1, end=3),
            step("wait", "delay", "transform", duration="1h"),
            step("k", "console.log", "sink"),
        ],
        [("s", "wait"), ("wait", "k")],
    )


def create(api: Api, body: dict[str, Any]) -> str:
    status, created = api.post("/api/v1/workflows", body)
    assert status == 201, created
    return str(body["id"])


def start(api: Api, workflow_id: str) -> str:
    status, body = api.post(f"/api/v1/workflows/{workflow_id}/execute")
    assert status == 200 and body["status"] == "started", body
    return str(body["executionId"])


def first_event_at(execution_id: str, event_type: str, node_id: str | None = None) -> datetime | None:
    events = Event.objects.filter(execution_id=execution_id, type=event_type).order_by("seq")
    if node_id is not None:
        events = events.filter(payload__nodeId=node_id)
    event = events.first()
    return event.created_at if event else None


@pytest.fixture(scope="module", autouse=True)
def settled(node: dict[str, Any]) -> None:
    """The worker has taken its shards, and re-driven the executions they held, before a test loses a hint
    (or that recovery would move the execution): an execution started now completes only after the worker
    consumes its shard's queue, which it does after that recovery (both run on its event loop)."""
    api: Api = node["api"]
    execution_id = start(api, create(api, quick(f"settle-{uuid.uuid4().hex[:10]}")))
    assert api.wait_finished(execution_id, timeout=60)["status"] == "completed"


def a_later_execution_finishes(api: Api, uid: str) -> datetime:
    """Start an execution with its hint and wait for its end; returns when it completed (the worker's
    clock, as the hintless execution's events)."""
    execution_id = start(api, create(api, quick(f"later-{uid}")))
    assert api.wait_finished(execution_id, timeout=30)["status"] == "completed"
    done = first_event_at(execution_id, "WorkflowCompleted")
    assert done is not None
    return done


def redriven_by_the_sweeper(execution_id: str) -> list[dict[str, Any]]:
    rows = ClusterEvent.objects.filter(event_type="execution_redriven", payload__reason="unprocessed_command")
    return [e.payload for e in rows if execution_id in e.payload["execution_ids"]]


def sweeper_age() -> timedelta:
    """How old an unprocessed command is before the sweeper hints it again."""
    return timedelta(seconds=2 * engine_settings.sweep_interval)


def test_a_started_execution_whose_hint_was_lost_is_started_by_the_sweeper(api: Api, uid: str) -> None:
    workflow_id = create(api, quick(f"lost-start-{uid}"))
    with hints_lost():
        execution, _ = executions.start(workflow_id)
    command = Command.objects.get(execution_id=execution.id, type="start")

    later_done = a_later_execution_finishes(api, uid)
    assert later_done < command.created_at + sweeper_age(), "the machine is too slow for this test's window"
    assert Execution.objects.get(pk=execution.id).status == "pending"
    assert not Event.objects.filter(execution_id=execution.id).exists(), "nothing but the sweeper moves it"
    assert Command.objects.get(pk=command.pk).processed_at is None

    done = api.wait_finished(execution.id, timeout=60)

    assert done["status"] == "completed", done
    started_at = first_event_at(execution.id, "WorkflowStarted")
    assert started_at is not None and started_at >= command.created_at + sweeper_age()
    assert len(redriven_by_the_sweeper(execution.id)) == 1


def test_a_shard_whose_doorbell_message_was_lost_is_woken_by_the_sweeper(api: Api, uid: str) -> None:
    """The execution waits in its shard's doorbell list, and the bell says a message is on its way: it never
    leaves. The bell expires, so the sweeper's hint rings again and wakes the shard."""
    workflow_id = create(api, quick(f"lost-bell-{uid}"))
    with hints_lost():
        execution, _ = executions.start(workflow_id)
    command = Command.objects.get(execution_id=execution.id, type="start")
    assert doorbell.ring(execution.shard_id, execution.id) is True, "the ringer must publish (and does not)"

    later_done = a_later_execution_finishes(api, uid)
    assert later_done < command.created_at + sweeper_age(), "the machine is too slow for this test's window"
    assert not Event.objects.filter(execution_id=execution.id).exists()

    done = api.wait_finished(execution.id, timeout=60)

    assert done["status"] == "completed", done
    started_at = first_event_at(execution.id, "WorkflowStarted")
    assert started_at is not None and started_at >= command.created_at + sweeper_age()
    assert len(redriven_by_the_sweeper(execution.id)) == 1


def test_a_fired_timer_whose_wake_up_was_lost_is_applied_after_the_sweeper_hints_it(
    api: Api, uid: str
) -> None:
    execution_id = start(api, create(api, waiting(f"lost-timer-{uid}")))
    wait_for("the delay to wait", lambda: first_event_at(execution_id, "NodeWaiting", "wait"))
    timer = Timer.objects.get(execution_id=execution_id, kind="wait", fired_at=None)
    # the leader fires it (the command timer:<id>, the timer marked fired) and dies before its hint leaves;
    # its time has come, and it is the first due timer, so that fire_due takes it and no other
    with hints_lost():
        Timer.objects.filter(pk=timer.pk).update(fire_at=LONG_AGO)
        assert timers.fire_due(limit=1) == 1
    command = Command.objects.get(pk=f"timer:{timer.pk}")
    assert Timer.objects.get(pk=timer.pk).fired_at is not None

    later_done = a_later_execution_finishes(api, uid)
    assert later_done < command.created_at + sweeper_age(), "the machine is too slow for this test's window"
    assert Command.objects.get(pk=command.pk).processed_at is None
    assert first_event_at(execution_id, "NodeExecutionCompleted", "wait") is None

    done = api.wait_finished(execution_id, timeout=60)

    assert done["status"] == "completed", done
    woke_at = first_event_at(execution_id, "NodeExecutionCompleted", "wait")
    assert woke_at is not None and woke_at >= command.created_at + sweeper_age()
    assert len(redriven_by_the_sweeper(execution_id)) == 1


def test_a_due_timer_fires_from_its_row_alone(api: Api, uid: str) -> None:
    """No message was ever scheduled for a timer: when its row is due, the leader's fire_due fires it."""
    execution_id = start(api, create(api, waiting(f"due-timer-{uid}")))
    wait_for("the delay to wait", lambda: first_event_at(execution_id, "NodeWaiting", "wait"))
    timer = Timer.objects.get(execution_id=execution_id, kind="wait", fired_at=None)
    assert timer.fire_at > timer.created_at + timedelta(minutes=59)

    Timer.objects.filter(pk=timer.pk).update(fire_at=timer.created_at)  # its hour has passed

    done = api.wait_finished(execution_id, timeout=30)
    assert done["status"] == "completed", done
    fired = Timer.objects.get(pk=timer.pk)
    assert fired.fired_at is not None
    assert Command.objects.get(pk=f"timer:{timer.pk}").processed_at is not None
    assert redriven_by_the_sweeper(execution_id) == [], "its own wake-up moved it"


def test_the_hint_of_a_lost_start_is_really_lost() -> None:
    """The premise of the tests above: ``hints_lost`` commits the rows and runs none of the hooks."""
    ran: list[str] = []
    marker = f"hook-{uuid.uuid4().hex[:6]}"
    with hints_lost():
        transaction.on_commit(lambda: ran.append(marker))
    assert ran == []
    transaction.on_commit(lambda: ran.append(marker))  # outside it, a hook runs at once (autocommit)
    assert ran == [marker]
