"""The gateway's pages in a real headless Chromium, offline: the API docs render every route from assets the
gateway serves itself, and a person signed in through Django's login can use the API with that session."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect


def test_the_api_docs_render_offline(page: Page) -> None:
    page.goto("/api/docs/")
    operations = page.locator(".opblock")
    expect(operations.first).to_be_visible(timeout=30_000)
    assert operations.count() >= 40  # every route of the schema, drawn from the gateway's own assets


def test_a_person_signs_in_and_reads_the_api_with_the_session(
    page: Page, node: dict[str, Any], live_db: None
) -> None:
    username, password = f"person-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    get_user_model().objects.create_superuser(username, f"{username}@example.invalid", password)
    page.goto("/admin/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(
        page.get_by_role("link", name="Log out").or_(page.get_by_role("button", name="Log out"))
    ).to_be_visible()
    response = page.goto("/api/v1/auth/session")
    assert response is not None and response.status == 200
    session = json.loads(page.locator("body").inner_text())
    assert session["username"] == username, session
