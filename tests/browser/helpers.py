"""What every browser test of the console does: make a person who signs in with a password, sign them in
through the console's form, take a page's screenshot for docs/ui.md, and tell whether the document was
reloaded since (a live page must never reload)."""

from __future__ import annotations

import uuid
from pathlib import Path

from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect

from tests.conftest import make_token

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "ui"
MARKER = "window.consoleMarker"  # set once after a load; a reload would lose it


def person() -> tuple[str, str]:
    username, password = f"person-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    get_user_model().objects.create_superuser(username, f"{username}@example.invalid", password)
    return username, password


def member(role: str) -> tuple[str, str]:
    """A user in ``role``'s group (as ``manage.py user_role`` puts them) who signs in with a password."""
    username, password = f"{role}-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    make_token(username, role)
    user = get_user_model().objects.get(username=username)
    user.set_password(password)
    user.save(update_fields=["password"])
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
