"""The admins' console in headless Chromium: an admin creates a client user, deactivates a worker
(whose token then fails), downloads a payout file, verifies the ledger and reverses a rejection.
Screenshots of each admin page at 1280 px and at a phone's 390 px: test-artifacts/console-admin-*.png."""

from __future__ import annotations

import re
import time
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
import pytest
from sqlmodel import select

from fieldcheck.auth.models import Role
from fieldcheck.ledger.models import Payout
from fieldcheck.settings import Settings
from tests.api.test_money import IBAN, _earn, _payout
from tests.api.test_review import flagged
from tests.support.backends import BackendFactory
from tests.support.factories import make_account, make_organization, runtime_of
from tests.support.submissions import Field
from tests.system.test_console_browser import PHONE, Browser

DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture(params=[pytest.param("embedded", id="embedded")])
def settings(request: pytest.FixtureRequest, backends: BackendFactory) -> Settings:
    return backends.make(request.param)


def well_made(browser: Browser) -> None:
    """The page fits its screen, every control has a label, nothing failed or went elsewhere."""
    assert browser.fits_the_screen(), browser.page.url
    assert browser.unlabelled_controls() == [], browser.page.url
    assert browser.errors == [] and browser.elsewhere == [], (browser.errors, browser.elsewhere)


def wait_for_report(browser: Browser) -> str:
    """The verification page reloads itself until the job's report is in."""
    verdict = browser.page.locator("#verdict")
    deadline = time.monotonic() + 60
    while "Verifying" in verdict.inner_text():
        assert time.monotonic() < deadline, "no verification report within a minute"
        time.sleep(0.5)
        browser.page.wait_for_load_state()
    return verdict.inner_text()


