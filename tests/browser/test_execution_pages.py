"""The executions pages of the console (issue 13, item 2) in a real headless Chromium, offline: the list's
trigger and time filters; on an execution's page the timeline of attempts (retries, waits on a timer, a signal
or an approval), the event history (compact and raw), the input, output previews, logs, and the error with
its failed node; and a 500-node execution that loads whole within a generous bound (the measured load time is
bench/console_load.py's, in docs/benchmarks.md)."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.helpers import member, person, screenshot, sign_in, still_the_same_document
from tests.harness import Api
from tests.integration.test_control import create, delayed, signal_workflow, start, task_workflow
from tests.integration.test_executions import step, workflow

pytestmark = pytest.mark.usefixtures("live_db")

WIDE = 25  # the 500-node workflow: a source, 498 maps in columns of WIDE chains, a sink


def five_hundred_nodes(workflow_id: str) -> dict[str, Any]:
    """500 nodes: ``numbers`` feeds WIDE chains of ``map`` nodes (498 in all, 20 deep), whose ends feed
    ``count``. Every node is cheap and inline, so the execution completes in seconds."""
    maps = [step(f"m{i:03}", "map", "transform", expression="value * 2") for i in range(498)]
    edges = [
        ("numbers", m["id"]) if i < WIDE else (maps[i - WIDE]["id"], m["id"]) for i, m in enumerate(maps)
    ]
    edges += [(m["id"], "count") for m in maps[-WIDE:]]
    nodes = [
        step("numbers", "sequence.numbers", "source", start=1, end=3),
        *maps,
        step("count", "aggregate.count", "sink"),
    ]
    return workflow(workflow_id, nodes, edges)


def local_input(page: Page, hours_from_now: float) -> str:
    """The value a datetime-local input shows for now + ``hours_from_now``, in the browser's zone."""
    return str(
        page.evaluate(
            "(h) => { const d = new Date(Date.now() + h * 3600e3);"
            " return new Date(d - d.getTimezoneOffset() * 60e3).toISOString().slice(0, 16); }",
            hours_from_now,
        )
    )


def test_the_executions_list_narrows_by_trigger_and_by_start_time_kept_in_the_url(
    page: Page, api: Api, uid: str, tmp_path: Path
) -> None:
    workflow_id = create(api, delayed(f"filters-{uid}", "10ms", tmp_path))
    first = start(api, workflow_id)
    api.wait_finished(first)
    status, body = api.post(f"/api/v1/executions/{first}/rerun")
    assert status == 200, body
    rerun = body["executionId"]
    api.wait_finished(rerun)
    username, password = member("viewer")  # the list is for readers too
    sign_in(page, username, password, path=f"/ui/executions?workflowId={workflow_id}")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(2)

    page.get_by_label("Trigger").select_option("rerun")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-execution-id", rerun)
    expect(rows.first).to_contain_text("rerun")
    assert "trigger=rerun" in page.url
    page.get_by_label("Trigger").select_option("api")
    expect(rows.first).to_have_attribute("data-execution-id", first)
    page.get_by_label("Trigger").select_option("")
    expect(page).to_have_url(re.compile(rf"/ui/executions\?workflowId={workflow_id}$"))

    page.get_by_label("Started after").fill(local_input(page, 1))  # an hour ahead: nothing yet
    page.get_by_role("button", name="Apply filters").click()
    expect(page.get_by_text("No executions match.")).to_be_visible()
    assert "startedAfter=" in page.url and "Z" in page.url.split("startedAfter=")[1]  # ISO with its zone
    page.get_by_label("Started after").fill(local_input(page, -1))
    page.get_by_label("Started before").fill(local_input(page, 1))
    page.get_by_role("button", name="Apply filters").click()
    expect(rows).to_have_count(2)
    page.get_by_label("Started before").fill(local_input(page, -1))  # before the hour ago: empty range
    page.get_by_role("button", name="Apply filters").click()
    expect(page.get_by_text("No executions match.")).to_be_visible()

    page.get_by_role("link", name="Clear filters").click()
    expect(page).to_have_url(re.compile(r"/ui/executions$"))
    page.get_by_label("Workflow").fill(workflow_id)
    page.get_by_label("Started within").select_option("1h")
    expect(rows).to_have_count(2)
    assert "within=1h" in page.url
    page.reload()  # the URL is the whole state: a shared link shows the same list
    expect(page.get_by_label("Started within")).to_have_value("1h")
    expect(page.get_by_label("Workflow")).to_have_value(workflow_id)
    expect(rows).to_have_count(2)
    screenshot(page, "executions")


def test_a_bad_time_in_the_url_shows_the_apis_message_and_keeps_the_filters(page: Page) -> None:
    username, password = person()
    sign_in(page, username, password, path="/ui/executions?startedBefore=yesterday")
    expect(page.get_by_role("alert")).to_contain_text("startedBefore")
    expect(page.get_by_label("Status")).to_be_visible()


