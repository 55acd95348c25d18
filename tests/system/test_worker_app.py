"""The workers' phone app in headless Chromium emulating a phone, against a real server: sign up,
find the task nearby, reserve, photograph (a shaken photo first), read the checks in the store,
retake, submit, see the approval and the payment; offline capture and submission sent once; an
appeal in French. Screenshots of each screen at 360 px wide are kept in test-artifacts/app-*.png."""

from __future__ import annotations

import json
import re
import secrets
import uuid
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect
from sqlmodel import col, func, select

from fieldcheck.assignments.models import Assignment
from fieldcheck.auth.models import User
from fieldcheck.idempotency import IdempotencyRecord
from fieldcheck.settings import Settings
from tests.support import photos
from tests.support.backends import BackendFactory
from tests.support.factories import runtime_of
from tests.support.submissions import STORE_LAT, STORE_LON, Field

PHONE = {
    "viewport": {"width": 360, "height": 740},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
    "user_agent": "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36",
}
SHAKEN = photos.PHOTOS_DIR / "blur_honor7x_176_motion.jpg"
SHARP = photos.PHOTOS_DIR / "blur_honor7x_176_sharp.jpg"
FIRST_LOAD_LIMIT = 150 * 1024  # HTML, JS, CSS and texts of the first load


@pytest.fixture(params=[pytest.param("embedded", id="embedded")])
def settings(request: pytest.FixtureRequest, backends: BackendFactory) -> Settings:
    return backends.make(request.param)


class Phone:
    """One worker's phone: a page that may only talk to fieldcheck's own server."""

    def __init__(self, chromium: Any, base: str, *, locale: str = "en-GB", route: bool = True) -> None:
        self.base = base
        self.context = chromium.new_context(
            **PHONE,
            locale=locale,
            geolocation={"latitude": STORE_LAT + 0.0002, "longitude": STORE_LON, "accuracy": 12},
            permissions=["geolocation"],
        )
        self.elsewhere: list[str] = []
        self.errors: list[str] = []
        self.bytes = 0
        host = urlsplit(base).netloc

        def guard(route: Any) -> None:
            url = route.request.url
            if urlsplit(url).netloc == host or url.startswith(("data:", "blob:")):
                route.continue_()
            else:
                self.elsewhere.append(url)
                route.abort()

        if route:
            self.context.route("**/*", guard)
        else:
            # Chromium bypasses service workers while requests are intercepted: a test of the
            # offline shell watches every request instead of routing it.
            self.context.on(
                "request",
                lambda request: (
                    None
                    if urlsplit(request.url).netloc == host or request.url.startswith(("data:", "blob:"))
                    else self.elsewhere.append(request.url)
                ),
            )
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("dialog", lambda dialog: dialog.accept())

    def shot(self, artifacts: Path, name: str) -> None:
        self.page.screenshot(path=str(artifacts / f"app-{name}.png"), full_page=True)

    def fits_the_screen(self) -> bool:
        """No horizontal scrolling at the phone's width (a mobile viewport would widen to fit)."""
        width = PHONE["viewport"]["width"]  # type: ignore[index]
        return bool(self.page.evaluate(f"document.documentElement.scrollWidth <= {width}"))

    def small_targets(self) -> list[str]:
        found: list[str] = self.page.evaluate(
            """() => [...document.querySelectorAll('button, a, input, select, textarea, label.button')]
                .filter(el => el.offsetParent !== null && !el.closest('.visually-hidden') && !el.classList.contains('skip'))
                .filter(el => { const r = el.getBoundingClientRect(); return r.height < 43.5; })
                .filter(el => !(el.tagName === 'A' && el.closest('p') && !el.classList.contains('back')))
                .map(el => el.outerHTML.slice(0, 100))"""
        )
        return found

    def unlabelled_controls(self) -> list[str]:
        found: list[str] = self.page.evaluate(
            """() => [...document.querySelectorAll('input:not([type=hidden]), textarea, select, button')]
                .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                              && !(el.textContent || '').trim())
                .map(el => el.outerHTML.slice(0, 120))"""
        )
        return found

    def sign_up(self, email: str, password: str) -> None:
        page = self.page
        page.goto(f"{self.base}/app/")
        page.get_by_role("link", name=re.compile("Create an account|Créer un compte")).click()
        page.get_by_label(re.compile("Your name|Votre nom")).fill("Sam Worker")
        page.get_by_label(re.compile("e-mail", re.IGNORECASE)).fill(email)
        page.get_by_label(re.compile("Password|Mot de passe")).fill(password)
        page.get_by_role("button", name=re.compile("Create my account|Créer mon compte")).click()
        self.at(r"#/tasks$")

    def at(self, pattern: str, timeout: float = 30_000) -> None:
        """Wait until the app's address matches (its screens change the #fragment, not the page)."""
        self.page.wait_for_function(
            "pattern => new RegExp(pattern).test(location.href)", arg=pattern, timeout=timeout
        )

    def photo_card(self, n: int) -> Any:
        return self.page.locator(".photos > li").nth(n - 1)

    def close(self) -> None:
        self.context.close()


