"""Headless Chromium for tests (Debian's chromium, driven by Playwright): missing is a failure."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = os.environ.get("FIELDCHECK_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def chromium() -> Iterator[Any]:
    """Per test: Playwright's sync API marks an event loop as running in this thread while it is
    open, which would break later tests that run their own loop."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium is not at {CHROMIUM}: ./scripts/test installs it (Debian package chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def offline_page(browser: Any, **context_options: Any) -> tuple[Any, list[str]]:
    """A page that may load only file:, data: and about: URLs; every other request is recorded and refused."""
    context = browser.new_context(**context_options)
    attempted: list[str] = []

    def guard(route: Any) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:", "about:")):
            route.continue_()
        else:
            attempted.append(url)
            route.abort()

    context.route("**/*", guard)
    return context.new_page(), attempted
