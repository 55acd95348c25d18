"""The per-photo checks: bytes in, measurements and explained outcomes out. No I/O.

Every check gives an outcome (pass, warn or fail), the measured value, the threshold it was held
to and an explanation a worker understands. The thresholds are named here, with why.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fieldcheck.checks import imaging, recapture, reference, sharpness
from fieldcheck.checks.hashes import MIN_DETAIL_FOR_HASHING, picture_hashes
from fieldcheck.checks.imaging import cv2
from fieldcheck.checks.models import Outcome

ACCEPTED_TYPES = ("jpeg", "png", "heic")
TYPE_NAMES = {"jpeg": "JPEG", "png": "PNG", "heic": "HEIC"}
ACCEPTED_NAMES = "JPEG, PNG or HEIC"

# The perceptual measures (exposure, screen, hashes) are taken on a small copy of fixed size, 512
# px on the long side; blur on a larger one (sharpness.WORKING_LONG_SIDE, 1600 px), where a
# shelf's price labels live: at 512 px a Gaussian blur of 1.5 px at 2400 px is below one pixel.
WORKING_LONG_SIDE = 512
# Width in pixels (at 1600 px) of the photo's sharpest edges (checks/sharpness.py), calibrated on
# 618 labelled real photos of 21 phones, 10 compact cameras and a DSLR, and full-resolution variants
# of them (eval/calibration/blur-photos.md, none in ../shared/photos): sharp ones measure 1.0 px in
# the median (95 % under 2.8), blurred ones 3.1 px (95 % over 1.76; the mildest, a Gaussian sigma
# of 1.5 px at 2400 px, from 1.3). The warning line is the upper end of the range where the
# calibration set is told apart best (0.922 from 1.64 to 1.67); the failure line is above every
# sharp photo of the set (the highest: a soft superzoom landscape, 3.5; a leaf macro, 3.1), and
# still refuses a third of the blurred ones outright.
BLUR_WARN_ABOVE = 1.67
BLUR_FAIL_ABOVE = 3.6
# Exposure, on the 0-255 grey scale of the working copy.
DARK_FAIL_BELOW = 35.0  # mean brightness: too dark to see a shelf
DARK_WARN_BELOW = 60.0
BRIGHT_FAIL_ABOVE = 235.0  # mean brightness: washed out
CLIPPED_WARN_SHARE = 0.25  # share of pixels burnt to white
FLAT_FAIL_BELOW = 12.0  # standard deviation: no contrast at all (lens covered, blank wall)
FLAT_WARN_BELOW = 24.0
# Screen recapture (checks/recapture.py): the share of the photo's windows whose spectrum holds a
# narrow peak (moire, refresh bands). Calibrated on 36 real photos (18 of screens), apart from the
# 34 it was then measured on (eval/calibration/screen-photos.md): the ordinary calibration photos
# measure 0.17 at most, but for two periodic scenes (siding boards 0.67, blinds 0.50); screens
# 0.33 and more, but for three (0.08 to 0.17). The line is the middle of that gap.
SCREEN_WARN_ABOVE = 0.25
# Below this many pixels on its short side, a photo is too small for blur, exposure or screen
# measures to mean anything: the resolution check already says why it fails.
MIN_MEASURABLE_SIDE = 64


@dataclass
class Check:
    name: str
    outcome: Outcome
    value: str | None
    threshold: str | None
    explanation: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "outcome": self.outcome.value,
            "value": self.value,
            "threshold": self.threshold,
            "explanation": self.explanation,
        }


@dataclass
class PhotoReport:
    """What the checks found out about one photo."""

    checks: list[Check] = field(default_factory=list)
    detected_type: str | None = None
    width: int | None = None
    height: int | None = None
    sha256: str | None = None
    phash: int | None = None
    dhash: int | None = None
    fingerprint: str | None = None
    detail: float | None = None
    exif: dict[str, Any] = field(default_factory=dict)
    orientation: int = 1
    measurements: dict[str, Any] = field(default_factory=dict)
    features: reference.Features | None = None  # local features, when references were given
    reference_index: int | None = None  # the reference it matched best
    reference_match: reference.Match | None = None
    # A HEIC's colour pixels at `colour_long_side` (stored orientation), when the caller asked for
    # them: libheif decodes only at full size, so the derivatives take these instead of a second decode.
    colour: np.ndarray | None = field(default=None, repr=False)

    @property
    def outcome(self) -> Outcome:
        return worst(c.outcome for c in self.checks)

    @property
    def comparable(self) -> bool:
        """Enough detail for a perceptual comparison to mean anything."""
        return self.phash is not None and (self.detail or 0) >= MIN_DETAIL_FOR_HASHING


def worst(outcomes: Iterable[Outcome]) -> Outcome:
    seen = set(outcomes)
    return next((o for o in (Outcome.fail, Outcome.warn) if o in seen), Outcome.passed)


def check_photo(
    data: bytes,
    *,
    min_short_side_px: int,
    max_bytes: int,
    max_pixels: int = imaging.MAX_PIXELS,
    references: Sequence[reference.Features] | None = None,
    colour_long_side: int | None = None,
) -> PhotoReport:
    """Every per-photo check; with `references` (even none), the reference match too. With
    `colour_long_side`, a HEIC's colour pixels at that size are kept in `report.colour`."""
    report = PhotoReport(sha256=hashlib.sha256(data).hexdigest())
    if not _file_safety(data, report, max_bytes=max_bytes, max_pixels=max_pixels):
        return report
    _resolution(report, min_short_side_px)
    detailed = _working_copy(data, report, colour_long_side)
    if detailed is None:
        return report
    gray = (
        imaging.resize_long_side(detailed, WORKING_LONG_SIDE)
        if max(detailed.shape) > WORKING_LONG_SIDE
        else detailed
    )
    _hashes(gray, report)
    if min(gray.shape) < MIN_MEASURABLE_SIDE:
        return report
    _blur(detailed, report)
    if references is not None:
        _reference_match(detailed, references, report)
    _exposure(gray, report)
    _recapture(detailed, report)
    return report