def test_a_worker_photographs_retakes_a_shaken_photo_submits_and_is_paid(
    app_client: Any, live_server: str, chromium: Any, artifacts_dir: Path
) -> None:
    Field(app_client, photo_rules={"min_photos": 1, "max_photos": 3, "min_short_side_px": 1000})
    phone = Phone(chromium, live_server)
    transferred: list[int] = []
    phone.page.on(
        "response",
        lambda r: (
            transferred.append(int(r.headers.get("content-length") or len(r.body())))
            if "/app/" in r.url and r.request.resource_type in ("document", "script", "stylesheet", "fetch")
            else None
        ),
    )
    try:
        page = phone.page
        page.goto(f"{live_server}/")  # the landing page leads to the app
        page.get_by_role("link", name=re.compile("open the app")).click()
        phone.at(r"/app/#/signin$")
        first_load = sum(transferred)
        assert first_load <= FIRST_LOAD_LIMIT, first_load
        phone.shot(artifacts_dir, "sign-in")
        page.get_by_role("link", name="Create an account").click()
        page.get_by_role("heading", name="Create your account").wait_for()
        assert phone.fits_the_screen() and phone.unlabelled_controls() == []
        phone.shot(artifacts_dir, "sign-up")
        phone.sign_up(f"sam-{secrets.token_hex(3)}@example.com", "correct horse battery 42")

        # Tasks near me: the demo store's task, nearest first, with its pay and the way to go.
        card = page.locator("a.card").filter(has_text="Yoghurt shelf").first
        card.wait_for()
        text = card.inner_text()
        assert "€5.00" in text and "15 min" in text and "€20.00 per hour" in text, text
        assert re.search(r"\d+ m to the (north|south)", text), text
        assert phone.fits_the_screen() and phone.unlabelled_controls() == []
        phone.shot(artifacts_dir, "tasks")
        card.click()
        page.get_by_role("button", name="Reserve this task").wait_for()
        assert "1 to 3 photo(s), at least 1,000 px on the short side." in page.locator("main").inner_text()
        assert phone.fits_the_screen() and phone.small_targets() == []
        phone.shot(artifacts_dir, "task")
        page.get_by_role("button", name="Reserve this task").click()
        phone.at(r"#/assignment/[0-9a-f-]{36}$")
        assignment_id = page.url.rsplit("/", 1)[1]
        assert "Time left:" in page.locator(".countdown").inner_text()

        # A shaken photo: its blur check fails with the explanation, while the worker is there.
        page.locator("#capture").set_input_files(str(SHAKEN))
        shaken = phone.photo_card(1)
        shaken.locator(".checks").wait_for(timeout=30_000)
        assert "Sharpness" in shaken.inner_text()
        assert "Hold the phone still" in shaken.inner_text()
        assert phone.fits_the_screen() and phone.small_targets() == [] and phone.unlabelled_controls() == []
        phone.shot(artifacts_dir, "capture-shaken")
        shaken.get_by_role("button", name="Delete and retake").click()
        expect(page.locator(".photos > li")).to_have_count(0)

        page.locator("#capture").set_input_files(str(SHARP))
        phone.photo_card(1).get_by_text("All checks passed.").wait_for(timeout=30_000)
        phone.shot(artifacts_dir, "capture-sharp")
        page.get_by_role("button", name="Submit my visit").click()
        # Before sending: the position, its precision, and no warning at the store.
        panel = page.locator(".position")
        panel.wait_for()
        assert re.search(r"Your position: \d+ m from the store, within 12 m", panel.inner_text()), (
            panel.inner_text()
        )
        assert "Warning" not in panel.inner_text()
        assert phone.fits_the_screen() and phone.small_targets() == []
        phone.shot(artifacts_dir, "submit-position")
        panel.get_by_role("button", name="Send my visit now").click()
        phone.at(rf"#/work/{assignment_id}$", timeout=30_000)
        page.locator(".decision.approved").wait_for(timeout=30_000)
        assert "Paid:" in page.locator("main").inner_text()
        assert "€5.00" in page.locator("main").inner_text()
        phone.shot(artifacts_dir, "work-approved")

        page.get_by_role("link", name="My work", exact=True).click()
        page.locator("a.card").first.wait_for()
        assert "approved" in page.locator("a.card").first.inner_text()
        phone.shot(artifacts_dir, "work")
        page.get_by_role("link", name="Settings").click()
        page.get_by_label("Language").wait_for()
        assert phone.fits_the_screen() and phone.unlabelled_controls() == []
        phone.shot(artifacts_dir, "settings")
        page.get_by_role("link", name="Earnings").click()
        phone.at(r"#/earnings$")
        page.wait_for_timeout(1500)
        phone.shot(artifacts_dir, "earnings")
        page.get_by_text("Available").wait_for()
        assert "€5.00" in page.locator(".balance").inner_text()
        page.get_by_label("Account holder").fill("Sam Worker")
        page.get_by_label("IBAN").fill("FR76 3000 6000 0112 3456 7890 188")  # one digit wrong
        page.get_by_role("button", name="Save").click()
        assert "not valid" in page.locator("main .error").first.inner_text()
        phone.shot(artifacts_dir, "earnings")
        assert phone.fits_the_screen() and phone.unlabelled_controls() == []
        assert phone.errors == [] and phone.elsewhere == []
    finally:
        phone.close()
    runtime = runtime_of(app_client)
    with runtime.db.transaction(read_only=True) as session:
        decided = session.get(Assignment, uuid.UUID(assignment_id))
        assert decided is not None and decided.status == "approved"
        # The first photo (the shaken one, since deleted) told when the worker reached the store.
        assert decided.arrived_at is not None and decided.submitted_at is not None
        assert decided.created_at < decided.arrived_at < decided.submitted_at