def test_an_admin_creates_a_client_deactivates_a_worker_and_downloads_a_payout_file(
    app_client: Any, live_server: str, chromium: Any, artifacts_dir: Path
) -> None:
    runtime = runtime_of(app_client)
    worker = _earn(app_client)  # 25.00 EUR earned on an approved visit
    details = app_client.put(
        "/api/v1/me/payout-details",
        json={"account_holder": "Ana Worker", "iban": IBAN},
        headers=worker.headers,
    )
    assert details.status_code == 200, details.text
    assert _payout(app_client, worker, 2_000, "browser-1").status_code == 201
    runtime.jobs.join()
    with runtime.db.transaction(read_only=True) as session:
        payout = session.exec(select(Payout).where(Payout.worker_id == worker.id)).one()
    assert payout.status == "sent" and payout.batch_key
    field = Field(app_client)
    _, wrong = flagged(app_client, field, is_mock=True)  # rejected by the checks
    _, also_wrong = flagged(app_client, field, is_mock=True)
    make_organization(runtime, "Acme Retail")
    admin = make_account(runtime, Role.admin, display_name="Ada Admin")
    assert httpx.get(f"{live_server}/api/v1/me", headers=worker.headers).status_code == 200

    browser = Browser(chromium, live_server, viewport=DESKTOP)
    try:
        page = browser.page
        browser.sign_in(admin)
        assert page.url.endswith("/console/admin")  # an admin's home
        assert page.get_by_role("heading", name="Platform overview").is_visible()
        assert "Fee income" in page.locator('[data-currency="EUR"]').inner_text()
        assert page.locator("#payouts-failed").inner_text() == "0"
        well_made(browser)
        browser.shot(artifacts_dir, "admin-overview")

        # `ledger verify` on demand: the report comes in.
        page.get_by_role("button", name="Verify the ledger now").click()
        page.wait_for_url(re.compile(r"/console/admin/verify\?after="))
        assert wait_for_report(browser).startswith("Clean")
        verify_url = page.url
        well_made(browser)
        browser.shot(artifacts_dir, "admin-verify")

        # A client user for an existing organization.
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Users").click()
        page.wait_for_url(re.compile(r"/console/admin/users$"))
        assert page.locator(f'tr[data-user="{worker.id}"]').is_visible()
        well_made(browser)
        browser.shot(artifacts_dir, "admin-users")
        page.get_by_role("link", name="Create an account or organization").click()
        page.wait_for_url(re.compile(r"/console/admin/users/new"))
        well_made(browser)
        browser.shot(artifacts_dir, "admin-user-new")
        page.get_by_label("Role").select_option("client")
        page.get_by_label("E-mail address").fill("carla@acme.example")
        page.get_by_label("Name (optional)").fill("Carla Client")
        page.get_by_label("Organization (clients only)").select_option(label="Acme Retail")
        page.get_by_role("button", name="Create the account").click()
        page.wait_for_load_state()
        assert page.get_by_role("heading", name="Account created").is_visible()
        password = page.locator("#initial-password").inner_text()
        well_made(browser)
        browser.shot(artifacts_dir, "admin-user-created")
        signed = httpx.post(
            f"{live_server}/api/v1/auth/token", json={"email": "carla@acme.example", "password": password}
        )
        assert signed.status_code == 200 and signed.json()["role"] == "client"

        # The worker deactivated, with a confirmation: their token fails at once.
        page.goto(f"{live_server}/console/admin/users")
        page.get_by_label("E-mail contains").fill(worker.email)
        page.get_by_role("button", name="Search").click()
        page.wait_for_load_state()
        page.get_by_role("link", name=f"Deactivate… {worker.email}").click()
        page.wait_for_url(re.compile(rf"/console/admin/users/{worker.id}/deactivate$"))
        well_made(browser)
        browser.shot(artifacts_dir, "admin-user-deactivate")
        page.get_by_role("button", name="Deactivate the account").click()
        page.wait_for_url(re.compile("notice=user_deactivated"))
        assert "The account is deactivated" in page.locator(".notice").inner_text()
        assert page.locator(f'tr[data-user="{worker.id}"] .tag').inner_text() == "deactivated"
        refused = httpx.get(f"{live_server}/api/v1/me", headers=worker.headers)
        assert refused.status_code == 401 and refused.json()["code"] == "account_inactive"

        # The payout's batch file, downloaded through the console.
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Payouts").click()
        page.wait_for_url(re.compile(r"/console/admin/payouts$"))
        batch = page.locator(f'tr[data-batch="{payout.batch_key}"]')
        assert "20.00 EUR" in batch.inner_text() and "sent" in batch.inner_text()
        well_made(browser)
        browser.shot(artifacts_dir, "admin-payouts")
        with page.expect_download() as download_info:
            batch.get_by_role("link", name=re.compile("^Download")).click()
        download = download_info.value
        assert download.suggested_filename == PurePosixPath(payout.batch_key).name
        content = Path(download.path()).read_text(encoding="utf-8")
        assert str(payout.id) in content or payout.id.hex in content, content[:500]
        assert "Ana Worker" in content

        # A wrong rejection reversed, from the overview, with a reason and a confirmation.
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Overview").click()
        page.wait_for_url(re.compile(r"/console/admin$"))
        page.locator(f'tr[data-assignment="{wrong}"]').get_by_role(
            "link", name=re.compile("^Reverse")
        ).click()
        page.wait_for_url(re.compile(rf"/console/admin/rejections/{wrong}$"))
        well_made(browser)
        browser.shot(artifacts_dir, "admin-reversal")
        page.get_by_label("Reason (the worker reads it)").fill("the mock-location flag was a phone bug")
        page.get_by_label("I confirm: approve this work and pay its reward").check()
        page.get_by_role("button", name="Reverse the rejection and pay").click()
        page.wait_for_url(re.compile("notice=rejection_reversed"))
        assert page.locator(f'tr[data-assignment="{wrong}"]').count() == 0
        assert page.locator(f'tr[data-assignment="{also_wrong}"]').count() == 1
        well_made(browser)
        browser.shot(artifacts_dir, "admin-rejections")
    finally:
        browser.close()
    listed = app_client.get("/api/v1/admin/users", params={"email": worker.email}, headers=admin.headers)
    assert listed.json()["items"][0]["is_active"] is False

    # On a phone every admin page fits the screen, its tables stacked.
    phone = Browser(chromium, live_server, viewport=PHONE)
    try:
        phone.sign_in(admin)
        for name, path in (
            ("overview", "/console/admin"),
            ("verify", verify_url.removeprefix(live_server)),
            ("users", "/console/admin/users"),
            ("user-new", "/console/admin/users/new"),
            ("user-reactivate", f"/console/admin/users/{worker.id}/reactivate"),
            ("payouts", "/console/admin/payouts"),
            ("rejections", "/console/admin/rejections"),
            ("reversal", f"/console/admin/rejections/{also_wrong}"),
        ):
            phone.page.goto(f"{live_server}{path}")
            phone.page.wait_for_load_state()
            well_made(phone)
            phone.shot(artifacts_dir, f"admin-{name}-phone")
        # A problem shows next to its field, with what was typed kept.
        phone.page.goto(f"{live_server}/console/admin/users/new")
        phone.page.get_by_label("Role").select_option("client")
        phone.page.get_by_label("E-mail address").fill("dora@acme.example")
        phone.page.get_by_role("button", name="Create the account").click()
        phone.page.wait_for_load_state()
        assert phone.page.locator("#e-organization_id").inner_text() == "required for role client"
        assert phone.page.get_by_label("E-mail address").input_value() == "dora@acme.example"
        well_made(phone)
        phone.shot(artifacts_dir, "admin-user-new-errors-phone")
        phone.page.get_by_label("Organization (clients only)").select_option(label="Acme Retail")
        phone.page.get_by_role("button", name="Create the account").click()
        phone.page.wait_for_load_state()
        assert phone.page.locator("#initial-password").is_visible()
        well_made(phone)
        phone.shot(artifacts_dir, "admin-user-created-phone")
    finally:
        phone.close()
    runtime.jobs.join()