# 1. File safety --------------------------------------------------------------------------------
def _file_safety(data: bytes, report: PhotoReport, *, max_bytes: int, max_pixels: int) -> bool:
    kind = imaging.sniff_type(data)
    report.detected_type = kind
    size = f"{len(data)} bytes"

    def fail(explanation: str, value: str | None = None, threshold: str | None = None) -> bool:
        report.checks.append(Check("file", Outcome.fail, value or kind, threshold, explanation))
        return False

    if not data:
        return fail("The file is empty: the upload did not get through. Take or send the photo again.", size)
    if len(data) > max_bytes:
        return fail("The file is larger than photos may be.", size, f"at most {max_bytes} bytes")
    if kind not in ACCEPTED_TYPES:
        what = {"text": "text, not a photo", "svg": "a drawing (SVG), not a photo", "empty": "empty"}.get(
            kind, f"a {kind.upper()} file, not a photo in an accepted format"
        )
        return fail(
            f"This file is {what}. Send the photo as {ACCEPTED_NAMES}, as the camera saves it.",
            kind,
            ACCEPTED_NAMES,
        )
    structure = {"png": imaging.png_structure, "heic": imaging.heic_structure}.get(
        kind, imaging.jpeg_structure
    )(data)
    if not structure.complete:
        return fail(f"The file is damaged: {structure.problem}. Send the photo again.", kind)
    heic_header = None
    if kind == "heic":
        try:
            heic_header = imaging.read_heic_header(data)
        except (ValueError, RuntimeError, OSError) as exc:
            return fail(f"The HEIC file cannot be read ({_reason(exc)}). Send the photo again.", kind)
        declared: tuple[int, int] | None = (heic_header.width, heic_header.height)
    else:
        declared = imaging.declared_size(data, kind)
    if declared is None:
        return fail("The file's header gives no image size. Send the photo again.", kind)
    width, height = declared
    if width * height > max_pixels:
        return fail(
            "The image claims to be far larger than any phone photo; it was not opened.",
            f"{width}x{height} ({width * height / 1e6:.0f} MP)",
            f"at most {max_pixels / 1e6:.0f} MP",
        )
    if width == 0 or height == 0:
        return fail("The image has no pixels. Send the photo again.", f"{width}x{height}")
    if kind == "heic" and width * height > imaging.HEIC_MAX_PIXELS:
        return fail(
            "A HEIC photo this large cannot be checked safely (HEIC is decoded only at full size). "
            "Set the camera to a lower resolution, or to JPEG (Most Compatible).",
            f"{width}x{height} ({width * height / 1e6:.0f} MP, HEIC)",
            f"a HEIC of at most {imaging.HEIC_MAX_PIXELS / 1e6:.0f} MP",
        )
    progressive = kind == "jpeg" and imaging.is_progressive(data)
    if (kind == "png" or progressive) and width * height > imaging.FULL_SIZE_MAX_PIXELS:
        what = "PNG" if kind == "png" else "progressive JPEG"
        return fail(
            f"A {what} this large cannot be checked safely. Send the photo as the camera saves it "
            "(a standard JPEG).",
            f"{width}x{height} ({width * height / 1e6:.0f} MP, {what})",
            f"a {what} of at most {imaging.FULL_SIZE_MAX_PIXELS / 1e6:.0f} MP",
        )
    report.measurements["progressive"] = progressive
    try:
        header = heic_header or imaging.read_header(data)
    except (imaging.UnidentifiedImageError, OSError, ValueError, Image_DecompressionBombError) as exc:
        return fail(f"The file's header cannot be read ({type(exc).__name__}). Send the photo again.", kind)
    report.width, report.height = header.upright_size
    report.orientation = header.orientation
    report.exif = header.exif
    if header.exif_problem:
        report.measurements["exif_problem"] = header.exif_problem
    report.checks.append(
        Check(
            "file",
            Outcome.passed,
            f"{TYPE_NAMES[kind]}, {header.width}x{header.height}",
            ACCEPTED_NAMES,
            f"A complete {TYPE_NAMES[kind]} image.",
        )
    )
    return True


