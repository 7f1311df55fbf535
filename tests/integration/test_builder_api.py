"""What ``wfe.builder`` builds is what the API takes (issue 14 item 4): posted to a real node, it is saved as
a valid version, its execution completes, and the server reads it back with the same nodes and edges."""

from __future__ import annotations

import pytest

from tests.harness import Api
from wfe.builder import Concurrency, Retry, Workflow

pytestmark = pytest.mark.usefixtures("live_db")


def test_a_built_workflow_is_accepted_by_the_api_and_runs_to_completion(api: Api, uid: str) -> None:
    wf = Workflow(f"built-{uid}", name="Built in Python", tags=["sdk"], concurrency=Concurrency(max=3))
    nums = wf.source("sequence.numbers", id="nums", start=1, end=5)
    big = wf.transform("filter", id="big", condition="value > 2", retry=Retry(max_attempts=2))
    doubled = wf.transform("map", id="doubled", expression="value * 2", timeout="1m")
    nums >> [big, doubled] >> wf.sink("aggregate.count", id="count")
    assert wf.validate() == {}

    status, created = api.post("/api/v1/workflows", wf.to_dict())
    assert status == 201 and created["valid"] is True and created["version"] == 1, created
    status, stored = api.get(f"/api/v1/workflows/{wf.id}")
    assert status == 200
    assert [n["id"] for n in stored["nodes"]] == ["nums", "big", "doubled", "count"]
    assert [(e["source"], e["target"]) for e in stored["edges"]] == [
        ("nums", "big"),
        ("nums", "doubled"),
        ("big", "count"),
        ("doubled", "count"),
    ]
    status, started = api.post(f"/api/v1/workflows/{wf.id}/execute", {})
    assert status == 200, started
    assert api.wait_finished(started["executionId"])["status"] == "completed"
