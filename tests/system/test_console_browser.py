"""The console in headless Chromium: a reviewer works the queue with the keyboard, a client
exports. Screenshots of each main page are kept in test-artifacts/console-*.png."""

from __future__ import annotations

import csv
import io
import re
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlmodel import col, select

from fieldcheck.assignments.models import Assignment
from fieldcheck.auth.models import Role
from fieldcheck.reviews.models import Review
from fieldcheck.settings import Settings
from tests.api.test_review import flagged
from tests.support.backends import BackendFactory
from tests.support.factories import Account, make_account, runtime_of
from tests.support.submissions import Field

LAPTOP = {"width": 1366, "height": 800}
TABLET = {"width": 820, "height": 1180}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(params=[pytest.param("embedded", id="embedded")])
def settings(request: pytest.FixtureRequest, backends: BackendFactory) -> Settings:
    return backends.make(request.param)


class Browser:
    """One person's browser: a page that may only talk to the console's own server."""

    def __init__(self, chromium: Any, base: str, viewport: dict[str, int] = LAPTOP) -> None:
        self.base = base
        self.context = chromium.new_context(viewport=viewport, accept_downloads=True)
        self.elsewhere: list[str] = []
        self.errors: list[str] = []
        host = urlsplit(base).netloc

        def guard(route: Any) -> None:
            url = route.request.url
            if urlsplit(url).netloc == host or url.startswith("data:"):
                route.continue_()
            else:
                self.elsewhere.append(url)
                route.abort()

        self.context.route("**/*", guard)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def sign_in(self, account: Account) -> None:
        self.page.goto(f"{self.base}/console/")
        self.page.get_by_label("E-mail address").fill(account.email)
        self.page.get_by_label("Password").fill(account.password)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_load_state()

    def shot(self, artifacts: Path, name: str) -> None:
        self.page.screenshot(path=str(artifacts / f"console-{name}.png"), full_page=True)

    def fits_the_screen(self) -> bool:
        return bool(self.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))

    def unlabelled_controls(self) -> list[str]:
        found: list[str] = self.page.evaluate(
            """() => [...document.querySelectorAll('input:not([type=hidden]), textarea, select, button')]
                .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                              && !(el.textContent || '').trim())
                .map(el => el.outerHTML.slice(0, 120))"""
        )
        return found

    def close(self) -> None:
        self.context.close()


def item_id(url: str) -> str | None:
    found = re.search(r"/console/review/([0-9a-f-]{36})", url)
    return found.group(1) if found else None


