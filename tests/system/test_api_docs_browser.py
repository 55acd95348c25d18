"""The API documentation in headless Chromium with every other host out of reach, as on a closed
network: Swagger UI renders the operations under the page's policy. Screenshot:
test-artifacts/api-docs.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from fieldcheck.settings import Settings
from tests.support.backends import BackendFactory

LAPTOP = {"width": 1366, "height": 800}
# Records the page's policy violations from its first script on (Playwright's scripts are exempt).
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


@pytest.fixture(params=[pytest.param("embedded", id="embedded")])
def settings(request: pytest.FixtureRequest, backends: BackendFactory) -> Settings:
    return backends.make(request.param)


def test_swagger_ui_renders_the_api_from_fieldchecks_own_files(
    live_server: str, chromium: Any, artifacts_dir: Path
) -> None:
    host = urlsplit(live_server).netloc
    context = chromium.new_context(viewport=LAPTOP)
    elsewhere: list[str] = []
    failed: list[str] = []
    errors: list[str] = []

    def guard(route: Any) -> None:
        url = route.request.url
        if urlsplit(url).netloc == host or url.startswith("data:"):
            route.continue_()
        else:
            elsewhere.append(url)
            route.abort()

    context.route("**/*", guard)
    context.add_init_script(RECORD_VIOLATIONS)
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("response", lambda answer: failed.append(answer.url) if answer.status >= 400 else None)
    try:
        page.goto(f"{live_server}/schema")
        token = page.locator('.opblock-summary-path[data-path="/api/v1/auth/token"]')
        token.first.wait_for(state="visible", timeout=30_000)
        assert page.locator(".info .title").first.inner_text().startswith("fieldcheck API")
        assert page.locator(".opblock").count() > 20  # every operation, not only the first
        assert page.get_by_role("button", name="Authorize").is_visible()  # the bearer token scheme

        # Try it out: the page may call fieldcheck's own API (connect-src 'self').
        live = page.locator('.opblock:has(.opblock-summary-path[data-path="/health/live"])')
        live.first.locator(".opblock-summary-control").click()
        live.first.get_by_role("button", name="Try it out").click()
        live.first.get_by_role("button", name="Execute").click()
        status = live.first.locator(".live-responses-table tr.response .response-col_status").first
        status.wait_for(state="visible", timeout=15_000)
        assert status.inner_text().strip() == "200"
        page.screenshot(path=str(artifacts_dir / "api-docs.png"), full_page=True)

        assert elsewhere == []
        assert page.evaluate("window.__violations") == []
        assert errors == [] and failed == []
    finally:
        context.close()
