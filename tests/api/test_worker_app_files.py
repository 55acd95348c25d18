"""The workers' app is served by fieldcheck itself: its files, their security headers, its texts."""

from __future__ import annotations

import re
from typing import Any

import pytest

from fieldcheck.workerapp import controllers
from fieldcheck.workerapp.texts import TEXTS

APP_JS = (controllers.STATIC / "app.js").read_text()


@pytest.fixture
def client(embedded_settings: Any) -> Any:
    from litestar.testing import TestClient

    from fieldcheck import migrations
    from fieldcheck.app import create_app

    migrations.upgrade(embedded_settings)
    with TestClient(create_app(embedded_settings)) as test_client:
        yield test_client


def test_the_root_leads_people_to_the_app_or_the_console(client: Any) -> None:
    english = client.get("/")
    assert english.status_code == 200 and english.headers["content-type"].startswith("text/html")
    assert 'href="/app/"' in english.text and 'href="/console/"' in english.text
    assert "open the app" in english.text
    french = client.get("/", headers={"Accept-Language": "fr-FR"})
    assert "ouvrir l&#x27;application" in french.text or "ouvrir l'application" in french.text
    assert '<html lang="fr">' in french.text


def test_the_app_shell_runs_only_its_own_files(client: Any) -> None:
    page = client.get("/app/")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "style-src 'self';" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    assert '<script type="module" src="/app/app.js">' in page.text
    assert "<script>" not in page.text and "style=" not in page.text  # nothing inline
    for name, kind in controllers.FILES.items():
        answer = client.get(f"/app/{name}")
        assert answer.status_code == 200, name
        assert answer.headers["content-type"].startswith(kind), name
    worker = client.get("/app/sw.js")
    assert worker.headers["service-worker-allowed"] == "/app/"
    assert "__VERSION__" not in worker.text and controllers.shell_version() in worker.text
    assert client.get("/app/../settings.py").status_code == 404
    assert client.get("/app/secret.txt").status_code == 404
    assert client.get("/app/texts/de.json").status_code == 404


def test_every_text_the_app_uses_exists_in_english_and_french(client: Any) -> None:
    english = client.get("/app/texts/en.json").json()
    french = client.get("/app/texts/fr.json").json()
    assert set(english) == set(french) == set(TEXTS)
    used = set(re.findall(r'\bt\("([a-z0-9_]+)"', APP_JS))
    prefixes = set(re.findall(r"\bt\(`([a-z_]+)\$\{", APP_JS))
    assert used - set(TEXTS) == set(), "texts the app asks for that do not exist"
    for prefix in prefixes:
        assert any(key.startswith(prefix) for key in TEXTS), prefix
    # Keys built at run time name these families; each member the API can send has a text.
    for family, values in {
        "status_": (
            "reserved",
            "submitted",
            "in_review",
            "approved",
            "rejected",
            "appealed",
            "expired",
            "cancelled",
        ),
        "check_": (
            "file",
            "decode",
            "resolution",
            "blur",
            "exposure",
            "screen",
            "reference_match",
            "duplicate",
            "duplicate_in_submission",
            "exif_time",
            "exif_gps",
            "location",
            "location_accuracy",
            "travel",
        ),
        "payment_": ("released", "due", "pending", "none"),
        "payout_": ("requested", "sending", "sent", "failed"),
        "by_": ("system", "reviewer"),
    }.items():
        for value in values:
            assert f"{family}{value}" in TEXTS, f"{family}{value}"
    untranslated = [
        key
        for key in TEXTS
        if french[key] == english[key]
        and not english[key].startswith(("fieldcheck", "{", "Photos", "IBAN", "Photo {n}"))
    ]
    assert untranslated == []
    assert french["tasks_title"] == "Missions près de moi"