def test_offline_photos_and_submission_go_out_once_when_the_network_is_back(
    app_client: Any, live_server: str, chromium: Any, artifacts_dir: Path
) -> None:
    Field(app_client)
    phone = Phone(chromium, live_server, route=False)
    try:
        page = phone.page
        phone.sign_up(f"lea-{secrets.token_hex(3)}@example.com", "correct horse battery 43")
        page.locator("a.card").filter(has_text="Yoghurt shelf").first.click()
        page.get_by_role("button", name="Reserve this task").click()
        phone.at(r"#/assignment/[0-9a-f-]{36}$")
        assignment_id = page.url.rsplit("/", 1)[1]

        # The shell is cached by the service worker, which controls the page by now.
        assert page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        page.wait_for_function("() => navigator.serviceWorker.controller !== null")
        phone.context.set_offline(True)  # the store's basement
        page.locator("#capture").set_input_files(str(SHARP))
        phone.photo_card(1).get_by_text("Waiting for the network").wait_for()
        page.get_by_role("button", name="Submit my visit").click()
        page.get_by_role("button", name="Send my visit now").click()
        page.locator("#waiting").get_by_text("1 submission(s)").wait_for()
        assert "offline" in page.locator("#waiting").inner_text()
        phone.shot(artifacts_dir, "offline")
        page.reload()  # nothing captured is lost by a reload
        phone.photo_card(1).wait_for()
        page.locator("#waiting").get_by_text("1 submission(s)").wait_for()

        phone.context.set_offline(False)
        page.evaluate("window.dispatchEvent(new Event('online'))")
        phone.at(rf"#/work/{assignment_id}$", timeout=60_000)
        page.locator(".decision").wait_for(timeout=30_000)
        assert phone.errors == [] and phone.elsewhere == []
    finally:
        phone.close()
    runtime = runtime_of(app_client)
    with runtime.db.transaction(read_only=True) as session:
        worker = session.exec(
            select(Assignment.worker_id).where(Assignment.id == uuid.UUID(assignment_id))
        ).one()
        submitted = session.exec(
            select(func.count()).select_from(IdempotencyRecord).where(IdempotencyRecord.owner_id == worker)
        ).one()
        assert submitted == 1  # one submission, whatever was retried
        assert session.get(Assignment, uuid.UUID(assignment_id)).status in ("approved", "in_review")  # type: ignore[union-attr]


