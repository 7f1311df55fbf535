"""The web console (issue 13, first slice) in a real headless Chromium, offline: a person signs in through its
form, finds a workflow, follows an execution live to "completed" without the page reloading, pages through
executions by cursor, and signs out. Each page's screenshot goes to docs/ui/ for docs/ui.md."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import member, person, screenshot, sign_in, still_the_same_document
from tests.harness import Api
from tests.integration.test_control import create, delayed, signal_workflow, start

pytestmark = pytest.mark.usefixtures("live_db")


def test_the_site_root_opens_the_console_which_asks_to_sign_in(page: Page) -> None:
    page.goto("/")
    assert page.url.endswith("/ui/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_label("Username")).to_be_focused()  # ready for the keyboard
    screenshot(page, "sign-in")


def test_a_wrong_password_shows_the_apis_message(page: Page) -> None:
    username, _ = person()
    page.goto("/ui/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Unable to log in with this username and password.")
    expect(page.get_by_test_id("user")).to_have_count(0)


def test_a_person_signs_in_finds_a_workflow_by_search_and_tag_and_signs_out(
    page: Page, api: Api, uid: str, tmp_path: Path
) -> None:
    tag = f"console-{uid}"
    create(api, {**delayed(f"console-wf-{uid}", "1s", tmp_path), "tags": [tag, "demo"]})
    create(api, delayed(f"console-other-{uid}", "1s", tmp_path))
    username, password = person()
    sign_in(page, username, password)
    assert page.url.endswith("/ui/workflows")
    expect(page.get_by_test_id("roles")).to_contain_text("admin")
    rows = page.locator("tbody tr")
    page.get_by_label("Search").fill(uid)
    expect(rows).to_have_count(2)
    page.locator(f'tr[data-workflow-id="console-wf-{uid}"]').get_by_role("button", name=tag).click()
    expect(rows).to_have_count(1)
    expect(page.get_by_role("link", name=f"console-wf-{uid}")).to_be_visible()
    screenshot(page, "workflows")
    page.get_by_role("button", name="Show all tags").click()
    expect(rows).to_have_count(2)

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert still_the_same_document(page)
    page.reload()  # the session is really over, not just hidden
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_an_execution_page_follows_the_run_live_to_completed_without_a_reload(
    page: Page, api: Api, uid: str, tmp_path: Path
) -> None:
    workflow_id = create(api, delayed(f"console-live-{uid}", "6s", tmp_path))
    execution_id = start(api, workflow_id)
    username, password = person()
    sign_in(page, username, password)

    page.get_by_role("navigation", name="Pages").get_by_role("link", name="Executions").click()
    expect(page.get_by_role("heading", name="Executions", exact=True)).to_be_visible()
    page.get_by_role("link", name=execution_id).click()
    expect(page.get_by_role("heading", name=f"Execution {execution_id}")).to_be_visible()
    assert page.url.endswith(f"/ui/executions/{execution_id}")

    wait = page.locator('svg.graph g.node[data-node-id="wait"]')
    expect(wait).to_have_attribute("data-status", "waiting", timeout=20_000)  # on its timer, drawn as such
    expect(page.locator(".execution-status")).to_contain_text("running")
    screenshot(page, "execution-running")

    expect(page.locator(".execution-status")).to_contain_text("completed", timeout=60_000)
    graph_nodes = page.locator("svg.graph g.node")
    expect(graph_nodes).to_have_count(3)
    for node_id in ("nums", "wait", "out"):
        node = page.locator(f'svg.graph g.node[data-node-id="{node_id}"]')
        expect(node).to_have_attribute("data-status", "completed")
        expect(node.locator("text.state")).to_have_text("completed")  # text, not colour alone
    expect(page.locator('tbody tr[data-node-id="out"] .status')).to_have_text("completed")
    assert still_the_same_document(page), "the page reloaded instead of updating in place"
    screenshot(page, "execution")


def test_the_executions_list_filters_by_status_and_pages_by_cursor(
    page: Page, api: Api, uid: str, tmp_path: Path
) -> None:
    workflow_id = create(api, delayed(f"console-list-{uid}", "100ms", tmp_path))
    first, second = start(api, workflow_id), start(api, workflow_id)
    for execution_id in (first, second):
        assert api.wait_finished(execution_id)["status"] == "completed"
    username, password = person()
    sign_in(page, username, password, path=f"/ui/executions?workflowId={workflow_id}&limit=1")

    rows = page.locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-execution-id", second)  # newest first
    page.get_by_role("link", name="Next page").click()
    expect(rows.first).to_have_attribute("data-execution-id", first)
    expect(page.get_by_role("link", name="Next page")).to_have_count(0)  # the last page
    page.get_by_role("link", name="First page").click()
    expect(rows.first).to_have_attribute("data-execution-id", second)

    page.get_by_label("Status").select_option("failed")
    expect(page.get_by_text("No executions match.")).to_be_visible()
    assert "status=failed" in page.url
    page.get_by_label("Status").select_option("completed")
    expect(rows.first).to_have_attribute("data-execution-id", second)
    page.get_by_role("link", name="All workflows").click()
    expect(page.get_by_role("heading", name="Executions", exact=True)).to_be_visible()
    page.go_back()  # the browser's history follows the console's pages
    expect(page.get_by_role("heading", name=f"Executions of {workflow_id}")).to_be_visible()
    assert still_the_same_document(page)


def test_an_unknown_console_path_says_so(page: Page) -> None:
    username, password = person()
    sign_in(page, username, password, path="/ui/nowhere")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()


def test_an_operator_cancels_a_waiting_execution_after_confirming_and_sees_it_cancelled_live(
    page: Page, api: Api, uid: str, tmp_path: Path
) -> None:
    execution_id = start(api, create(api, delayed(f"console-cancel-{uid}", "60s", tmp_path)))
    username, password = member("operator")
    sign_in(page, username, password, path=f"/ui/executions/{execution_id}")
    wait = page.locator('svg.graph g.node[data-node-id="wait"]')
    expect(wait).to_have_attribute("data-status", "waiting", timeout=20_000)
    actions = page.get_by_test_id("actions")
    expect(actions.get_by_role("button", name="Pause")).to_be_visible()
    expect(actions.get_by_role("button", name="Resume")).to_have_count(0)  # only for a paused execution
    expect(actions.get_by_role("button", name="Approve")).to_have_count(0)  # an operator does not approve
    screenshot(page, "execution-actions")

    actions.get_by_role("button", name="Cancel execution").click()
    dialog = page.get_by_role("dialog", name="Cancel this execution?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Go back").click()  # a second thought sends nothing
    expect(dialog).to_have_count(0)
    assert api.get(f"/api/v1/executions/{execution_id}")[1]["status"] == "running"

    actions.get_by_role("button", name="Cancel execution").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel execution").click()
    expect(page.locator(".execution-status")).to_contain_text("cancelled", timeout=30_000)
    expect(actions.get_by_role("button", name="Cancel execution")).to_have_count(0)  # no longer applies
    expect(actions.get_by_role("button", name="Rerun")).to_be_visible()
    assert still_the_same_document(page), "the page reloaded instead of updating in place"


def test_an_api_refusal_of_an_action_shows_in_the_alert(page: Page, api: Api, uid: str) -> None:
    execution_id = start(api, create(api, signal_workflow(f"console-refused-{uid}")))
    username, password = member("operator")  # may send signals, but not an approval's
    sign_in(page, username, password, path=f"/ui/executions/{execution_id}")
    actions = page.get_by_test_id("actions")
    actions.get_by_label("Signal name").fill("approve")
    actions.get_by_label("Payload (JSON)").fill('{"comment": "me too"}')
    actions.get_by_role("button", name="Send signal").click()
    page.get_by_role("dialog", name='Send signal "approve" to this execution?').get_by_role(
        "button", name="Send signal"
    ).click()
    expect(actions.get_by_role("alert")).to_contain_text("approve_execution")  # the API's 403, as it said it
    actions.get_by_label("Payload (JSON)").fill("{not json")
    actions.get_by_role("button", name="Send signal").click()
    expect(actions.get_by_role("alert")).to_contain_text("Payload: not valid JSON")
    expect(page.get_by_role("dialog")).to_have_count(0)  # nothing to confirm: nothing is sent


def test_an_approver_approves_a_waiting_approval_with_a_comment_and_sees_it_completed(
    page: Page, api: Api, uid: str
) -> None:
    execution_id = start(api, create(api, signal_workflow(f"console-approve-{uid}")))
    username, password = member("approver")
    sign_in(page, username, password, path=f"/ui/executions/{execution_id}")
    actions = page.get_by_test_id("actions")
    expect(actions.get_by_role("button", name="Approve")).to_have_count(0)  # the approval does not wait yet
    expect(actions.get_by_role("button", name="Cancel execution")).to_have_count(
        0
    )  # an approver only approves
    assert api.post(f"/api/v1/executions/{execution_id}/signals/order", {"item": "book"})[0] == 202

    approval = actions.locator('fieldset[data-node-id="gate"]')
    expect(approval.get_by_role("button", name="Approve")).to_be_visible(timeout=20_000)  # appears live
    approval.get_by_label("Comment").fill("fine by me")
    approval.get_by_role("button", name="Approve").click()
    dialog = page.get_by_role("dialog", name='Approve gate? Comment: "fine by me"')
    expect(dialog).to_be_visible()
    screenshot(page, "execution-approval")
    dialog.get_by_role("button", name="Approve").click()
    expect(page.locator(".execution-status")).to_contain_text("completed", timeout=30_000)
    expect(actions.get_by_role("button")).to_have_count(0)
    gate = next(n for n in api.get(f"/api/v1/executions/{execution_id}")[1]["nodes"] if n["nodeId"] == "gate")
    assert gate["approvedBy"] == username
    assert still_the_same_document(page)


def test_a_viewer_sees_an_execution_without_any_action_button(page: Page, api: Api, uid: str) -> None:
    execution_id = start(api, create(api, signal_workflow(f"console-viewer-{uid}")))
    api.post(f"/api/v1/executions/{execution_id}/signals/order", {"item": "book"})
    username, password = member("viewer")
    sign_in(page, username, password, path=f"/ui/executions/{execution_id}")
    gate = page.locator('svg.graph g.node[data-node-id="gate"]')
    expect(gate).to_have_attribute(
        "data-status", "waiting", timeout=20_000
    )  # an approval that waits, even so
    actions = page.get_by_test_id("actions")
    expect(actions).to_contain_text("Your role (viewer) may only read.")
    expect(actions.get_by_role("button")).to_have_count(0)
    expect(actions.get_by_role("textbox")).to_have_count(0)
    expect(page.get_by_role("main").locator("button:not(.view)")).to_have_count(0)  # views, not actions
