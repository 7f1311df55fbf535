"""An approval cannot be edited away (issue 10): an execution keeps the version it pinned, so a new version
without the approval node (even an admin's) neither releases nor changes the approval it waits for. On a real
node."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import make_token
from tests.harness import Api
from tests.integration.test_control import create, signal_workflow, types, wait_event
from tests.integration.test_executions import step, workflow

pytestmark = pytest.mark.usefixtures("live_db")


def test_a_new_version_without_the_approval_does_not_release_a_waiting_execution(
    node: dict[str, Any], api: Api, uid: str
) -> None:
    operator = Api(api.base, make_token(f"op-{uid}", "operator"))
    approver = Api(api.base, make_token(f"appr-{uid}", "approver"))
    workflow_id = create(api, signal_workflow(f"pin-{uid}"))
    status, started = operator.post(f"/api/v1/workflows/{workflow_id}/execute")
    assert status == 200, started
    execution_id = started["executionId"]
    signals = f"/api/v1/executions/{execution_id}/signals"
    assert operator.post(f"{signals}/order", {"item": "book"})[0] == 202
    wait_event(execution_id, "NodeWaiting", count=2)  # the approval waits now

    no_gate = workflow(
        workflow_id,
        [step("order", "wait.signal", "source", name="order"), step("out", "aggregate.count", "sink")],
        [("order", "out")],
    )
    assert operator.call("PUT", f"/api/v1/workflows/{workflow_id}", no_gate)[0] == 403
    status, updated = api.call("PUT", f"/api/v1/workflows/{workflow_id}", no_gate)
    assert status == 200 and updated["version"] == 2
    # a command applied after the edit: the worker has seen the execution since, and the gate still waits
    assert operator.post(f"{signals}/order", {"item": "late"})[0] == 202
    wait_event(execution_id, "SignalReceived", count=2)
    assert "WorkflowCompleted" not in types(execution_id)
    status, waiting = api.get(f"/api/v1/executions/{execution_id}")
    assert waiting["status"] == "running" and waiting["version"] == 1
    assert {n["nodeId"]: n["status"] for n in waiting["nodes"]}.get("gate") != "completed"

    assert operator.post(f"{signals}/approve", {"ok": True})[0] == 403
    assert approver.post(f"{signals}/approve", {"ok": True})[0] == 202
    done = api.wait_finished(execution_id)
    assert done["status"] == "completed" and done["version"] == 1
    assert done["startedBy"] == f"op-{uid}"
    gate = next(n for n in done["nodes"] if n["nodeId"] == "gate")
    assert gate["approvedBy"] == f"appr-{uid}"