Image_DecompressionBombError = imaging.Image.DecompressionBombError


def _reason(exc: Exception) -> str:
    text = str(exc).strip().split("\n")[0][:120]
    return text or type(exc).__name__


# 2. Resolution -------------------------------------------------------------------------------
def _resolution(report: PhotoReport, min_short_side_px: int) -> None:
    assert report.width is not None
    assert report.height is not None
    short = min(report.width, report.height)
    value = f"{report.width}x{report.height}"
    if short < min_short_side_px:
        report.checks.append(
            Check(
                "resolution",
                Outcome.fail,
                value,
                f"short side at least {min_short_side_px} px",
                f"The photo is {short} px on its short side; this campaign needs at least "
                f"{min_short_side_px} px so the products can be read. Use the phone's main camera "
                "at full resolution, not a screenshot or a messaging app's copy.",
            )
        )
    else:
        report.checks.append(
            Check(
                "resolution",
                Outcome.passed,
                value,
                f"short side at least {min_short_side_px} px",
                "The resolution is enough.",
            )
        )


def _working_copy(data: bytes, report: PhotoReport, colour_long_side: int | None = None) -> np.ndarray | None:
    assert report.width is not None
    assert report.height is not None
    factor = imaging.reduction_within_budget(
        report.detected_type or "",
        report.width,
        report.height,
        target=sharpness.WORKING_LONG_SIDE,
        channels=1,
        progressive=bool(report.measurements.get("progressive")),
    )
    if factor is None:  # the gates of the file check keep this from happening
        raise ValueError("no decode of this image fits the memory budget")
    with imaging.decoding():
        if report.detected_type == "heic" and colour_long_side:
            colour = imaging.decode(data, factor=factor, color=True)
            gray = None if colour is None else cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY)
            if colour is not None:
                report.colour = (
                    imaging.resize_long_side(colour, colour_long_side)
                    if max(colour.shape[:2]) > colour_long_side
                    else colour
                )
            del colour
        else:
            gray = imaging.decode(data, factor=factor, color=False)
        if gray is not None and max(gray.shape) > sharpness.WORKING_LONG_SIDE:
            gray = imaging.resize_long_side(gray, sharpness.WORKING_LONG_SIDE)
    if gray is None:
        report.checks.append(
            Check(
                "decode",
                Outcome.fail,
                report.detected_type,
                None,
                "The image data cannot be decoded: the file is damaged. Send the photo again.",
            )
        )
        return None
    report.measurements.update(decoded=True, decode_factor=factor)
    return gray


