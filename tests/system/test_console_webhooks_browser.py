"""The webhook pages in headless Chromium: a client adds an endpoint (after a typing mistake),
copies the secret shown once, reads a failed delivery in the log, redelivers it, rotates the secret
and disables the endpoint; then the same pages at phone width. Screenshots of each page are kept in
test-artifacts/console-webhooks-*.png."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import func, select

from fieldcheck.auth.models import Role
from fieldcheck.settings import Settings
from fieldcheck.webhooks.models import WebhookEndpoint
from tests.api.test_webhooks import WEBHOOK_SETTINGS, Receiver, deliveries, emit, settled
from tests.support.backends import BackendFactory
from tests.support.factories import Account, make_account, runtime_of
from tests.system.test_console_browser import PHONE, Browser

LAPTOP = {"width": 1280, "height": 800}
ADDRESS = "Address of the receiving system"


@pytest.fixture(params=[pytest.param("embedded", id="embedded")])
def settings(request: pytest.FixtureRequest, backends: BackendFactory) -> Settings:
    # The receiver listens on loopback; one attempt per delivery, so a failure shows at once.
    return backends.make(request.param, **{**WEBHOOK_SETTINGS, "webhook_max_attempts": 1})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def checked_page(browser: Browser, artifacts: Path, name: str) -> None:
    """Every page: labelled controls, nothing wider than the screen, then its screenshot."""
    assert browser.unlabelled_controls() == [], name
    assert browser.fits_the_screen(), name
    browser.shot(artifacts, f"webhooks-{name}")


def endpoints_of(client: Any, account: Account) -> int:
    with runtime_of(client).db.transaction(read_only=True) as session:
        return session.exec(
            select(func.count())
            .select_from(WebhookEndpoint)
            .where(WebhookEndpoint.organization_id == account.organization_id)
        ).one()


def test_a_client_adds_an_endpoint_reads_its_log_and_redelivers(
    app_client: Any, live_server: str, chromium: Any, artifacts_dir: Path, receiver: Receiver
) -> None:
    owner = make_account(runtime_of(app_client), Role.client, display_name="Clara Client")
    browser = Browser(chromium, live_server, LAPTOP)
    browser.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
    try:
        page = browser.page
        browser.sign_in(owner)
        page.get_by_role("link", name="Webhooks").click()
        page.wait_for_load_state()
        assert page.url.endswith("/console/webhooks")
        assert "No endpoint yet" in page.locator("main").inner_text()
        checked_page(browser, artifacts_dir, "empty-laptop")

        # A typing mistake: the error beside the field, what was typed still there.
        page.get_by_role("link", name="Add an endpoint").click()
        page.wait_for_load_state()
        page.get_by_label(ADDRESS).fill("ftp://erp.example.com/hooks")
        page.get_by_label("Visit approved").check()
        page.get_by_label("Description").fill("Head office ERP")
        page.get_by_role("button", name="Add the endpoint").click()
        page.wait_for_load_state()
        assert "must start with https:// or http://" in page.locator("#e-url").inner_text()
        assert page.get_by_label(ADDRESS).input_value() == "ftp://erp.example.com/hooks"
        assert page.get_by_label("Visit approved").is_checked()
        assert page.get_by_label("Description").input_value() == "Head office ERP"
        assert page.evaluate("document.activeElement.id") == "f-url"  # where the mistake is
        checked_page(browser, artifacts_dir, "form-errors-laptop")

        # With the keyboard: the address, a second event with the space bar, Enter to send.
        page.keyboard.press("Control+A")
        page.keyboard.type(receiver.url)
        page.get_by_label("Export ready").focus()
        page.keyboard.press("Space")
        page.get_by_label(ADDRESS).press("Enter")
        page.wait_for_load_state()
        secret = page.locator("#secret").inner_text().strip()
        assert secret.startswith("whsec_")
        assert "shown only this once" in page.locator(".notice").inner_text()
        endpoint_url = page.url  # the script made the history entry the endpoint's own page
        assert re.search(r"/console/webhooks/[0-9a-f-]{36}$", endpoint_url), endpoint_url
        page.get_by_role("button", name="Copy the secret").focus()
        page.keyboard.press("Enter")
        page.locator("#copy-status", has_text="Copied to the clipboard.").wait_for()
        assert page.evaluate("navigator.clipboard.readText()") == secret
        checked_page(browser, artifacts_dir, "created-laptop")

        # Reloading shows the endpoint without its secret and adds nothing.
        page.reload()
        page.wait_for_load_state()
        assert page.locator("#secret").count() == 0 and "whsec_" not in page.content()
        assert endpoints_of(app_client, owner) == 1

        # An event the receiver refuses: the log shows the failure.
        receiver.secret = secret
        receiver.failures = 10_000
        assert emit(app_client, owner.organization_id, "export.ready", export_id="e-1") == 1
        endpoint_id = endpoint_url.rsplit("/", 1)[1]
        delivery_id = deliveries(app_client, owner, endpoint_id)["items"][0]["id"]
        assert settled(app_client, owner, delivery_id)["status"] == "failed"
        page.reload()
        row = page.locator("tr.delivery")
        assert row.count() == 1
        assert "failed" in row.inner_text() and "HTTP 500" in row.inner_text()
        checked_page(browser, artifacts_dir, "endpoint-log-laptop")

        page.get_by_role("link", name=re.compile("^Export ready")).click()
        page.wait_for_load_state()
        assert '"type": "export.ready"' in page.locator("pre.body").inner_text()
        assert "HTTP 500" in page.locator("#response").inner_text()
        checked_page(browser, artifacts_dir, "delivery-failed-laptop")

        # Redeliver: the receiver takes it now, and the signature checks with the copied secret.
        receiver.failures = 0
        page.get_by_role("button", name="Redeliver").click()
        page.wait_for_url(re.compile("notice=redelivery_started"))
        assert "Sent again" in page.locator(".notice").inner_text()
        # The page refreshes itself until the attempt is made (the live server's worker makes it).
        page.locator("#delivery-status", has_text="delivered").wait_for(timeout=30_000)
        assert "HTTP 200" in page.locator("#response").inner_text()
        assert receiver.requests[-1].signature_ok
        checked_page(browser, artifacts_dir, "delivery-redelivered-laptop")

        # Rotate, after a confirmation: the new secret once, the old one no longer signs.
        page.goto(endpoint_url)
        assert "delivered" in page.locator("tr.delivery").inner_text()
        page.get_by_role("link", name="Rotate the secret…").click()
        page.wait_for_load_state()
        checked_page(browser, artifacts_dir, "rotate-confirm-laptop")
        page.get_by_role("button", name="Rotate the secret").click()
        page.wait_for_load_state()
        rotated = page.locator("#secret").inner_text().strip()
        assert rotated.startswith("whsec_") and rotated != secret
        assert page.url == endpoint_url
        page.get_by_role("button", name="Copy the secret").click()
        page.locator("#copy-status", has_text="Copied").wait_for()
        assert page.evaluate("navigator.clipboard.readText()") == rotated

        # Disable, after a confirmation.
        page.get_by_role("link", name="Disable…").click()
        page.wait_for_load_state()
        assert page.locator("#secret").count() == 0
        checked_page(browser, artifacts_dir, "disable-confirm-laptop")
        page.get_by_role("button", name="Disable the endpoint").click()
        page.wait_for_url(re.compile("notice=endpoint_disabled"))
        assert "disabled" in page.locator("h1").inner_text()
        assert page.get_by_role("link", name="Rotate the secret…").count() == 0
        checked_page(browser, artifacts_dir, "endpoint-disabled-laptop")

        page.get_by_role("link", name="← Webhooks").click()
        page.wait_for_load_state()
        listed = page.locator("table.endpoints tbody tr")
        assert listed.count() == 1
        assert "disabled" in listed.inner_text() and "delivered" in listed.inner_text()
        checked_page(browser, artifacts_dir, "list-laptop")
        assert browser.elsewhere == [] and browser.errors == []
    finally:
        browser.close()

    # At phone width: the same pages fit the screen, the secret box included.
    phone = Browser(chromium, live_server, PHONE)
    try:
        page = phone.page
        phone.sign_in(owner)
        page.goto(f"{live_server}/console/webhooks/new")
        page.get_by_role("button", name="Add the endpoint").click()
        page.wait_for_load_state()
        assert "Pick at least one event" in page.locator("#e-events").inner_text()
        checked_page(phone, artifacts_dir, "form-errors-phone")
        page.get_by_label(ADDRESS).fill(receiver.url + "&long=" + "x" * 80)
        page.get_by_label("Visit rejected").check()
        page.get_by_label("Campaign completed").check()
        page.get_by_role("button", name="Add the endpoint").click()
        page.wait_for_load_state()
        assert page.locator("#secret").inner_text().startswith("whsec_")
        box = page.locator("#secret").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        checked_page(phone, artifacts_dir, "created-phone")
        page.goto(f"{live_server}/console/webhooks")
        assert page.locator("table.endpoints tbody tr").count() == 2
        checked_page(phone, artifacts_dir, "list-phone")
        page.get_by_role("link", name=receiver.url, exact=True).click()
        page.wait_for_load_state()
        checked_page(phone, artifacts_dir, "endpoint-log-phone")
        page.get_by_role("link", name=re.compile("^Export ready")).click()
        page.wait_for_load_state()
        checked_page(phone, artifacts_dir, "delivery-phone")
        assert phone.elsewhere == [] and phone.errors == []
    finally:
        phone.close()