def retried_then_waiting(workflow_id: str, tmp: Path) -> dict[str, Any]:
    """A task node failing once then retried after 500 ms, then a 60 s delay."""
    retry = {"maxAttempts": 2, "backoff": "fixed", "initialInterval": "500ms", "jitter": 0}
    body = task_workflow(workflow_id, "tests.flaky", retry, counter=str(tmp / "flaky"), failures=1)
    body["nodes"].insert(2, step("wait", "delay", "transform", duration="60s"))
    body["edges"] = [
        {"id": f"e{i}", "source": a, "target": b}
        for i, (a, b) in enumerate(itertools.pairwise(["rows", "call", "wait", "out"]))
    ]
    return body


def test_the_timeline_shows_each_attempt_of_a_retried_node_and_a_timer_wait_as_such(
    page: Page, api: Api, uid: str, tmp_path: Path
) -> None:
    execution_id = start(api, create(api, retried_then_waiting(f"timeline-{uid}", tmp_path)))
    username, password = person()
    sign_in(page, username, password, path=f"/ui/executions/{execution_id}")
    timeline = page.get_by_test_id("timeline")
    wait = timeline.locator('tr[data-timeline-node="wait"] .bar')
    expect(wait).to_contain_text("#1 waiting: timer until", timeout=30_000)  # appears live
    expect(wait).to_have_class("bar bar-waiting bar-wait")  # drawn as a wait, not as work
    call = timeline.locator('tr[data-timeline-node="call"]')
    attempts = call.locator(".bar[data-attempt]")
    expect(attempts).to_have_count(2)
    expect(attempts.nth(0)).to_have_text("#1 failed")
    expect(attempts.nth(1)).to_have_text("#2 completed")
    expect(call.locator('[data-kind="retry-wait"]')).to_have_text("retry in 500 ms")
    expect(timeline.locator("thead .tick").first).to_have_text("+0 ms")  # a time axis
    assert still_the_same_document(page)
    screenshot(page, "execution-timeline")
    assert api.post(f"/api/v1/executions/{execution_id}/cancel")[0] == 202


def test_the_timeline_names_a_signal_and_an_approval_the_execution_waits_on(
    page: Page, api: Api, uid: str
) -> None:
    execution_id = start(api, create(api, signal_workflow(f"timeline-approval-{uid}")))
    username, password = member("viewer")  # read-only, and sees it all
    sign_in(page, username, password, path=f"/ui/executions/{execution_id}")
    timeline = page.get_by_test_id("timeline")
    order = timeline.locator('tr[data-timeline-node="order"] .bar')
    expect(order).to_have_text("#1 waiting: signal order", timeout=30_000)
    assert api.post(f"/api/v1/executions/{execution_id}/signals/order", {"item": "book"})[0] == 202
    expect(timeline.locator('tr[data-timeline-node="gate"] .bar')).to_have_text(
        "#1 waiting: approval", timeout=30_000
    )
    expect(order).to_have_text("#1 completed (waited: signal order)")
    signal = page.get_by_test_id("history").locator("tr[data-seq]", has_text="SignalReceived")
    expect(signal).to_contain_text("signal order")  # the history grows live too
    assert still_the_same_document(page)
    assert api.post(f"/api/v1/executions/{execution_id}/cancel")[0] == 202


def input_workflow(workflow_id: str) -> dict[str, Any]:
    return workflow(
        workflow_id,
        [step("in", "execution.input", "source"), step("out", "console.log", "sink")],
        [("in", "out")],
    )


def run_with_input(api: Api, workflow_id: str) -> str:
    status, body = api.post(
        f"/api/v1/workflows/{workflow_id}/execute", {"input": {"logicalTime": "2026-01-01T00:00Z"}}
    )
    assert status == 200, body
    assert api.wait_finished(body["executionId"])["status"] == "completed"
    return str(body["executionId"])


def test_the_event_history_shows_compact_rows_and_the_raw_json_of_an_event(
    page: Page, api: Api, uid: str
) -> None:
    execution_id = run_with_input(api, create(api, input_workflow(f"history-{uid}")))
    username, password = member("viewer")
    sign_in(page, username, password, path=f"/ui/executions/{execution_id}")
    history = page.get_by_test_id("history")
    expect(history.get_by_role("columnheader", name="Summary")).to_be_visible()
    first = history.locator('tr[data-seq="1"]')
    expect(first).to_contain_text("WorkflowStarted")
    expect(first).to_contain_text(f"history-{uid}, 2 nodes")
    completed = history.locator("tr[data-seq]", has_text="NodeExecutionCompleted").first
    expect(completed).to_contain_text("attempt 1: 1 records in")
    expect(history.locator("tr[data-seq]").last).to_contain_text("WorkflowCompleted")
    raw = history.get_by_role("button", name="JSON of event 1")
    expect(raw).to_have_attribute("aria-expanded", "false")
    raw.click()
    expect(raw).to_have_attribute("aria-expanded", "true")
    expect(history.locator("tr.raw pre")).to_contain_text('"type": "WorkflowStarted"')
    expect(history.locator("tr.raw pre")).to_contain_text(f'"executionId": "{execution_id}"')
    history.locator("tr.raw").scroll_into_view_if_needed()
    screenshot(page, "execution-history")
    raw.click()
    expect(history.locator("tr.raw")).to_be_hidden()