def test_a_reviewer_works_three_items_with_the_keyboard(
    app_client: Any, live_server: str, chromium: Any, artifacts_dir: Path
) -> None:
    runtime = runtime_of(app_client)
    field = Field(app_client, stores=3)
    items = [flagged(app_client, field)[1] for _ in range(3)]
    reviewer = make_account(runtime, Role.reviewer, display_name="Rita Reviewer")
    browser = Browser(chromium, live_server)
    try:
        page = browser.page
        page.goto(f"{live_server}/console/review/")
        assert "/console/login" in page.url  # signed out: the sign-in page, then back here
        browser.shot(artifacts_dir, "sign-in")
        browser.sign_in(reviewer)
        assert page.url.endswith("/console/review")
        assert page.locator('[data-count="flagged"]').inner_text() == "3"
        assert page.locator("table.list tbody tr").count() == 3
        browser.shot(artifacts_dir, "review-queue")

        page.get_by_role("button", name="Review the oldest item").click()
        page.wait_for_load_state()
        first = item_id(page.url)
        assert first == items[0]  # oldest first
        assert "Your lease ends in" in page.locator("#lease").inner_text()
        assert page.locator(".photo img").count() == 1
        assert page.locator(".check").count() >= 8  # every check, with its outcome and explanation
        assert "location_accuracy" in page.locator(".context").inner_text()
        assert "Approval rate" in page.locator(".context").inner_text()
        assert browser.unlabelled_controls() == []
        page.locator(".photo .zoom").first.click()
        assert "zoomed" in (page.locator(".photo").first.get_attribute("class") or "")
        page.keyboard.press("t")
        assert page.get_by_role("button", name="Show large photos").is_visible()
        page.keyboard.press("t")
        browser.shot(artifacts_dir, "review-item")

        # a: approve; the next item opens.
        page.keyboard.press("a")
        page.wait_for_url(re.compile(r"notice=approved"))
        second = item_id(page.url)
        assert second in items and second != first
        assert "Approved. Here is the next item." in page.locator(".notice").inner_text()

        # r without a reason: told to pick one, nothing sent; then a reason, and r again.
        page.keyboard.press("r")
        assert "Pick at least one reason" in page.locator("#decision-hint").inner_text()
        assert item_id(page.url) == second
        page.locator("input[name=reasons][value=blurry]").check()
        page.locator("#comment").fill("The labels cannot be read.")
        page.locator("#comment").press("Tab")  # leave the text box: keys act again
        page.keyboard.press("r")
        page.wait_for_url(re.compile(r"notice=rejected"))
        third = item_id(page.url)
        assert third in items and third not in (first, second)

        # n: skip the last one; nothing else waits.
        page.keyboard.press("n")
        page.wait_for_url(re.compile(r"notice=queue_empty"))
        assert "Nothing is waiting for you" in page.locator(".notice").inner_text()
        assert page.locator('[data-count="flagged"]').inner_text() == "1"  # the skipped one, free again

        # On a tablet the item page still fits the screen.
        tablet = Browser(chromium, live_server, viewport=TABLET)
        try:
            tablet.sign_in(reviewer)
            tablet.page.get_by_role("button", name="Review the oldest item").click()
            tablet.page.wait_for_load_state()
            assert tablet.fits_the_screen()
            tablet.shot(artifacts_dir, "review-item-tablet")
        finally:
            tablet.close()
        assert browser.elsewhere == [] and browser.errors == []
    finally:
        browser.close()

    with runtime.db.transaction(read_only=True) as session:
        statuses = {str(a.id): a.status for a in session.exec(select(Assignment)).all()}
        reviews = {str(r.assignment_id): r for r in session.exec(select(Review)).all()}
    assert statuses[first] == "approved"
    assert statuses[second] == "rejected"
    assert statuses[third] == "in_review"
    assert reviews[second].reasons == ["blurry"] and reviews[second].comment == "The labels cannot be read."


def test_a_client_follows_a_campaign_and_downloads_an_export(
    app_client: Any, live_server: str, chromium: Any, artifacts_dir: Path
) -> None:
    field = Field(app_client, stores=2)
    flagged(app_client, field)
    browser = Browser(chromium, live_server)
    try:
        page = browser.page
        browser.sign_in(field.owner)
        assert page.url.endswith("/console/campaigns")
        row = page.locator("table.campaigns tbody tr")
        assert row.count() == 1 and field.campaign["title"] in row.inner_text()
        browser.shot(artifacts_dir, "campaigns")
        page.get_by_role("link", name=field.campaign["title"]).click()
        page.wait_for_load_state()
        assert page.locator(".result").count() == 1
        assert page.locator(".result img").count() == 1
        assert page.locator(".result img").first.evaluate("img => img.complete && img.naturalWidth > 0")
        page.get_by_role("button", name="Export CSV table").click()
        page.wait_for_url(re.compile("notice=export_started"))
        link = page.get_by_role("link", name=re.compile("^Download"))
        deadline = time.monotonic() + 60
        while not link.is_visible():
            assert time.monotonic() < deadline, page.locator(".export").first.inner_text()
            runtime_of(app_client).jobs.join()
            time.sleep(0.2)
        assert page.locator(".export progress").first.evaluate("bar => bar.value") == 1
        browser.shot(artifacts_dir, "campaign")
        with page.expect_download() as download_info:
            link.click()
        download = download_info.value
        assert download.suggested_filename.endswith(".csv")
        rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8-sig"))))
        assert len(rows) == 1 and rows[0]["status"] == "in_review"
        assert browser.unlabelled_controls() == []
        assert browser.fits_the_screen()
        assert browser.elsewhere == [] and browser.errors == []
    finally:
        browser.close()


