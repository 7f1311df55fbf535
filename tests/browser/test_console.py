"""The web console (issue 13, first slice) in a real headless Chromium, offline: a person signs in through its
form, finds a workflow, follows an execution live to "completed" without the page reloading, pages through
executions by cursor, and signs out. Each page's screenshot goes to docs/ui/ for docs/ui.md."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect

from tests.harness import Api
from tests.integration.test_control import create, delayed, start

pytestmark = pytest.mark.usefixtures("live_db")

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "ui"
MARKER = "window.consoleMarker"  # set once after a load; a reload would lose it


def person() -> tuple[str, str]:
    username, password = f"person-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    get_user_model().objects.create_superuser(username, f"{username}@example.invalid", password)
    return username, password


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, username: str, password: str, path: str = "/ui/") -> None:
    page.goto(path)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("user")).to_have_text(username)
    page.evaluate(f"{MARKER} = 'loaded once'")


def still_the_same_document(page: Page) -> bool:
    return bool(page.evaluate(f"{MARKER} === 'loaded once'"))


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
    screenshot(page, "executions")
    page.go_back()  # the browser's history follows the console's pages
    expect(page.get_by_role("heading", name=f"Executions of {workflow_id}")).to_be_visible()
    assert still_the_same_document(page)


def test_an_unknown_console_path_says_so(page: Page) -> None:
    username, password = person()
    sign_in(page, username, password, path="/ui/nowhere")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