# 3. Blur -------------------------------------------------------------------------------------
def _blur(gray: np.ndarray, report: PhotoReport) -> None:
    measured = sharpness.measure(gray)
    width = measured.edge_width
    report.measurements.update(edge_width=None if width is None else round(width, 2), noise=measured.noise)
    threshold = (
        f"sharpest edges at most {BLUR_WARN_ABOVE:.2f} px wide at {sharpness.WORKING_LONG_SIDE} px "
        f"(fails above {BLUR_FAIL_ABOVE:.1f})"
    )
    retake = "Hold the phone still, tap the screen to focus on the shelf, and take it again."
    if width is None:
        report.checks.append(
            Check(
                "blur",
                Outcome.warn,
                "no clear edge",
                threshold,
                "No clear edge could be found in the photo: it may be blurred, or show nothing "
                "with sharp outlines. A reviewer will check that the details can be read.",
            )
        )
    elif width > BLUR_FAIL_ABOVE:
        report.checks.append(
            Check(
                "blur",
                Outcome.fail,
                f"{width:.2f} px",
                threshold,
                f"The photo is blurred: even its sharpest edges are {width:.1f} px wide, so the "
                f"details cannot be read. {retake}",
            )
        )
    elif width > BLUR_WARN_ABOVE:
        report.checks.append(
            Check(
                "blur",
                Outcome.warn,
                f"{width:.2f} px",
                threshold,
                "The photo looks a little soft (shaken or not quite in focus); a reviewer will check "
                f"that the details can be read. Next time: {retake[0].lower()}{retake[1:]}",
            )
        )
    else:
        report.checks.append(
            Check("blur", Outcome.passed, f"{width:.2f} px", threshold, "The photo is sharp.")
        )


# 4. Exposure ---------------------------------------------------------------------------------
def _exposure(gray: np.ndarray, report: PhotoReport) -> None:
    mean, std = (float(v[0][0]) for v in cv2.meanStdDev(gray))
    clipped = float(np.count_nonzero(gray >= 250)) / gray.size
    report.measurements.update(brightness=round(mean, 1), contrast=round(std, 1), clipped=round(clipped, 3))
    value = f"brightness {mean:.0f}, contrast {std:.0f}, {clipped:.0%} burnt white"
    threshold = (
        f"brightness {DARK_WARN_BELOW:.0f}-{BRIGHT_FAIL_ABOVE:.0f}, contrast at least "
        f"{FLAT_WARN_BELOW:.0f}, under {CLIPPED_WARN_SHARE:.0%} burnt white"
    )
    if std < FLAT_FAIL_BELOW:
        outcome, why = (
            Outcome.fail,
            (
                "The photo shows almost nothing: it is one flat colour (lens covered, or "
                "pointed at a wall). Photograph the shelf."
            ),
        )
    elif mean < DARK_FAIL_BELOW:
        outcome, why = (
            Outcome.fail,
            "The photo is too dark to see the products. Turn towards the light or use the flash.",
        )
    elif mean > BRIGHT_FAIL_ABOVE:
        outcome, why = (
            Outcome.fail,
            "The photo is washed out: nearly everything is white. Avoid pointing at a lamp or window.",
        )
    elif mean < DARK_WARN_BELOW:
        outcome, why = Outcome.warn, "The photo is dark; a reviewer will check that the products can be seen."
    elif clipped > CLIPPED_WARN_SHARE:
        outcome, why = Outcome.warn, "A large part of the photo is burnt white; a reviewer will check it."
    elif std < FLAT_WARN_BELOW:
        outcome, why = Outcome.warn, "The photo has very little contrast; a reviewer will check it."
    else:
        outcome, why = Outcome.passed, "The exposure is fine."
    report.checks.append(Check("exposure", outcome, value, threshold, why))


