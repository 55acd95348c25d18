"""A new client organization, from nothing to an active, funded campaign, in headless Chromium.

Stores come from a CSV (one with two bad lines first), a campaign under the floor is refused with
its hint, the deposit form is used with the keyboard only, and a webhook endpoint is set. Screens
of each new page (laptop and phone width) are kept in test-artifacts/console-clients-*.png.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from fieldcheck.auth.models import Role
from fieldcheck.campaigns.models import Campaign
from fieldcheck.settings import Settings
from fieldcheck.webhooks.models import WebhookEndpoint
from tests.support.backends import BackendFactory
from tests.support.factories import make_account, runtime_of
from tests.support.photos import real
from tests.system.test_console_browser import PHONE, Browser

STORES = "external_ref,name,address,lat,lon\n" + "".join(
    f"P-{i:02d},Market {i},{i} avenue Test,45.{7500 + i},4.{8300 + i}\n" for i in range(12)
)
TWO_BAD_LINES = STORES.replace("45.7503", "north").replace("Market 7,", ",")


@pytest.fixture(params=[pytest.param("embedded", id="embedded")])
def settings(request: pytest.FixtureRequest, backends: BackendFactory) -> Settings:
    return backends.make(request.param, webhook_allow_private_targets=True)


def checked(browser: Browser) -> None:
    assert browser.unlabelled_controls() == [], browser.page.url
    assert browser.fits_the_screen(), browser.page.url


def test_a_new_client_gets_to_an_active_funded_campaign_in_the_console(
    app_client: Any, live_server: str, chromium: Any, artifacts_dir: Path, tmp_path: Path
) -> None:
    client = make_account(runtime_of(app_client), Role.client)
    browser = Browser(chromium, live_server)
    page = browser.page
    try:
        browser.sign_in(client)
        assert page.url.endswith("/console/campaigns")
        page.get_by_role("link", name="Stores", exact=True).click()
        page.wait_for_load_state()
        assert "0 store(s)" in page.locator("#store-count").inner_text()

        # A file with two bad lines: nothing imported, both shown with line and column.
        bad, good = tmp_path / "bad.csv", tmp_path / "stores.csv"
        bad.write_text(TWO_BAD_LINES, encoding="utf-8")
        good.write_text(STORES, encoding="utf-8")
        page.get_by_label("CSV file", exact=True).set_input_files(str(bad))
        page.get_by_role("button", name="Import").click()
        page.wait_for_load_state()
        problems = page.locator("#import-errors tbody tr")
        assert problems.count() == 2
        assert problems.nth(0).inner_text().split("\t")[:2] == ["5", "lat"]
        assert problems.nth(1).inner_text().split("\t")[:2] == ["9", "name"]
        checked(browser)
        browser.shot(artifacts_dir, "clients-stores-errors")
        page.get_by_label("CSV file", exact=True).set_input_files(str(good))
        page.get_by_role("button", name="Import").click()
        page.wait_for_url(re.compile("notice=stores_imported"))
        assert "12 store(s) created, 0 updated" in page.locator("#import-result").inner_text()
        assert page.locator("table.stores tbody tr").count() == 12
        checked(browser)
        browser.shot(artifacts_dir, "clients-stores")

        # The campaign form: under the floor, the page says by how much and will not send it.
        page.get_by_role("link", name="Campaigns", exact=True).click()
        page.get_by_role("link", name="New campaign").click()
        page.wait_for_load_state()
        page.get_by_label("Title").fill("Yoghurt shelf, spring")
        page.get_by_label("Instructions for the worker").fill("Photograph the whole yoghurt shelf.")
        page.get_by_label("Reward a visit").fill("1")
        page.get_by_label("Estimated minutes a visit").fill("15")
        verdict = page.locator("#verdict")
        assert "raise the reward to 3.01 EUR (2.01 EUR more) or lower the estimate to 4 minutes" in (
            verdict.inner_text()
        )
        assert page.get_by_role("button", name="Create the campaign (draft)").is_disabled()
        browser.shot(artifacts_dir, "clients-campaign-below-floor")
        page.get_by_label("Reward a visit").fill("4.50")
        assert verdict.inner_text() == "At or above the floor."
        # 12 stores x 1 visit x (4.50 + 0.45 fee)
        assert page.locator("#hold").inner_text() == "59.40 EUR"
        assert page.locator("#hourly").inner_text() == "18.00 EUR"
        checked(browser)
        browser.shot(artifacts_dir, "clients-campaign-new")
        page.get_by_role("button", name="Create the campaign (draft)").click()
        page.wait_for_url(re.compile("notice=campaign_created"))
        campaign_url = page.url.split("?")[0]
        shelf = tmp_path / "shelf.jpg"
        shelf.write_bytes(real("shelf_grocery_milk_001.jpg"))
        page.get_by_label("Add photos (JPEG, PNG or HEIC)").set_input_files(str(shelf))
        page.get_by_role("button", name="Add", exact=True).click()
        page.wait_for_url(re.compile("notice=reference_added"))
        deadline = time.monotonic() + 60
        while page.locator('.reference-item[data-status="ready"] img').count() != 1:
            assert time.monotonic() < deadline, page.locator(".references").inner_text()
            runtime_of(app_client).jobs.join()
            page.reload()
        assert page.locator(".reference-item img").evaluate("img => img.complete && img.naturalWidth > 0")
        checked(browser)
        browser.shot(artifacts_dir, "clients-campaign-draft")

        # Activation shows what it holds; with no money, it sends the client to deposit.
        page.get_by_role("link", name="Activate…").click()
        page.wait_for_load_state()
        assert page.locator("#hold").inner_text() == "59.40 EUR"
        assert "59.40 EUR short" in page.locator("#short").inner_text()
        browser.shot(artifacts_dir, "clients-activate-short")
        page.get_by_role("link", name="Deposit first").click()
        page.wait_for_load_state()
        assert page.get_by_label("Amount").input_value() == "59.40"

        # The deposit form with the keyboard only: into the amount, type, then Enter.
        page.keyboard.press("Tab")  # the skip link
        for _ in range(40):
            if page.evaluate("document.activeElement.id") == "f-amount":
                break
            page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "f-amount"
        page.keyboard.press("Control+A")
        page.keyboard.type("100")
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile("notice=deposit_done"))
        assert page.locator("#available-EUR").inner_text() == "100.00 EUR"
        checked(browser)
        browser.shot(artifacts_dir, "clients-money")

        page.goto(f"{campaign_url}/life/activate")
        assert page.locator("#short").count() == 0
        browser.shot(artifacts_dir, "clients-activate")
        page.get_by_role("button", name="Activate").click()
        page.wait_for_url(re.compile("notice=campaign_activated"))
        assert page.locator("h1 .tag").inner_text() == "active"
        page.get_by_role("link", name="Money", exact=True).click()
        page.wait_for_load_state()
        assert page.locator("#available-EUR").inner_text() == "40.60 EUR"
        assert page.locator("#escrow-EUR").inner_text() == "59.40 EUR"

        # A webhook endpoint, its secret shown once.
        page.get_by_role("link", name="Webhooks", exact=True).click()
        page.wait_for_load_state()
        page.get_by_role("link", name=re.compile("Add an endpoint|New endpoint")).first.click()
        page.wait_for_load_state()
        page.get_by_label("Address of the receiving system").fill("http://127.0.0.1:9/fieldcheck")
        page.locator("input[type=checkbox][name=events]").first.check()
        page.get_by_role("button", name="Add the endpoint").click()
        page.wait_for_load_state()
        assert "shown only this once" in page.content()

        # Phone width: the new pages still fit and keep their labels.
        phone = Browser(chromium, live_server, viewport=PHONE)
        try:
            phone.sign_in(client)
            for path, name in (
                ("/console/stores", "stores"),
                ("/console/campaigns/new", "campaign-new"),
                ("/console/money", "money"),
                (f"{campaign_url.split(live_server)[1]}/life/close", "close"),
            ):
                phone.page.goto(f"{live_server}{path}")
                checked(phone)
                phone.shot(artifacts_dir, f"clients-{name}-phone")
            assert phone.elsewhere == [] and phone.errors == []
        finally:
            phone.close()
        assert browser.elsewhere == [] and browser.errors == []
    finally:
        browser.close()
    with runtime_of(app_client).db.transaction(read_only=True) as session:
        (campaign,) = session.exec(select(Campaign).where(Campaign.organization_id == client.organization_id))
        assert campaign.status == "active" and campaign.reward_cents == 450
        endpoints = list(
            session.exec(
                select(WebhookEndpoint).where(WebhookEndpoint.organization_id == client.organization_id)
            )
        )
        assert len(endpoints) == 1
