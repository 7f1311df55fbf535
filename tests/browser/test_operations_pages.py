"""The schedules page (issue 13, item 3) in a real headless Chromium, offline: the list shows each schedule's
next fire time in its own zone; an admin pauses and resumes a schedule through confirmed buttons; a preview
shows the next N fire times; a backfill starts from a form and its progress reaches "completed". A viewer sees
no button that changes a schedule. The cluster page is tested against a real cluster in
tests/cluster/test_console_cluster_page.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from tests.browser.helpers import member, person, screenshot, sign_in, still_the_same_document
from tests.harness import Api
from tests.integration.test_control import create
from tests.integration.test_executions import minimal
from tests.integration.test_schedules import _stop_schedules  # noqa: F401  (autouse: stops this module's schedules)

pytestmark = pytest.mark.usefixtures("live_db")


def add_schedule(api: Api, **body: Any) -> dict[str, Any]:
    status, created = api.post("/api/v1/schedules", body)
    assert status == 201, created
    return dict(created)


def tomorrow_at(hour: int) -> datetime:
    return (timezone.now() + timedelta(days=1)).replace(hour=hour, minute=0, second=0, microsecond=0)


def shown(moment: datetime) -> str:
    """A UTC time as the page writes it for a schedule in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def test_the_list_shows_next_fire_times_and_an_admin_pauses_then_resumes_with_confirmation(
    page: Page, api: Api, uid: str
) -> None:
    workflow_id = create(api, minimal(f"ops-sched-{uid}"))
    hourly = add_schedule(
        api,
        workflowId=workflow_id,
        scheduleType="fixed_rate",
        interval="1h",
        startAt=tomorrow_at(6).isoformat(),
    )
    berlin = add_schedule(
        api,
        workflowId=workflow_id,
        scheduleType="cron",
        cronExpression="30 9 * * *",
        timezone="Europe/Berlin",
    )
    username, password = person()
    sign_in(page, username, password, path=f"/ui/schedules?workflowId={workflow_id}")
    expect(page.get_by_role("heading", name=f"Schedules of {workflow_id}")).to_be_visible()

    row = page.locator(f'tr[data-schedule-id="{hourly["id"]}"]')
    expect(row).to_contain_text("every 1h")
    expect(row).to_contain_text(shown(tomorrow_at(6)))  # its next fire time
    expect(row.get_by_role("link", name=workflow_id)).to_have_attribute(
        "href", f"/ui/workflows/{workflow_id}"
    )
    cron_row = page.locator(f'tr[data-schedule-id="{berlin["id"]}"]')
    expect(cron_row).to_contain_text("cron 30 9 * * *")
    expect(cron_row).to_contain_text("Europe/Berlin")
    expect(cron_row.locator("time").first).to_contain_text("09:30:00")  # in the schedule's own zone

    row.get_by_role("button", name="Pause").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"Pause schedule {hourly['id']}")
    expect(dialog.get_by_role("button", name="Go back")).to_be_focused()
    dialog.get_by_role("button", name="Go back").click()  # nothing is sent
    expect(row.locator("[data-state]")).to_have_text("active")
    assert api.get(f"/api/v1/schedules/{hourly['id']}")[1]["state"] == "active"

    row.get_by_role("button", name="Pause").click()
    page.get_by_role("dialog").get_by_role("button", name="Pause schedule").click()
    expect(row.locator("[data-state]")).to_have_text("paused")
    expect(row).to_contain_text("none while paused")
    expect(page.get_by_role("status").filter(has_text="paused")).to_be_visible()
    assert api.get(f"/api/v1/schedules/{hourly['id']}")[1]["state"] == "paused"

    row.get_by_role("button", name="Resume").click()
    page.get_by_role("dialog").get_by_role("button", name="Resume schedule").click()
    expect(row.locator("[data-state]")).to_have_text("active")
    expect(row).to_contain_text(shown(tomorrow_at(6)))  # the same phase
    assert api.get(f"/api/v1/schedules/{hourly['id']}")[1]["state"] == "active"
    assert still_the_same_document(page)

    cron_row.get_by_role("button", name="Preview").click()
    panel = page.locator(".schedule-panel")
    panel.get_by_label("How many").fill("4")
    panel.get_by_role("button", name="Preview").click()
    expect(panel.get_by_role("listitem")).to_have_count(4)
    expect(panel.get_by_role("listitem").first).to_contain_text("09:30:00")
    screenshot(page, "schedules")


