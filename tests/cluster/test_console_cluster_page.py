"""The console's cluster page (issue 13, item 4) read in a real headless Chromium while workers stop: a
real cluster of its own (PostgreSQL database, Redis, a coordinator, two workers and a gateway), a person
signed in to its gateway. A SIGKILLed worker shows "down" and its shards, marked as moved from it, go to the
live worker; once the last worker has stopped too, the page warns in plain words that no live worker owns
the shards."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import pytest
from django.contrib.auth.hashers import make_password
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import chromium, offline_page
from tests.browser.helpers import screenshot, sign_in, still_the_same_document
from tests.cluster.conftest import Scenario

pytestmark = pytest.mark.cluster

FAILOVER = 30_000  # ms: the liveness TTL of the test profile, the leader's next round and a page refresh


def with_password(s: Scenario, username: str = "cluster") -> str:
    """Give the scenario database's API user a password to sign in with (it has only a token)."""
    password = secrets.token_hex(12)
    updated = s.rows(
        "UPDATE auth_user SET password = %s WHERE username = %s RETURNING id",
        [make_password(password), username],
    )
    assert updated, f"no user {username} in the scenario database"
    return password


def member_row(page: Page, node_id: str) -> tuple[Locator, Locator]:
    """The liveness and shard-count cells of a member's row."""
    row = page.locator(f'[data-testid="members"] tr[data-node-id="{node_id}"]')
    return row.locator(".member-status"), row.locator(".member-shards")


def test_the_cluster_page_shows_a_stopped_worker_down_its_shards_handed_over_then_the_no_worker_warning(
    make_scenario: Callable[..., Scenario],
) -> None:
    s = make_scenario(env={"WORKFLOW_MIN_NR_OF_MEMBERS": "2"})
    api = s.gateway()
    s.coordinator("c1")
    s.worker("w1")
    s.worker("w2")
    ids = s.wait_ready(["w1", "w2"])
    w1, w2 = ids["w1"], ids["w2"]
    password = with_password(s)

    with chromium() as browser, offline_page(browser, api.base) as page:
        sign_in(page, "cluster", password, path="/ui/cluster")
        expect(page.get_by_role("heading", name="Cluster", exact=True)).to_be_visible()
        term, leader = s.term()
        expect(page.get_by_test_id("leader")).to_have_text(f"{leader} (term {term})")
        cells = page.get_by_test_id("shard-map").get_by_role("listitem")
        expect(cells).to_have_count(100)
        warning = page.locator(".cluster-warning")
        for node_id in (w1, w2):
            status, shards = member_row(page, node_id)
            expect(status).to_have_text("up")
            expect(shards).to_have_text(str(len(s.owned(node_id))))
        expect(page.locator(f'.shard-map li[data-owner="{w2}"]')).to_have_count(len(s.owned(w2)))
        expect(warning).to_have_text("")
        screenshot(page, "cluster")
        lost = sorted(s.owned(w2))
        assert lost, "w2 owns no shard; stopping it would show nothing"

        s.proc("w2").kill()  # SIGKILL: its liveness key expires, the leader fails its shards over to w1
        status, shards = member_row(page, w2)
        expect(status).to_have_text("down", timeout=FAILOVER)
        expect(member_row(page, w1)[1]).to_have_text("100", timeout=FAILOVER)
        expect(shards).to_have_text("0")
        moved = page.locator(f'.shard-map li[data-moved="true"][data-owner="{w1}"]')
        expect(moved).to_have_count(len(lost))
        first = page.locator(f'.shard-map li[data-shard-id="{lost[0]}"]')
        expect(first).to_have_attribute("data-owner", w1)
        title = first.get_attribute("title") or ""
        assert f"owner {w1} (up)" in title and f"moved from {w2} at " in title, title
        assert "(failover)" in title, title
        expect(page.get_by_test_id("recent-moves")).to_contain_text(
            f"{len(lost)} shards {w2} → {w1} (failover)"
        )
        expect(page.get_by_test_id("failovers")).to_contain_text(f"{w2} stopped answering")
        expect(page.get_by_test_id("failovers")).to_contain_text(
            f"its {len(lost)} shards failed over to {w1}"
        )
        moves = page.get_by_test_id("events").locator('tr[data-event-type="shard_rebalance"]')
        expect(moves.first).to_contain_text(
            f"shard_rebalance \u00d7{len(lost)}"
        )  # one row for the whole move
        expect(moves.first).to_contain_text(f"{len(lost)} from {w2} to {w1} (failover)")
        expect(warning).to_have_text("")  # the live worker owns every shard again
        screenshot(page, "cluster-failover")

        s.proc("w1").stop()  # SIGTERM, the last worker: nothing is left to take the shards
        expect(member_row(page, w1)[0]).to_have_text("left", timeout=FAILOVER)
        expect(warning).to_contain_text("Cluster Down: no live worker", timeout=FAILOVER)
        expect(warning).to_contain_text("No execution moves on until a live worker owns the shards")
        expect(warning).to_contain_text(f"Shards: 100 owned by {w1} (left).")
        expect(warning).to_have_attribute("role", "alert")
        screenshot(page, "cluster-no-worker")
        assert still_the_same_document(page), "the page reloaded instead of refreshing in place"
