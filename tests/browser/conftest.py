"""Browser tests: Debian's Chromium, headless, driven by Playwright for Python through ``executable_path``
(Playwright's own browser download is blocked here, and never used). ``./test`` installs the ``chromium``
package as root when it is missing; ``WORKFLOW_CHROMIUM`` names another binary; ``WORKFLOW_SKIP_BROWSER=1``
skips these tests where neither is possible.

Every page is loaded with the network cut to the gateway: a request to any other host is refused and
recorded, and a test fails if a page tried one (the console and the API docs must work offline, no CDN).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright


def chromium_path() -> str:
    found = os.environ.get("WORKFLOW_CHROMIUM") or shutil.which("chromium")
    if found:
        return found
    if os.environ.get("WORKFLOW_SKIP_BROWSER"):
        pytest.skip("WORKFLOW_SKIP_BROWSER is set and Chromium is not installed")
    pytest.fail(
        "Chromium not found: ./test installs Debian's chromium as root; install it (apt-get install "
        "chromium), set WORKFLOW_CHROMIUM to a Chromium binary, or WORKFLOW_SKIP_BROWSER=1 to skip the tests"
    )


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Chromium, for this module's ``browser`` fixture and for other test folders (the cluster
    page's test drives a scenario's gateway)."""
    # as root (CI), Chromium refuses to start with its sandbox: the pages are our own, on loopback
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    # Playwright's sync API keeps an event loop running in this thread, which Django's guard takes for async
    # code; the tests' ORM calls are plain synchronous ones, so the guard is lifted while the browser runs
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=args)
            yield launched
            launched.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One browser per test module: its event loop and the lifted guard below end with the module."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser, node: dict[str, Any]) -> Iterator[Page]:
    with offline_page(browser, node["api"].base) as opened:
        yield opened


@contextlib.contextmanager
def offline_page(browser: Browser, base: str) -> Iterator[Page]:
    """A page of a new context on ``base``, with every other host refused (and the test failed), and the
    test failed too by any uncaught script error: a page broken half-way must not pass for a slow one."""
    context = browser.new_context(base_url=base)
    outside: list[str] = []
    script_errors: list[str] = []

    def offline(route: Route) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", offline)
    opened = context.new_page()
    opened.on(
        "pageerror", lambda error: script_errors.append(f"{error.name}: {error.message}\n{error.stack}")
    )
    yield opened
    context.close()
    assert not outside, f"the page tried to reach other hosts: {outside}"
    assert not script_errors, "uncaught script errors in the console:\n" + "\n".join(script_errors)
