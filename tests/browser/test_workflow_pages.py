"""The console's workflow pages (issue 13 item 1) in a real headless Chromium: the list pages through the API
(``limit``/``offset`` with ``X-Total-Count``), searches through its ``q`` and shows each workflow's last runs
as marks that link to the executions and say their status in text; a workflow page draws the graph by node
category, opens a node's config on a click or Enter, diffs two versions, lists schedules and recent
executions, and runs the workflow with an input typed in a form (refused before sending when it is not a
JSON object; the API's refusal shown). A viewer sees no Run, a draft shows its problems instead."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import member, person, screenshot, sign_in, still_the_same_document
from tests.harness import Api, wait_for
from tests.integration.test_control import create, delayed, start
from tests.integration.test_executions import step, workflow

pytestmark = pytest.mark.usefixtures("live_db")

PAGE = 25  # workflows.js's page size


def with_input(workflow_id: str) -> dict[str, Any]:
    return workflow(
        workflow_id,
        [step("in", "execution.input", "source"), step("out", "console.log", "sink")],
        [("in", "out")],
    )


def test_the_list_shows_each_workflows_last_runs_and_pages_with_next_and_previous(
    page: Page, api: Api, uid: str, tmp_path: Path
) -> None:
    tag = f"paged-{uid}"
    ids = [
        create(api, {**delayed(f"list-{uid}-{n:02}", "10ms", tmp_path), "tags": [tag]})
        for n in range(PAGE + 2)
    ]
    done = [start(api, ids[0]) for _ in range(2)]
    for execution_id in done:
        assert api.wait_finished(execution_id)["status"] == "completed"
    waiting = create(api, {**delayed(f"list-{uid}-waits", "1h", tmp_path), "tags": [tag]})
    running = start(api, waiting)
    wait_for("the run to start", lambda: api.get(f"/api/v1/executions/{running}")[1]["status"] == "running")
    username, password = person()
    sign_in(page, username, password, path=f"/ui/workflows?tag={tag}")

    rows = page.locator("tbody tr")
    expect(page.get_by_test_id("workflow-count")).to_have_text(f"Workflows 1\u2013{PAGE} of {PAGE + 3}")
    expect(rows).to_have_count(PAGE)
    first = page.locator(f'tr[data-workflow-id="{ids[0]}"]')
    marks = first.get_by_role("link", name="completed")
    expect(marks).to_have_count(2)
    expect(marks.first).to_have_attribute("href", f"/ui/executions/{done[1]}")  # newest first
    expect(marks.first.locator(".visually-hidden")).to_have_text("completed")  # the status in words
    expect(page.locator(f'tr[data-workflow-id="{ids[1]}"]')).to_contain_text("no runs yet")
    screenshot(page, "workflows")

    page.get_by_role("link", name="Next page").click()
    expect(page.get_by_test_id("workflow-count")).to_have_text(
        f"Workflows {PAGE + 1}\u2013{PAGE + 3} of {PAGE + 3}"
    )
    expect(rows).to_have_count(3)
    expect(page.get_by_role("link", name="Next page")).to_have_count(0)
    mark = page.locator(f'tr[data-workflow-id="{waiting}"] a.run-mark')
    expect(mark).to_have_attribute("data-status", "running")
    expect(mark).to_have_attribute("aria-label", re.compile(rf"^Execution {running}: running, started "))
    assert api.post(f"/api/v1/executions/{running}/cancel")[0] == 202
    page.get_by_role("link", name="Previous page").click()
    expect(rows).to_have_count(PAGE)
    marks.first.click()  # a mark is a link to its execution
    expect(page.get_by_role("heading", name=f"Execution {done[1]}")).to_be_visible()
    assert still_the_same_document(page)


def test_the_search_box_asks_the_api_and_the_link_opens_the_workflow(
    page: Page, api: Api, uid: str, tmp_path: Path
) -> None:
    word = f"needle{uid}"
    found = create(api, {**delayed(f"search-{uid}-a", "10ms", tmp_path), "description": f"has the {word}"})
    create(api, delayed(f"search-{uid}-b", "10ms", tmp_path))
    username, password = person()
    sign_in(page, username, password)
    with page.expect_request(lambda request: f"/api/v1/workflows?q={word.upper()}" in request.url):
        page.get_by_label("Search").fill(word.upper())
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-workflow-id", found)
    assert f"q={word.upper()}" in page.url  # the search can be shared or reloaded
    page.get_by_role("link", name=found).click()
    expect(page.get_by_role("heading", name=f"Workflow {found}")).to_be_visible()


def test_the_workflow_page_draws_the_graph_by_category_and_a_node_opens_its_config(
    page: Page, api: Api, uid: str, tmp_path: Path
) -> None:
    workflow_id = create(api, delayed(f"page-{uid}", "10ms", tmp_path))
    execution_id = start(api, workflow_id)
    api.wait_finished(execution_id)
    schedule = {
        "workflowId": workflow_id,
        "name": f"yearly-{uid}",
        "scheduleType": "cron",
        "cronExpression": "0 0 1 1 *",
    }
    assert api.post("/api/v1/schedules", schedule)[0] == 201
    username, password = person()
    sign_in(page, username, password, path=f"/ui/workflows/{workflow_id}")

    expect(page.get_by_role("heading", name=f"Workflow {workflow_id}")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("null")  # no absent part written as text
    nodes = page.locator("svg.graph g.node")
    expect(nodes).to_have_count(3)
    expect(page.locator("svg.graph line.edge")).to_have_count(2)
    source = page.locator('g.node[data-node-id="nums"]')
    expect(source).to_have_attribute("data-category", "source")
    expect(source.locator("text.kind")).to_have_text(
        re.compile(r"^source · sequence\.numb")
    )  # text, not colour alone
    expect(page.locator('g.node[data-node-id="out"]')).to_have_attribute("data-category", "sink")

    page.locator('g.node[data-node-id="wait"]').click()
    panel = page.get_by_test_id("node-panel")
    expect(panel.get_by_role("heading", name="Node wait")).to_be_visible()
    assert json.loads(panel.get_by_test_id("node-config").inner_text()) == {"duration": "10ms"}
    expect(panel).to_contain_text("transform")
    page.locator('g.node[data-node-id="out"]').focus()  # the keyboard: a node is a button
    page.keyboard.press("Enter")
    expect(panel.get_by_role("heading", name="Node out")).to_be_visible()
    expect(panel).to_contain_text("file.text")

    expect(page.locator(f"tr[data-schedule-id] >> text=yearly-{uid}")).to_be_visible()
    expect(page.get_by_role("link", name="Manage schedules")).to_have_attribute("href", "/ui/schedules")
    expect(page.get_by_role("link", name=execution_id)).to_have_attribute(
        "href", f"/ui/executions/{execution_id}"
    )
    expect(page.get_by_role("link", name="Edit")).to_have_attribute("href", f"/ui/editor/{workflow_id}")
    screenshot(page, "workflow")
    page.get_by_role("link", name=f"All executions of {workflow_id}").click()
    expect(page.get_by_role("heading", name=f"Executions of {workflow_id}")).to_be_visible()


def test_a_diff_between_two_versions_marks_the_changed_lines(
    page: Page, api: Api, uid: str, tmp_path: Path
) -> None:
    workflow_id = create(api, delayed(f"diff-{uid}", "10ms", tmp_path))
    assert (
        api.call("PUT", f"/api/v1/workflows/{workflow_id}", delayed(workflow_id, "20ms", tmp_path))[0] == 200
    )
    username, password = person()
    sign_in(page, username, password, path=f"/ui/workflows/{workflow_id}")

    expect(page.get_by_label("From version")).to_have_value("1")
    expect(page.get_by_label("To version")).to_have_value("2")
    page.get_by_role("button", name="Show diff").click()
    expect(page.locator(".diff li.removed")).to_have_text(['-         "duration": "10ms"'])
    expect(page.locator(".diff li.added")).to_have_text(['+         "duration": "20ms"'])
    expect(page.get_by_role("status").filter(has_text="added (+)")).to_have_text(
        "1 line added (+), 1 line removed (-)."
    )
    screenshot(page, "workflow-diff")
    page.get_by_label("From version").select_option("2")
    page.get_by_role("button", name="Show diff").click()
    expect(page.get_by_text("The two versions are the same.")).to_be_visible()


def test_run_sends_the_typed_input_and_lands_on_the_new_execution(page: Page, api: Api, uid: str) -> None:
    workflow_id = create(api, with_input(f"run-{uid}"))
    username, password = member("operator")
    sign_in(page, username, password, path=f"/ui/workflows/{workflow_id}")
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)  # editing is for admins
    page.get_by_label("Input (a JSON object)").fill('{"n": 7, "who": "ann"}')
    screenshot(page, "workflow-run")
    page.get_by_role("button", name="Run").click()

    page.wait_for_url(re.compile(r"/ui/executions/[^/]+$"))
    execution_id = page.url.rsplit("/", 1)[1]
    expect(page.get_by_role("heading", name=f"Execution {execution_id}")).to_be_visible()
    status, execution = api.get(f"/api/v1/executions/{execution_id}")
    assert status == 200 and execution["workflowId"] == workflow_id
    assert execution["input"] == {"n": 7, "who": "ann"}
    assert still_the_same_document(page)


def test_run_refuses_input_that_is_not_a_json_object_and_shows_the_apis_refusal(
    page: Page, api: Api, uid: str
) -> None:
    workflow_id = create(api, with_input(f"bad-input-{uid}"))
    username, password = member("operator")
    sign_in(page, username, password, path=f"/ui/workflows/{workflow_id}")
    box, run = page.get_by_label("Input (a JSON object)"), page.get_by_role("button", name="Run")
    alert = page.locator("#run-alert")
    box.fill("{not json")
    run.click()
    expect(alert).to_contain_text("Input: not valid JSON")
    expect(box).to_have_attribute("aria-invalid", "true")
    box.fill("[1, 2]")
    run.click()
    expect(alert).to_have_text('Input: must be a JSON object, such as {"n": 1}.')
    assert api.get(f"/api/v1/executions?workflowId={workflow_id}")[1]["executions"] == []  # nothing sent

    # meanwhile an admin saves a draft: the API refuses the start, and says why
    draft = {"id": workflow_id, "name": "half", "nodes": [], "edges": []}
    assert api.call("PUT", f"/api/v1/workflows/{workflow_id}", draft)[0] == 200
    box.fill("{}")
    run.click()
    expect(alert).to_contain_text("is a draft")
    expect(alert).to_contain_text("nodes: ")
    assert page.url.endswith(f"/ui/workflows/{workflow_id}")


def test_a_viewer_sees_no_run_and_a_draft_shows_its_problems_instead(page: Page, api: Api, uid: str) -> None:
    workflow_id = create(api, with_input(f"viewer-{uid}"))
    draft_id = f"draft-{uid}"
    status, created = api.post("/api/v1/workflows", {"id": draft_id, "name": "n", "nodes": [], "edges": []})
    assert status == 201 and created["valid"] is False
    username, password = member("viewer")
    sign_in(page, username, password, path=f"/ui/workflows/{workflow_id}")
    expect(page.locator("svg.graph g.node")).to_have_count(2)
    expect(page.get_by_role("button", name="Run")).to_have_count(0)
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    expect(page.get_by_text("Your role (viewer) may not start executions.")).to_be_visible()

    username, password = person()
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, username, password, path=f"/ui/workflows/{draft_id}")
    problems = page.get_by_test_id("problems")
    expect(problems).to_contain_text("nodes: A workflow needs at least one node.")
    expect(page.get_by_role("button", name="Run")).to_have_count(0)
    expect(page.get_by_text("No nodes yet.")).to_be_visible()


def chain(workflow_id: str, size: int) -> dict[str, Any]:
    middle = [f"m{i:03}" for i in range(size - 2)]
    ids = ["s", *middle, "k"]
    nodes = [
        step("s", "sequence.numbers", "source", start=1, end=2),
        *(step(m, "map", "transform", expression="$ + 1") for m in middle),
        step("k", "console.log", "sink"),
    ]
    return workflow(workflow_id, nodes, list(itertools.pairwise(ids)))


def test_a_500_node_workflow_page_draws_every_node_and_stays_usable(page: Page, api: Api, uid: str) -> None:
    """Not a timing assertion: the load time is printed for docs/benchmarks.md (run with -s)."""
    workflow_id = create(api, chain(f"big-{uid}", 500))
    username, password = person()
    sign_in(page, username, password)
    started = page.evaluate("performance.now()")
    path = f"/ui/workflows/{workflow_id}"
    go = f"history.pushState(null, '', '{path}'); dispatchEvent(new PopStateEvent('popstate'))"
    page.evaluate(go)  # the console's own navigation, as a click on a link
    expect(page.locator("svg.graph g.node")).to_have_count(500)
    drawn = page.evaluate("performance.now()") - started
    page.locator('g.node[data-node-id="m250"]').click()
    expect(page.get_by_test_id("node-panel").get_by_role("heading", name="Node m250")).to_be_visible()
    print(f"\n500-node workflow page: graph drawn {drawn:.0f} ms after the route changed")