def test_a_reviewer_sees_the_matched_reference_with_the_photo_outlined(
    app_client: Any, live_server: str, chromium: Any, artifacts_dir: Path
) -> None:
    from tests.api.test_reference_photos import RULES, attach
    from tests.support import photos
    from tests.support.submissions import checked, submit, upload

    runtime = runtime_of(app_client)
    field = Field(app_client, photo_rules=RULES)
    from fieldcheck.checks.imaging import cv2

    shelf = photos.scene(seed=31)
    assert attach(app_client, field, photos.jpeg(shelf))["status"] == "ready"
    # The worker's photo: the same shelf from a step to the side and closer (not a copy).
    height, width = shelf.shape[:2]
    turned = cv2.getRotationMatrix2D((width * 0.4, height * 0.45), 6, 1.35)
    closer = cv2.warpAffine(shelf, turned, (width, height), borderMode=cv2.BORDER_REFLECT)
    worker = field.worker()
    assignment_id = field.reserve(worker)
    photo_id = upload(app_client, worker, assignment_id, photos.jpeg(closer))
    assert submit(app_client, worker, assignment_id, [photo_id], accuracy_m=120.0).status_code == 202
    # An imprecise position: a person looks at it.
    assert checked(app_client, worker, assignment_id)["status"] == "in_review"
    reviewer = make_account(runtime, Role.reviewer, display_name="Rita Reviewer")
    browser = Browser(chromium, live_server)
    try:
        page = browser.page
        browser.sign_in(reviewer)
        page.goto(f"{live_server}/console/review/{assignment_id}")
        page.wait_for_load_state("networkidle")
        reference = page.locator(".reference.matched")
        assert "the client's reference photo" in reference.locator("h3").inner_text()
        image = reference.locator("img")
        assert image.evaluate("img => img.complete && img.naturalWidth > 0")
        points = reference.locator("polygon").get_attribute("points") or ""
        corners = [tuple(float(v) for v in pair.split(",")) for pair in points.split()]
        assert len(corners) == 4
        # The closer shot is a smaller region inside the reference.
        assert all(0.0 < x < 1.0 and 0.0 < y < 1.0 for x, y in corners)
        box = reference.locator("svg").bounding_box()
        shown = image.bounding_box()
        assert box is not None and shown is not None and abs(box["width"] - shown["width"]) < 2
        reference.scroll_into_view_if_needed()
        browser.shot(artifacts_dir, "review-item-reference")
        assert browser.elsewhere == [] and browser.errors == []
    finally:
        browser.close()
    # On a phone the reference stays inside the screen, the outline on it.
    phone = Browser(chromium, live_server, viewport=PHONE)
    try:
        phone.sign_in(reviewer)
        phone.page.goto(f"{live_server}/console/review/{assignment_id}")
        phone.page.wait_for_load_state("networkidle")
        shown = phone.page.locator(".reference.matched img").bounding_box()
        outline = phone.page.locator(".reference.matched svg").bounding_box()
        assert shown is not None and outline is not None
        assert shown["x"] >= 0 and shown["x"] + shown["width"] <= PHONE["width"] + 1
        assert abs(outline["width"] - shown["width"]) < 2
        phone.page.locator(".reference.matched").scroll_into_view_if_needed()
        phone.page.screenshot(path=str(artifacts_dir / "console-review-item-reference-phone.png"))
    finally:
        phone.close()