def test_a_rejected_visit_is_appealed_in_french(
    app_client: Any, live_server: str, chromium: Any, artifacts_dir: Path
) -> None:
    Field(app_client)
    phone = Phone(chromium, live_server, locale="fr-FR")
    try:
        page = phone.page
        phone.sign_up(f"ines-{secrets.token_hex(3)}@example.com", "correct horse battery 44")
        assert page.locator("h1").inner_text() == "Missions près de moi"
        page.locator("a.card").filter(has_text="Yoghurt shelf").first.click()
        page.get_by_role("button", name="Réserver cette mission").click()
        phone.at(r"#/assignment/[0-9a-f-]{36}$")
        page.locator("#capture").set_input_files(str(photos.PHOTOS_DIR / "blur_honor7x_176_defocus.jpg"))
        defocused = phone.photo_card(1)
        defocused.locator(".checks").wait_for(timeout=30_000)
        assert "La photo est floue" in defocused.inner_text()
        page.get_by_role("button", name="Envoyer ma visite", exact=True).click()
        page.get_by_role("button", name="Envoyer ma visite maintenant").click()
        page.locator(".decision.rejected").wait_for(timeout=60_000)
        assert "Refusé" in page.locator(".decision").inner_text()
        assert "La photo est floue" in page.locator(".decision").inner_text()
        phone.shot(artifacts_dir, "work-rejected-fr")
        with page.expect_popup() as opened:  # the written statement of reasons, to print or keep
            page.get_by_role("button", name=re.compile("Exposé des motifs")).click()
        statement = opened.value
        statement.wait_for_load_state()
        assert "Exposé des motifs" in statement.locator("h1").inner_text()
        assert "La photo est floue" in statement.locator("main").inner_text()
        statement.screenshot(path=str(artifacts_dir / "app-statement-fr.png"), full_page=True)
        statement.close()
        page.get_by_label("Pourquoi la décision est erronée").fill(
            "Le rayon était bien net, la photo a bougé."
        )
        page.get_by_role("button", name="Envoyer mon appel").click()
        page.get_by_text("en appel").first.wait_for()
        assert "Appel déposé" in page.locator(".history").inner_text()
        phone.shot(artifacts_dir, "work-appealed-fr")
        assert phone.fits_the_screen() and phone.unlabelled_controls() == []

        # Their own data, in one file; then the account is closed.
        page.evaluate("location.hash = '#/settings'")
        page.get_by_role("heading", name="Vos données").wait_for()
        page.get_by_role("button", name="Préparer mes données").click()
        ready = page.get_by_role("link", name=re.compile(r"Télécharger mes données \(\d+,\d Mo\)"))
        ready.wait_for(timeout=60_000)
        assert "sera supprimé le" in page.locator(".my-data").inner_text()
        phone.shot(artifacts_dir, "settings-my-data-fr")
        assert phone.fits_the_screen() and phone.unlabelled_controls() == [] and phone.small_targets() == []
        with page.expect_download() as downloading:
            ready.click()
        archive = zipfile.ZipFile(downloading.value.path())
        assert "README.txt" in archive.namelist()
        (appealed,) = json.loads(archive.read("appeals.json"))["data"]
        assert appealed["message"] == "Le rayon était bien net, la photo a bougé."
        (photo,) = json.loads(archive.read("assignments.json"))["data"][0]["photos"]
        assert (
            archive.read(photo["file"]) == (photos.PHOTOS_DIR / "blur_honor7x_176_defocus.jpg").read_bytes()
        )
        page.get_by_label("Mot de passe").fill("correct horse battery 44")
        page.get_by_role("button", name="Fermer mon compte").click()  # the confirmation is accepted
        phone.at(r"#/signin$")
        assert phone.errors == [] and phone.elsewhere == []
    finally:
        phone.close()
    with runtime_of(app_client).db.transaction(read_only=True) as session:
        assert session.exec(select(func.count()).select_from(User)).one() >= 2
        closed = session.exec(select(User).where(col(User.closed_at).is_not(None))).all()
        assert [u.display_name for u in closed] == ["Closed account"]