def test_the_input_an_output_preview_and_the_logs_show(page: Page, api: Api, uid: str) -> None:
    execution_id = run_with_input(api, create(api, input_workflow(f"io-{uid}")))
    username, password = member("viewer")
    sign_in(page, username, password, path=f"/ui/executions/{execution_id}")
    expect(page.get_by_test_id("input").locator("pre")).to_contain_text('"logicalTime": "2026-01-01T00:00Z"')
    row = page.locator('tr[data-node-id="in"]')
    expect(row).to_contain_text("1 record")
    preview = row.get_by_role("button", name="Output of in")
    preview.click()
    expect(preview).to_have_attribute("aria-expanded", "true")
    expect(page.locator('tr[data-output-of="in"] pre')).to_contain_text('"logicalTime": "2026-01-01T00:00Z"')
    logs = page.get_by_test_id("logs")
    expect(logs.locator("tbody tr").first).to_contain_text(f"Workflow 'io-{uid}' started (2 nodes)")
    line = logs.locator("tbody tr", has_text='{"logicalTime":"2026-01-01T00:00Z"}')  # what console.log wrote
    expect(line.locator("td").nth(1)).to_have_text("out")


def test_a_failed_execution_shows_its_error_and_leads_to_the_failed_node(
    page: Page, api: Api, uid: str, tmp_path: Path
) -> None:
    body = workflow(
        f"failed-{uid}",
        [
            step("nums", "sequence.numbers", "source", start=1, end=2),
            step("late", "file.csv", "source", path=str(tmp_path / "missing.csv")),
            step("count", "aggregate.count", "sink"),
        ],
        [("nums", "count"), ("late", "count")],
    )
    execution_id = start(api, create(api, body))
    assert api.wait_finished(execution_id)["status"] == "failed"
    username, password = member("operator")
    sign_in(page, username, password, path=f"/ui/executions/{execution_id}")
    error = page.get_by_role("region", name="Error")
    expect(error).to_contain_text("Failed node: late")
    expect(error.locator("pre")).to_contain_text("missing.csv")
    error.get_by_role("link", name="late").click()
    expect(page.locator('tr[data-node-id="late"]')).to_be_focused()
    expect(page.locator('svg.graph g.node[data-node-id="late"]')).to_have_attribute("data-selected", "true")
    expect(page.locator('tr[data-node-id="late"]')).to_contain_text("failed")
    assert page.url.endswith(f"/ui/executions/{execution_id}")  # no navigation
    screenshot(page, "execution-failed")


def test_a_500_node_execution_page_loads_whole_within_a_generous_bound(
    page: Page, api: Api, uid: str
) -> None:
    execution_id = start(api, create(api, five_hundred_nodes(f"big-{uid}")))
    assert api.wait_finished(execution_id, timeout=240)["status"] == "completed"
    username, password = person()
    sign_in(page, username, password, path="/ui/workflows")
    page.goto(f"/ui/executions/{execution_id}")
    # a regression to many seconds fails here; the load time itself is measured by bench/console_load.py
    expect(page.locator(".execution-page[data-ready]")).to_be_attached(timeout=10_000)
    expect(page.locator("svg.graph g.node")).to_have_count(500)
    expect(page.locator("table.nodes tbody tr")).to_have_count(500)
    expect(page.get_by_test_id("timeline").locator("tbody tr")).to_have_count(500)
    history = page.get_by_test_id("history")
    expect(history.locator("tr[data-seq]")).to_have_count(100)  # a page, not the whole journal
    history.get_by_role("button", name="Show more events").click()
    expect(history.locator("tr[data-seq]")).to_have_count(200)
    expect(history.locator('tr[data-seq="200"]')).to_be_attached()


def test_a_refused_live_stream_does_not_stop_the_page_following_the_execution(
    page: Page, api: Api, uid: str, tmp_path: Path
) -> None:
    """The gateway answers 429 when its streams are all taken, and EventSource gives up on an HTTP refusal
    for good: the page must refetch and open the stream again, or it shows "running" forever."""
    refused: list[str] = []

    def full_gateway(route: Route) -> None:
        if len(refused) < 3:  # the first three streams are refused, as a busy gateway would
            refused.append(route.request.url)
            route.fulfill(status=429, headers={"Retry-After": "1"}, json={"error": "too_many_streams"})
        else:
            route.continue_()

    page.route("**/api/v1/executions/*/stream*", full_gateway)
    execution_id = start(api, create(api, delayed(f"refused-{uid}", "8s", tmp_path)))
    username, password = person()
    sign_in(page, username, password)
    page.goto(f"/ui/executions/{execution_id}")
    expect(page.locator(".execution-status")).to_contain_text("completed", timeout=60_000)
    assert len(refused) == 3, refused
    assert api.get(f"/api/v1/executions/{execution_id}")[1]["status"] == "completed"