def test_an_admin_reads_the_oversight_figures(
    app_client: Any, live_server: str, chromium: Any, artifacts_dir: Path
) -> None:
    from tests.api.test_review import claim, decide

    runtime = runtime_of(app_client)
    field = Field(app_client)
    reviewer = make_account(runtime, Role.reviewer, display_name="Rita Reviewer")
    _worker, item = flagged(app_client, field)
    assert claim(app_client, reviewer, item).status_code == 200
    assert decide(app_client, reviewer, item, "approve").status_code == 200
    admin = make_account(runtime, Role.admin)
    browser = Browser(chromium, live_server)
    try:
        page = browser.page
        browser.sign_in(admin)
        page.goto(f"{live_server}/console/oversight/")
        assert page.get_by_role("heading", name="Human oversight of the automated checks").is_visible()
        row = page.locator("table.list tbody tr").filter(has_text="location_accuracy").filter(has_text="warn")
        assert row.locator("td").nth(4).inner_text() == "1"  # overturned once
        assert "Rita Reviewer" in page.locator("main").inner_text()
        assert browser.fits_the_screen() and browser.unlabelled_controls() == []
        browser.shot(artifacts_dir, "oversight")
        assert browser.errors == [] and browser.elsewhere == []
    finally:
        browser.close()


def test_a_client_raises_the_reward_of_a_campaign_paused_for_its_measured_pay(
    app_client: Any, live_server: str, chromium: Any, artifacts_dir: Path
) -> None:
    from sqlmodel import update

    from fieldcheck.campaigns import service as campaigns
    from fieldcheck.campaigns.models import Campaign

    runtime = runtime_of(app_client)
    field = Field(app_client)
    campaign_id = uuid.UUID(field.campaign["id"])
    with runtime.db.transaction() as session:  # twelve visits took a median of 40 minutes
        session.exec(
            update(Campaign)
            .where(col(Campaign.id) == campaign_id)
            .values(
                measured_minutes_median=40.0,
                measured_minutes_p75=44.0,
                measured_visits=12,
                measured_travel_minutes_median=14.0,
                measured_travel_visits=9,
            )
        )
        assert campaigns.pause_if_underpaid(session, campaign_id, runtime.settings)
    for viewport, name in ((LAPTOP, "laptop"), (PHONE, "phone")):
        browser = Browser(chromium, live_server, viewport)
        try:
            page = browser.page
            browser.sign_in(field.owner)
            page.goto(f"{live_server}/console/campaigns/{campaign_id}")
            banner = page.locator("#pay-floor-banner")
            assert banner.is_visible()
            assert "median of 40 minutes over 12 visits" in banner.inner_text()
            assert "7.50 EUR per hour" in banner.inner_text()
            measured = page.locator("#measured").inner_text()
            assert "of which 14 min to reach the store (9 reported)" in measured, measured
            assert browser.fits_the_screen() and browser.unlabelled_controls() == []
            browser.shot(artifacts_dir, f"campaign-paused-{name}")
            assert browser.errors == [] and browser.elsewhere == []
        finally:
            browser.close()
    browser = Browser(chromium, live_server)
    try:
        page = browser.page
        browser.sign_in(field.owner)
        page.goto(f"{live_server}/console/campaigns/{campaign_id}")
        page.get_by_label("Reward (EUR)").fill("4.00")
        page.get_by_role("button", name="Change the pay").click()
        page.wait_for_url(re.compile("notice=reward_cannot_decrease"))
        assert page.locator("#pay-floor-banner").is_visible()
        page.get_by_label("Reward (EUR)").fill("9,00")
        page.get_by_label("Estimated minutes").fill("40")
        page.get_by_role("button", name="Change the pay").click()
        page.wait_for_url(re.compile("notice=pay_changed"))
        assert page.locator("#pay-floor-banner").count() == 0
        assert "active" in page.locator("h1 .tag").inner_text()
        browser.shot(artifacts_dir, "campaign-pay-raised")
        assert browser.errors == [] and browser.elsewhere == []
    finally:
        browser.close()
    raised = app_client.get(f"/api/v1/campaigns/{campaign_id}", headers=field.owner.headers).json()
    assert (
        raised["reward_cents"] == 900 and raised["estimated_minutes"] == 40 and raised["status"] == "active"
    )
