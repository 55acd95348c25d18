"""HEIC/HEIF, as iPhones shoot by default: read, gated, checked and turned into JPEG copies."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from fieldcheck.checks import imaging
from fieldcheck.checks.derivatives import make_derivatives
from fieldcheck.checks.photo import check_photo, reference_features
from tests.support import photos

LIMIT = 25 * 1024 * 1024


def checks_of(data: bytes, min_side: int = 1000) -> dict[str, Any]:
    report = check_photo(data, min_short_side_px=min_side, max_bytes=LIMIT)
    return {c.name: c for c in report.checks}


def test_a_heic_photo_is_checked_like_a_jpeg() -> None:
    report = check_photo(photos.heic(), min_short_side_px=1000, max_bytes=LIMIT)
    assert imaging.sniff_type(photos.heic()) == "heic"
    assert [c.name for c in report.checks] == ["file", "resolution", "blur", "exposure", "screen"]
    assert report.outcome == "pass", [(c.name, c.outcome, c.value) for c in report.checks]
    assert report.checks[0].value == "HEIC, 1600x1200"
    assert report.exif["make"] == "Apple" and report.exif["model"] == "iPhone 15"
    assert report.phash is not None and report.measurements["decoded"]


def test_a_turned_heic_is_upright_once() -> None:
    # Saved with orientation 6, the container carries the rotation; libheif applies it, and the
    # EXIF orientation (informative only in HEIF) is not applied a second time.
    report = check_photo(photos.heic(orientation=6), min_short_side_px=0, max_bytes=LIMIT)
    assert (report.width, report.height, report.orientation) == (1200, 1600, 1)
    derived = make_derivatives(
        photos.heic(orientation=6),
        width=1200,
        height=1600,
        orientation=report.orientation,
        detected_type="heic",
    )
    safe = Image.open(io.BytesIO(derived.safe))
    assert safe.format == "JPEG" and safe.size == (1200, 1600)
    assert not safe.getexif()


def test_a_heic_copy_of_a_jpeg_is_the_same_picture() -> None:
    from fieldcheck.checks.hashes import same_picture

    as_jpeg = check_photo(
        photos.jpeg(photos.scene(width=1600, height=1200, seed=3)), min_short_side_px=0, max_bytes=LIMIT
    )
    as_heic = check_photo(photos.heic(), min_short_side_px=0, max_bytes=LIMIT)
    assert same_picture(as_jpeg, as_heic)[0]


def test_a_heic_bomb_is_refused_before_any_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_decode(*_: Any, **__: Any) -> None:
        raise AssertionError("decoded")

    monkeypatch.setattr(imaging, "decode_heic", no_decode)
    huge = checks_of(photos.heic_claiming(40000, 40000))["file"]
    assert huge.outcome == "fail" and "far larger" in huge.explanation
    large = checks_of(photos.heic_claiming(6000, 5000))["file"]
    assert large.outcome == "fail" and "HEIC" in large.value and "JPEG (Most Compatible)" in large.explanation


@pytest.mark.parametrize(
    ("mangle", "expected"),
    [
        (lambda d: d[: len(d) // 2], "truncated"),
        (lambda d: d[:-7], "truncated"),
        (lambda d: d + b"PK\x03\x04" + b"\x00" * 40, "ZIP archive"),
        (lambda d: d + b"<script>alert(1)</script>", "web page or script"),
        (lambda d: d[:4] + b"ftypavif" + d[12:], "AVIF"),
    ],
)
def test_damaged_or_disguised_heic_fails_with_a_reason(mangle: Any, expected: str) -> None:
    found = checks_of(mangle(photos.heic()))["file"]
    assert found.outcome == "fail"
    assert expected in found.explanation


def test_a_heic_whose_size_lies_fails_to_decode() -> None:
    # The header says 1000 x 1000; the coded image is 320 x 240: libheif refuses, the check says so.
    report = check_photo(photos.heic_claiming(1000, 1000), min_short_side_px=0, max_bytes=LIMIT)
    assert report.outcome == "fail"
    assert {c.name for c in report.checks if c.outcome == "fail"} & {"decode", "file"}


def test_a_heic_serves_as_a_reference() -> None:
    found, problem = reference_features(photos.heic(), max_bytes=LIMIT)
    assert problem is None and found is not None and len(found) > 50


def test_a_heic_is_decoded_once_for_its_checks_and_its_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    """libheif decodes only at full size: the check keeps the colour pixels the copies need, and the
    copies and the checks come out the same as with a decode each."""
    from fieldcheck.checks.derivatives import SAFE_LONG_SIDE

    data = photos.heic(orientation=6)
    plain = check_photo(data, min_short_side_px=0, max_bytes=LIMIT)
    separate = make_derivatives(data, width=1200, height=1600, orientation=1, detected_type="heic")
    calls: list[bool] = []
    real = imaging.decode_heic

    def counted(blob: bytes, *, color: bool) -> Any:
        calls.append(color)
        return real(blob, color=color)

    monkeypatch.setattr(imaging, "decode_heic", counted)
    report = check_photo(data, min_short_side_px=0, max_bytes=LIMIT, colour_long_side=SAFE_LONG_SIDE)
    assert report.colour is not None and report.colour.ndim == 3
    once = make_derivatives(
        data,
        width=1200,
        height=1600,
        orientation=report.orientation,
        detected_type="heic",
        decoded=report.colour,
    )
    assert calls == [True]  # one decode, in colour, for both
    assert [(c.name, c.outcome, c.value) for c in report.checks] == [
        (c.name, c.outcome, c.value) for c in plain.checks
    ]
    assert (report.phash, report.measurements) == (plain.phash, plain.measurements)
    assert (once.safe, once.thumbnail) == (separate.safe, separate.thumbnail)
    # Without the request nothing is kept, and a JPEG never keeps colour pixels.
    assert check_photo(data, min_short_side_px=0, max_bytes=LIMIT).colour is None
    jpeg = photos.jpeg(photos.scene(width=1600, height=1200, seed=3))
    assert (
        check_photo(jpeg, min_short_side_px=0, max_bytes=LIMIT, colour_long_side=SAFE_LONG_SIDE).colour
        is None
    )
