"""The reference match on real photos: same scene matches, unrelated photos do not, bad references
are refused with a reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fieldcheck.checks import reference
from fieldcheck.checks.photo import check_photo, reference_features
from fieldcheck.cli import main
from tests.support import photos

LIMIT = 25 * 1024 * 1024


def features_of(name: str) -> reference.Features:
    found, problem = reference_features(photos.real(name), max_bytes=LIMIT)
    assert found is not None, problem
    return found


def reference_check(name: str, references: list[reference.Features]) -> tuple[str, str]:
    report = check_photo(photos.real(name), min_short_side_px=0, max_bytes=LIMIT, references=references)
    found = next(c for c in report.checks if c.name == "reference_match")
    return found.outcome.value, found.value or ""


@pytest.mark.parametrize(
    ("photo", "ref"),
    [
        ("neardup_iphone6_hdr_off_gps.jpg", "neardup_iphone6_hdr_on_gps.jpg"),
        ("blur_honor10_180_defocus.jpg", "blur_honor10_180_sharp.jpg"),
        ("blur_honor10_180_motion.jpg", "blur_honor10_180_sharp.jpg"),
        ("blur_honor7x_176_defocus.jpg", "blur_honor7x_176_sharp.jpg"),
        ("shelf_grocery_milk_002_inhand.jpg", "shelf_grocery_milk_001.jpg"),
    ],
)
def test_photos_of_the_same_scene_match(photo: str, ref: str) -> None:
    outcome, value = reference_check(photo, [features_of("phone_nexus4_night_gps.jpg"), features_of(ref)])
    assert outcome == "pass", value
    match = reference.match(features_of(photo), features_of(ref))
    assert match.same_scene and match.inliers >= reference.MATCH_MIN_INLIERS
    assert match.corners is not None and len(match.corners) == 4


def test_unrelated_photos_do_not_match_and_go_to_a_person() -> None:
    refs = [features_of("blur_honor10_180_sharp.jpg"), features_of("shelf_grocery_milk_001.jpg")]
    outcome, value = reference_check("phone_oppo_r7plus_13mp_gps.jpg", refs)
    assert outcome == "warn", value
    names = [
        "phone_oppo_r7plus_13mp_gps.jpg",
        "phone_nexus4_night_gps.jpg",
        "phone_iphone4_receipt_gps.jpg",
        "blur_honor10_180_sharp.jpg",
        "blur_honor7x_176_sharp.jpg",
        "shelf_grocery_orange_juice_001.jpg",
    ]
    found = [features_of(n) for n in names]
    for i in range(len(found)):
        for j in range(i + 1, len(found)):
            assert not reference.match(found[i], found[j]).same_scene, (names[i], names[j])


def test_without_references_the_match_is_a_neutral_note() -> None:
    report = check_photo(
        photos.real("blur_honor10_180_sharp.jpg"), min_short_side_px=0, max_bytes=LIMIT, references=[]
    )
    found = next(c for c in report.checks if c.name == "reference_match")
    assert (found.outcome.value, found.value) == ("pass", "not measured")
    assert found.explanation.startswith("Not measured")
    assert report.outcome == "pass"


def test_stored_features_are_the_same_features() -> None:
    original = features_of("blur_honor10_180_sharp.jpg")
    again = reference.Features.from_bytes(original.to_bytes())
    assert np.array_equal(again.points, original.points)
    assert np.array_equal(again.descriptors, original.descriptors)
    assert again.size == original.size
    assert reference.match(features_of("blur_honor10_180_defocus.jpg"), again).same_scene


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"%PDF-1.4 not a photo", "PDF"),
        (b"hello, a text file", "text"),
        (
            photos.real("edge_iphonexr_1x1px_gps.jpg") if photos.PHOTOS_DIR.exists() else b"",
            "too little detail",
        ),
    ],
)
def test_a_bad_reference_is_refused_with_a_reason(data: bytes, reason: str) -> None:
    found, problem = reference_features(data, max_bytes=LIMIT)
    assert found is None
    assert problem is not None and reason in problem


def test_check_photos_runs_the_reference_match(tmp_path: Path) -> None:
    shared = photos.PHOTOS_DIR
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "check-photos",
            str(shared / "blur_honor10_180_motion.jpg"),
            str(shared / "phone_nexus4_night_gps.jpg"),
            "--min-short-side",
            "300",
            "--reference",
            str(shared / "blur_honor10_180_sharp.jpg"),
        ],
    )
    assert result.exit_code == 0, result.output
    first, second = result.output.split("phone_nexus4_night_gps.jpg:")
    assert "pass reference_match" in first
    assert "warn reference_match" in second
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    refused = runner.invoke(
        main, ["check-photos", str(shared / "blur_honor10_180_sharp.jpg"), "--reference", str(bad)]
    )
    assert refused.exit_code == 2
    assert "notes.jpg" in refused.output and "not a photo" in refused.output


def test_stored_features_say_their_kind_and_older_kinds_match_nothing() -> None:
    found = features_of("blur_honor10_180_sharp.jpg")
    again = reference.Features.from_bytes(found.to_bytes())
    assert again.current and again.method == reference.METHOD
    assert again.descriptors.shape[1] == reference.DESCRIPTOR_BYTES
    assert reference.match(found, again).same_scene
    # Features stored before the kind was written down (AKAZE's 61-byte descriptors).
    import io

    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        points=found.points,
        descriptors=np.zeros((len(found), 61), np.uint8),
        size=np.array(found.size, dtype=np.int32),
    )
    old = reference.Features.from_bytes(buffer.getvalue())
    assert not old.current
    assert reference.match(found, old).inliers == 0
