"""What workers are told about the automated decisions is generated from the code: every check the
pipeline can produce is described, with the thresholds and settings in force, in both languages."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from fieldcheck.checks import photo, registry, visit
from fieldcheck.checks.photo import check_photo, reference_features
from fieldcheck.checks.service import PhotoWork, _twins, duplicate_check
from fieldcheck.photos.models import Photo
from tests.support import photos

SOURCES = [Path(photo.__file__).parent, Path(photo.__file__).parents[1] / "assignments" / "checking.py"]


def _named_in_code() -> set[str]:
    found: set[str] = set()
    for source in SOURCES:
        for path in [source] if source.is_file() else sorted(source.glob("*.py")):
            code = path.read_text()
            found |= set(re.findall(r'Check\.of\(\s*"([a-z_]+)"', code))
            found |= set(re.findall(r'report\.checks\.append\(\s*Check\.of\(\s*"([a-z_]+)"', code))
    # file checks are made by a local helper, fail("...") builds "file" ones
    return found | {"file"}


def test_every_check_the_code_can_make_is_described(embedded_settings: Any) -> None:
    described = {rule.name for rule in registry.rules(embedded_settings)}
    assert _named_in_code() - described == set(), "a check the pipeline runs is missing from the registry"
    assert described - _named_in_code() == set(), "the registry describes a check the code no longer makes"


def test_the_pipeline_run_on_real_photos_makes_only_described_checks(embedded_settings: Any) -> None:
    described = {rule.name for rule in registry.rules(embedded_settings)}
    reference, _ = reference_features(photos.real("blur_honor7x_176_sharp.jpg"), max_bytes=1 << 26)
    assert reference is not None
    made: set[str] = set()
    for data in (
        photos.real("blur_honor7x_176_sharp.jpg"),
        photos.real("blur_honor7x_176_motion.jpg"),
        photos.real("shelf_grocery_milk_001.jpg"),
        b"not a photo at all",
    ):
        report = check_photo(data, min_short_side_px=1000, max_bytes=1 << 26, references=[reference])
        made |= {c.name for c in report.checks}
        works = [PhotoWork(Photo(storage_key="k", declared_type="image/jpeg", declared_bytes=1), report)] * 2
        _twins(works)
        made |= {c.name for w in works for c in w.extra}
    made.add(duplicate_check(False, False, None, False).name)
    place, fix = visit.Place(48.85, 2.35, 150), visit.Fix(48.85, 2.35, 12, False)
    location, _distance = visit.location_check(fix, place)
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    made |= {
        location.name,
        visit.accuracy_check(fix).name,  # type: ignore[union-attr]
        visit.travel_check(visit.PreviousVisit(48.0, 2.0, now - timedelta(hours=1)), fix, now).name,  # type: ignore[union-attr]
        visit.exif_time_check(None, reserved_at=now, submitted_at=now, present=False).name,
        visit.exif_gps_check(None, None, fix, place).name,
    }
    assert made - described == set()
    assert {"file", "blur", "exposure", "screen", "reference_match", "duplicate_in_submission"} <= made


@pytest.fixture
def client(embedded_settings: Any) -> Any:
    from litestar.testing import TestClient

    from fieldcheck import migrations
    from fieldcheck.app import create_app

    settings = embedded_settings.model_copy(update={"appeal_window_days": 21, "original_retention_days": 90})
    migrations.upgrade(settings)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_the_account_is_public_generated_and_in_both_languages(client: Any) -> None:
    english = client.get("/api/v1/transparency")
    assert english.status_code == 200  # no sign-in needed
    body = english.json()
    names = [check["name"] for check in body["checks"]]
    assert names[:3] == ["file", "decode", "resolution"] and "travel" in names
    blur = next(check for check in body["checks"] if check["name"] == "blur")
    assert f"{photo.BLUR_WARN_ABOVE:.2f} px" in " ".join(blur["thresholds"])  # the constant the check uses
    assert set(blur["outcomes"]) == {"pass", "warn", "fail"}
    assert "appeal" in blur["outcomes"]["fail"]
    assert (
        body["appeal"]["window_days"] == 21 and "21 days" in body["appeal"]["text"]
    )  # the settings in force
    assert "12.02 EUR" in body["pay_floor"]["text"]
    data = " ".join(body["data"])  # how long originals and positions are kept, from the settings
    assert data.count("90 days after the decision is final") == 2
    assert "stay for the client's audit" in data and "21 days to appeal" in data
    french = client.get("/api/v1/transparency", headers={"Accept-Language": "fr"}).json()
    assert [c["name"] for c in french["checks"]] == names
    assert "21 jours" in french["appeal"]["text"]
    assert " ".join(french["data"]).count("supprimés 90 jours après") == 1
    assert " ".join(french["data"]).count("90 jours après que la décision est définitive") == 2
    page = client.get("/transparency", headers={"Accept-Language": "fr"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src" not in page.headers["content-security-policy"]  # a page with no script at all
    assert "Comment fieldcheck décide" in page.text
    for name in names:
        assert f'id="{name}"' in page.text