# 5. Hashes for duplicate detection (compared elsewhere, against every earlier photo) ----------
def _hashes(gray: np.ndarray, report: PhotoReport) -> None:
    report.phash, report.dhash, report.fingerprint, report.detail = picture_hashes(gray, report.orientation)


# 7. Screen recapture -------------------------------------------------------------------------
def _recapture(gray: np.ndarray, report: PhotoReport) -> None:
    """On the 1600 px copy (`gray`); the JPEG's block grid is left out of the peaks."""
    block = None
    if report.detected_type == "jpeg" and report.width and report.height:
        factor = int(report.measurements.get("decode_factor") or 1)
        block = recapture.block_period(max(report.width, report.height), factor, max(gray.shape))
    share, windows = recapture.screen_share(gray, block)
    report.measurements.update(screen_share=round(share, 3), screen_windows=windows)
    value = f"{share:.0%} of {windows} parts" if windows else "not measured (too small)"
    threshold = f"a fine regular pattern in at most {SCREEN_WARN_ABOVE:.0%} of the photo's parts"
    if share > SCREEN_WARN_ABOVE:
        report.checks.append(
            Check(
                "screen",
                Outcome.warn,
                value,
                threshold,
                "The photo shows a fine regular pattern over much of it, as photos of a screen do. "
                "Photos must be taken of the real shelf; a reviewer will check this one.",
            )
        )
    else:
        report.checks.append(
            Check("screen", Outcome.passed, value, threshold, "No sign of a photo of a screen.")
        )


# 8. Reference match --------------------------------------------------------------------------
def _reference_match(gray: np.ndarray, references: Sequence[reference.Features], report: PhotoReport) -> None:
    copy = gray
    if max(gray.shape) > reference.FEATURE_LONG_SIDE:
        copy = imaging.resize_long_side(gray, reference.FEATURE_LONG_SIDE)
    report.features = reference.features(imaging.upright(copy, report.orientation))
    threshold = (
        f"at least {reference.MATCH_MIN_INLIERS} matched points agreeing on one perspective, "
        f"{reference.MATCH_MIN_SHARE:.0%} of the matches"
    )
    usable = [i for i, r in enumerate(references) if len(r) >= reference.MIN_MATCHES]
    if not usable:
        report.checks.append(
            Check(
                "reference_match",
                Outcome.passed,
                "not measured",
                threshold,
                "Not measured: there is no reference photo for this shelf yet.",
            )
        )
        report.measurements["reference_match"] = "not measured"
        return
    found = reference.best_match(report.features, [references[i] for i in usable])
    assert found is not None
    index, best = found
    report.reference_index = usable[index]
    report.reference_match = best
    report.measurements.update(reference_inliers=best.inliers, reference_share=round(best.share, 2))
    value = f"{best.inliers} points ({best.share:.0%} of {best.matches} matches)"
    if best.same_scene:
        report.checks.append(
            Check(
                "reference_match",
                Outcome.passed,
                value,
                threshold,
                "The photo shows the shelf that was asked for.",
            )
        )
    else:
        report.checks.append(
            Check(
                "reference_match",
                Outcome.warn,
                value,
                threshold,
                "The photo does not look like the reference photos of this shelf; a reviewer will "
                "check that it shows what was asked for. Photograph the shelf shown in the task.",
            )
        )


def reference_features(data: bytes, *, max_bytes: int) -> tuple[reference.Features | None, str | None]:
    """A reference photo's features, read through the same gates as any photo; or why it cannot be one."""
    return reference_features_of(check_photo(data, min_short_side_px=0, max_bytes=max_bytes, references=()))


def reference_features_of(report: PhotoReport) -> tuple[reference.Features | None, str | None]:
    """The features of a photo checked with references (even none), or why it cannot be a reference."""
    failed = next(
        (c for c in report.checks if c.outcome is Outcome.fail and c.name in ("file", "decode")), None
    )
    if failed is not None:
        return None, failed.explanation
    if report.features is None or len(report.features) < reference.MIN_MATCHES:
        return None, "The reference photo has too little detail to be compared with (too small or blank)."
    return report.features, None