def test_a_preview_shows_as_many_next_fire_times_as_asked(page: Page, api: Api, uid: str) -> None:
    workflow_id = create(api, minimal(f"ops-preview-{uid}"))
    first = tomorrow_at(3)
    schedule = add_schedule(
        api, workflowId=workflow_id, scheduleType="fixed_rate", interval="2h", startAt=first.isoformat()
    )
    username, password = person()
    sign_in(page, username, password, path=f"/ui/schedules?workflowId={workflow_id}")
    page.locator(f'tr[data-schedule-id="{schedule["id"]}"]').get_by_role("button", name="Preview").click()
    panel = page.locator(".schedule-panel")
    expect(panel.get_by_role("heading", name=f"Schedule {schedule['id']}")).to_be_visible()
    count = panel.get_by_label("How many")
    expect(count).to_be_focused()
    count.fill("5")
    panel.get_by_role("button", name="Preview").click()
    times = panel.get_by_role("list", name="Next fire times").get_by_role("listitem")
    expect(times).to_have_text([shown(first + timedelta(hours=2 * k)) for k in range(5)])

    count.fill("2000")  # more than the API allows: the form refuses it before asking
    panel.get_by_role("button", name="Preview").click()
    expect(times).to_have_count(5)
    assert page.evaluate("document.querySelector('#preview-count').validity.rangeOverflow")


def test_an_admin_backfills_a_past_range_and_sees_it_complete(page: Page, api: Api, uid: str) -> None:
    workflow_id = create(api, minimal(f"ops-backfill-{uid}"))
    anchor = (timezone.now() - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    schedule = add_schedule(
        api,
        workflowId=workflow_id,
        scheduleType="fixed_rate",
        interval="1m",
        startAt=anchor.isoformat(),
        enabled=False,
    )
    username, password = person()
    sign_in(page, username, password, path=f"/ui/schedules?workflowId={workflow_id}")
    page.locator(f'tr[data-schedule-id="{schedule["id"]}"]').get_by_role("button", name="Backfill").click()
    panel = page.locator(".schedule-panel")
    local = (  # an ISO time as the browser's datetime-local field takes it, in the browser's zone
        "iso => { const d = new Date(iso);"
        " return new Date(d - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19); }"
    )
    panel.get_by_label("Start").fill(page.evaluate(local, anchor.isoformat()))
    panel.get_by_label("End").fill(page.evaluate(local, (anchor + timedelta(minutes=4)).isoformat()))
    panel.get_by_label("At most active at once").fill("2")
    panel.get_by_role("button", name="Start backfill").click()
    page.get_by_role("dialog").get_by_role("button", name="Start backfill").click()

    progress = panel.locator(".backfill-progress")
    expect(progress).to_contain_text("of 4 started")
    expect(progress.locator(".backfill-state")).to_have_text("completed", timeout=60_000)
    expect(progress).to_contain_text("4 of 4 started")
    screenshot(page, "schedules-backfill")
    status, executions = api.get(f"/api/v1/executions?workflowId={workflow_id}")
    assert status == 200 and {e["trigger"] for e in executions["executions"]} == {"backfill"}
    assert len(executions["executions"]) == 4

    panel.get_by_label("End").fill(page.evaluate(local, (timezone.now() + timedelta(days=1)).isoformat()))
    panel.get_by_role("button", name="Start backfill").click()
    page.get_by_role("dialog").get_by_role("button", name="Start backfill").click()
    # the API's own message
    expect(page.get_by_role("alert").filter(has_text="covers the past")).to_be_visible()


def test_a_viewer_sees_schedules_and_previews_but_no_button_that_changes_them(
    page: Page, api: Api, uid: str
) -> None:
    workflow_id = create(api, minimal(f"ops-viewer-{uid}"))
    schedule = add_schedule(
        api,
        workflowId=workflow_id,
        scheduleType="fixed_rate",
        interval="1h",
        startAt=tomorrow_at(7).isoformat(),
    )
    username, password = member("viewer")
    sign_in(page, username, password, path=f"/ui/schedules?workflowId={workflow_id}")
    row = page.locator(f'tr[data-schedule-id="{schedule["id"]}"]')
    expect(row).to_contain_text(shown(tomorrow_at(7)))
    expect(row.get_by_role("button")).to_have_text(["Preview"])
    expect(page.get_by_text("pausing, resuming and backfills are for admins")).to_be_visible()
    row.get_by_role("button", name="Preview").click()
    panel = page.locator(".schedule-panel")
    expect(panel.get_by_label("How many")).to_be_visible()
    expect(panel.get_by_label("Start")).to_have_count(0)  # no backfill form
    expect(page.locator("main")).not_to_contain_text("null")
