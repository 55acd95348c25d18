"""The per-photo checks: bytes in, measurements and explained outcomes out. No I/O.

Every check gives an outcome (pass, warn or fail), the measured value, the threshold it was held
to and an explanation a worker understands. The thresholds are named here, with why.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from fieldcheck.checks import imaging, recapture, reference, sharpness
from fieldcheck.checks.hashes import MIN_DETAIL_FOR_HASHING, picture_hashes
from fieldcheck.checks.imaging import cv2
from fieldcheck.checks.models import Outcome
from fieldcheck.i18n import Text, _, text

ACCEPTED_TYPES = ("jpeg", "png", "heic")
TYPE_NAMES = {"jpeg": "JPEG", "png": "PNG", "heic": "HEIC"}
ACCEPTED_NAMES = _("JPEG, PNG or HEIC")

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
    """One check's outcome, in English (`value`, `threshold`, `explanation`), and the same texts as
    `texts` (Text: a message id of the catalogues and its values) to be read in another language."""

    name: str
    outcome: Outcome
    value: str | None
    threshold: str | None
    explanation: str
    texts: dict[str, Text] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        name: str,
        outcome: Outcome,
        value: Text | str | None,
        threshold: Text | str | None,
        explanation: Text,
    ) -> Check:
        """A check whose texts are Texts (a plain string value is data: a type, a size)."""
        texts = {
            key: found
            for key, found in (("value", value), ("threshold", threshold), ("explanation", explanation))
            if isinstance(found, Text)
        }
        return cls(name, outcome, _english(value), _english(threshold), explanation.english, texts)

    def rendered(self, language: str | None = None) -> dict[str, str | None]:
        """value, threshold and explanation in a language (the current one by default)."""
        return {
            "value": self.texts["value"].render(language) if "value" in self.texts else self.value,
            "threshold": self.texts["threshold"].render(language)
            if "threshold" in self.texts
            else self.threshold,
            "explanation": self.texts["explanation"].render(language)
            if "explanation" in self.texts
            else self.explanation,
        }

    def texts_json(self) -> dict[str, Any]:
        return {key: found.as_json() for key, found in self.texts.items()}

    def as_dict(self, language: str | None = None) -> dict[str, Any]:
        return {"name": self.name, "outcome": self.outcome.value, **self.rendered(language)}

    def to_json(self) -> dict[str, Any]:
        """The whole check, English and Texts, to be stored and read back (`from_json`)."""
        return {
            "name": self.name,
            "outcome": self.outcome.value,
            "value": self.value,
            "threshold": self.threshold,
            "explanation": self.explanation,
            "texts": self.texts_json(),
        }

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> Check:
        return cls(
            str(stored["name"]),
            Outcome(stored["outcome"]),
            stored.get("value"),
            stored.get("threshold"),
            str(stored["explanation"]),
            {key: Text.from_json(found) for key, found in (stored.get("texts") or {}).items()},
        )


def _english(value: Text | str | None) -> str | None:
    return value.english if isinstance(value, Text) else value


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

    # What a later decision needs of a measured photo, to be stored (JSON) and used again without
    # reading or decoding the photo a second time; pixels and local features are not in it.
    STORED: ClassVar[tuple[str, ...]] = (
        "detected_type",
        "width",
        "height",
        "sha256",
        "phash",
        "dhash",
        "fingerprint",
        "detail",
    )

    def to_json(self) -> dict[str, Any]:
        return {
            **{name: getattr(self, name) for name in self.STORED},
            "checks": [check.to_json() for check in self.checks],
            "exif": self.exif,
            "orientation": self.orientation,
            "measurements": self.measurements,
        }

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> PhotoReport:
        report = cls(
            checks=[Check.from_json(check) for check in stored.get("checks") or []],
            exif=dict(stored.get("exif") or {}),
            orientation=int(stored.get("orientation") or 1),
            measurements=dict(stored.get("measurements") or {}),
        )
        for name in cls.STORED:
            setattr(report, name, stored.get(name))
        return report

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

    def fail(explanation: Text, value: Text | str | None = None, threshold: Text | str | None = None) -> bool:
        report.checks.append(Check.of("file", Outcome.fail, value or kind, threshold, explanation))
        return False

    size = text(_("{bytes} bytes"), bytes=len(data))
    if not data:
        return fail(
            text(_("The file is empty: the upload did not get through. Take or send the photo again.")), size
        )
    if len(data) > max_bytes:
        return fail(
            text(_("The file is larger than photos may be.")),
            size,
            text(_("at most {limit} bytes"), limit=max_bytes),
        )
    if kind not in ACCEPTED_TYPES:
        if kind == "text":
            what = _("This file is text, not a photo. Send the photo as {accepted}, as the camera saves it.")
        elif kind == "svg":
            what = _(
                "This file is a drawing (SVG), not a photo. Send the photo as {accepted}, as the camera saves it."
            )
        elif kind == "empty":
            what = _("This file is empty. Send the photo as {accepted}, as the camera saves it.")
        else:
            what = _(
                "This file is a {kind} file, not a photo in an accepted format. Send the photo as "
                "{accepted}, as the camera saves it."
            )
        return fail(
            text(what, kind=kind.upper(), accepted=text(ACCEPTED_NAMES)),
            kind,
            text(ACCEPTED_NAMES),
        )
    structure = {"png": imaging.png_structure, "heic": imaging.heic_structure}.get(
        kind, imaging.jpeg_structure
    )(data)
    if not structure.complete:
        return fail(
            text(_("The file is damaged: {problem}. Send the photo again."), problem=structure.problem), kind
        )
    heic_header = None
    if kind == "heic":
        try:
            heic_header = imaging.read_heic_header(data)
        except (ValueError, RuntimeError, OSError) as exc:
            return fail(
                text(
                    _("The HEIC file cannot be read ({reason}). Send the photo again."), reason=_reason(exc)
                ),
                kind,
            )
        declared: tuple[int, int] | None = (heic_header.width, heic_header.height)
    else:
        declared = imaging.declared_size(data, kind)
    if declared is None:
        return fail(text(_("The file's header gives no image size. Send the photo again.")), kind)
    width, height = declared
    if width * height > max_pixels:
        return fail(
            text(_("The image claims to be far larger than any phone photo; it was not opened.")),
            text(
                _("{width}x{height} ({megapixels:.0f} MP)"),
                width=width,
                height=height,
                megapixels=width * height / 1e6,
            ),
            text(_("at most {limit:.0f} MP"), limit=max_pixels / 1e6),
        )
    if width == 0 or height == 0:
        return fail(text(_("The image has no pixels. Send the photo again.")), f"{width}x{height}")
    if kind == "heic" and width * height > imaging.HEIC_MAX_PIXELS:
        return fail(
            text(
                _(
                    "A HEIC photo this large cannot be checked safely (HEIC is decoded only at full size). "
                    "Set the camera to a lower resolution, or to JPEG (Most Compatible)."
                )
            ),
            text(
                _("{width}x{height} ({megapixels:.0f} MP, HEIC)"),
                width=width,
                height=height,
                megapixels=width * height / 1e6,
            ),
            text(_("a HEIC of at most {limit:.0f} MP"), limit=imaging.HEIC_MAX_PIXELS / 1e6),
        )
    progressive = kind == "jpeg" and imaging.is_progressive(data)
    if (kind == "png" or progressive) and width * height > imaging.FULL_SIZE_MAX_PIXELS:
        what = "PNG" if kind == "png" else _("progressive JPEG")
        return fail(
            text(
                _(
                    "A {what} this large cannot be checked safely. Send the photo as the camera saves it "
                    "(a standard JPEG)."
                ),
                what=text(what),
            ),
            text(
                _("{width}x{height} ({megapixels:.0f} MP, {what})"),
                width=width,
                height=height,
                megapixels=width * height / 1e6,
                what=text(what),
            ),
            text(
                _("a {what} of at most {limit:.0f} MP"),
                what=text(what),
                limit=imaging.FULL_SIZE_MAX_PIXELS / 1e6,
            ),
        )
    report.measurements["progressive"] = progressive
    try:
        header = heic_header or imaging.read_header(data)
    except (imaging.UnidentifiedImageError, OSError, ValueError, Image_DecompressionBombError) as exc:
        return fail(
            text(
                _("The file's header cannot be read ({reason}). Send the photo again."),
                reason=type(exc).__name__,
            ),
            kind,
        )
    report.width, report.height = header.upright_size
    report.orientation = header.orientation
    report.exif = header.exif
    if header.exif_problem:
        report.measurements["exif_problem"] = header.exif_problem
    report.checks.append(
        Check.of(
            "file",
            Outcome.passed,
            f"{TYPE_NAMES[kind]}, {header.width}x{header.height}",
            text(ACCEPTED_NAMES),
            text(_("A complete {kind} image."), kind=TYPE_NAMES[kind]),
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
    threshold = text(_("short side at least {limit} px"), limit=min_short_side_px)
    if short < min_short_side_px:
        report.checks.append(
            Check.of(
                "resolution",
                Outcome.fail,
                value,
                threshold,
                text(
                    _(
                        "The photo is {short} px on its short side; this campaign needs at least "
                        "{limit} px so the products can be read. Use the phone's main camera "
                        "at full resolution, not a screenshot or a messaging app's copy."
                    ),
                    short=short,
                    limit=min_short_side_px,
                ),
            )
        )
    else:
        report.checks.append(
            Check.of("resolution", Outcome.passed, value, threshold, text(_("The resolution is enough.")))
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
            Check.of(
                "decode",
                Outcome.fail,
                report.detected_type,
                None,
                text(_("The image data cannot be decoded: the file is damaged. Send the photo again.")),
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
    threshold = text(
        _("sharpest edges at most {warn:.2f} px wide at {working} px (fails above {fail:.1f})"),
        warn=BLUR_WARN_ABOVE,
        working=sharpness.WORKING_LONG_SIDE,
        fail=BLUR_FAIL_ABOVE,
    )
    value = text(_("{width:.2f} px"), width=width) if width is not None else text(_("no clear edge"))
    if width is None:
        outcome, why = (
            Outcome.warn,
            text(
                _(
                    "No clear edge could be found in the photo: it may be blurred, or show nothing "
                    "with sharp outlines. A reviewer will check that the details can be read."
                )
            ),
        )
    elif width > BLUR_FAIL_ABOVE:
        outcome, why = (
            Outcome.fail,
            text(
                _(
                    "The photo is blurred: even its sharpest edges are {width:.1f} px wide, so the "
                    "details cannot be read. Hold the phone still, tap the screen to focus on the shelf, "
                    "and take it again."
                ),
                width=width,
            ),
        )
    elif width > BLUR_WARN_ABOVE:
        outcome, why = (
            Outcome.warn,
            text(
                _(
                    "The photo looks a little soft (shaken or not quite in focus); a reviewer will check "
                    "that the details can be read. Next time: hold the phone still, tap the screen to "
                    "focus on the shelf, and take it again."
                )
            ),
        )
    else:
        outcome, why = Outcome.passed, text(_("The photo is sharp."))
    report.checks.append(Check.of("blur", outcome, value, threshold, why))


# 4. Exposure ---------------------------------------------------------------------------------
def _exposure(gray: np.ndarray, report: PhotoReport) -> None:
    mean, std = (float(v[0][0]) for v in cv2.meanStdDev(gray))
    clipped = float(np.count_nonzero(gray >= 250)) / gray.size
    report.measurements.update(brightness=round(mean, 1), contrast=round(std, 1), clipped=round(clipped, 3))
    value = text(
        _("brightness {brightness:.0f}, contrast {contrast:.0f}, {clipped:.0%} burnt white"),
        brightness=mean,
        contrast=std,
        clipped=clipped,
    )
    threshold = text(
        _(
            "brightness {low:.0f}-{high:.0f}, contrast at least {contrast:.0f}, under {clipped:.0%} burnt white"
        ),
        low=DARK_WARN_BELOW,
        high=BRIGHT_FAIL_ABOVE,
        contrast=FLAT_WARN_BELOW,
        clipped=CLIPPED_WARN_SHARE,
    )
    if std < FLAT_FAIL_BELOW:
        outcome, why = (
            Outcome.fail,
            _(
                "The photo shows almost nothing: it is one flat colour (lens covered, or "
                "pointed at a wall). Photograph the shelf."
            ),
        )
    elif mean < DARK_FAIL_BELOW:
        outcome, why = (
            Outcome.fail,
            _("The photo is too dark to see the products. Turn towards the light or use the flash."),
        )
    elif mean > BRIGHT_FAIL_ABOVE:
        outcome, why = (
            Outcome.fail,
            _("The photo is washed out: nearly everything is white. Avoid pointing at a lamp or window."),
        )
    elif mean < DARK_WARN_BELOW:
        outcome, why = (
            Outcome.warn,
            _("The photo is dark; a reviewer will check that the products can be seen."),
        )
    elif clipped > CLIPPED_WARN_SHARE:
        outcome, why = Outcome.warn, _("A large part of the photo is burnt white; a reviewer will check it.")
    elif std < FLAT_WARN_BELOW:
        outcome, why = Outcome.warn, _("The photo has very little contrast; a reviewer will check it.")
    else:
        outcome, why = Outcome.passed, _("The exposure is fine.")
    report.checks.append(Check.of("exposure", outcome, value, threshold, text(why)))


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
    value = (
        text(_("{share:.0%} of {windows} parts"), share=share, windows=windows)
        if windows
        else text(_("not measured (too small)"))
    )
    threshold = text(
        _("a fine regular pattern in at most {limit:.0%} of the photo's parts"), limit=SCREEN_WARN_ABOVE
    )
    if share > SCREEN_WARN_ABOVE:
        report.checks.append(
            Check.of(
                "screen",
                Outcome.warn,
                value,
                threshold,
                text(
                    _(
                        "The photo shows a fine regular pattern over much of it, as photos of a screen do. "
                        "Photos must be taken of the real shelf; a reviewer will check this one."
                    )
                ),
            )
        )
    else:
        report.checks.append(
            Check.of("screen", Outcome.passed, value, threshold, text(_("No sign of a photo of a screen.")))
        )


# 8. Reference match --------------------------------------------------------------------------
def _reference_match(gray: np.ndarray, references: Sequence[reference.Features], report: PhotoReport) -> None:
    copy = gray
    if max(gray.shape) > reference.FEATURE_LONG_SIDE:
        copy = imaging.resize_long_side(gray, reference.FEATURE_LONG_SIDE)
    report.features = reference.features(imaging.upright(copy, report.orientation))
    threshold = text(
        _("at least {inliers} matched points agreeing on one perspective, {share:.0%} of the matches"),
        inliers=reference.MATCH_MIN_INLIERS,
        share=reference.MATCH_MIN_SHARE,
    )
    usable = [i for i, r in enumerate(references) if len(r) >= reference.MIN_MATCHES]
    if not usable:
        report.checks.append(
            Check.of(
                "reference_match",
                Outcome.passed,
                text(_("not measured")),
                threshold,
                text(_("Not measured: there is no reference photo for this shelf yet.")),
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
    value = text(
        _("{inliers} points ({share:.0%} of {matches} matches)"),
        inliers=best.inliers,
        share=best.share,
        matches=best.matches,
    )
    if best.same_scene:
        report.checks.append(
            Check.of(
                "reference_match",
                Outcome.passed,
                value,
                threshold,
                text(_("The photo shows the shelf that was asked for.")),
            )
        )
    else:
        report.checks.append(
            Check.of(
                "reference_match",
                Outcome.warn,
                value,
                threshold,
                text(
                    _(
                        "The photo does not look like the reference photos of this shelf; a reviewer will "
                        "check that it shows what was asked for. Photograph the shelf shown in the task."
                    )
                ),
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
