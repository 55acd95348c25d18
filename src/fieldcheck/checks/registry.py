"""Every automated check the pipeline runs, described from the constants that decide it.

What a worker is told about the automated decisions (GET /api/v1/transparency, /transparency) is
built from here, and the thresholds are read from the very constants the checks use: it cannot
drift from what the system does. A test runs the pipeline and fails when a check it produced is
missing here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fieldcheck.checks import hashes, imaging, photo, recapture, reference, sharpness, visit
from fieldcheck.checks.models import Outcome
from fieldcheck.i18n import Text, _, text
from fieldcheck.settings import Settings

PHOTO = "photo"
VISIT = "visit"

# What each outcome does to the work, in every check.
EFFECTS = {
    Outcome.passed: _("nothing: a pass is only noted"),
    Outcome.warn: _("a person reviews the work before it is paid"),
    Outcome.fail: _("the work is rejected, with this reason; you can appeal to a person"),
}


@dataclass(frozen=True)
class CheckRule:
    name: str
    title: Text
    scope: str  # photo: each photo, as soon as it is uploaded and at submission; visit: at submission
    reads: Text
    measures: Text
    thresholds: list[Text]
    outcomes: tuple[Outcome, ...]
    notes: list[Text] = field(default_factory=list)


def rules(settings: Settings) -> list[CheckRule]:
    """The checks in the order they run: each photo's, then the visit's."""
    return [
        CheckRule(
            "file",
            text(_("File")),
            PHOTO,
            text(_("the photo file as uploaded")),
            text(
                _(
                    "its real type (from its first bytes, whatever its name says), that it is whole, its size in pixels"
                )
            ),
            [
                text(_("JPEG, PNG or HEIC")),
                text(_("at most {limit} bytes"), limit=settings.photo_max_bytes),
                text(_("at most {limit:.0f} MP"), limit=imaging.MAX_PIXELS / 1e6),
                text(_("a HEIC of at most {limit:.0f} MP"), limit=imaging.HEIC_MAX_PIXELS / 1e6),
            ],
            (Outcome.passed, Outcome.fail),
        ),
        CheckRule(
            "decode",
            text(_("Image data")),
            PHOTO,
            text(_("the photo's image data")),
            text(_("whether it can be decoded")),
            [],
            (Outcome.fail,),
        ),
        CheckRule(
            "resolution",
            text(_("Resolution")),
            PHOTO,
            text(_("the photo's size in pixels")),
            text(_("its short side")),
            [text(_("at least the campaign's minimum (its photo rules)"))],
            (Outcome.passed, Outcome.fail),
        ),
        CheckRule(
            "blur",
            text(_("Sharpness")),
            PHOTO,
            text(_("a copy of the photo {working} px on its long side"), working=sharpness.WORKING_LONG_SIDE),
            text(
                _(
                    "how wide its sharpest edges are, in 8 x 8 parts and four directions (a shake leaves one "
                    "direction sharp), with sensor noise estimated and set aside"
                )
            ),
            [
                text(_("a person reviews above {limit:.2f} px"), limit=photo.BLUR_WARN_ABOVE),
                text(_("rejected above {limit:.1f} px"), limit=photo.BLUR_FAIL_ABOVE),
            ],
            (Outcome.passed, Outcome.warn, Outcome.fail),
        ),
        CheckRule(
            "exposure",
            text(_("Exposure")),
            PHOTO,
            text(_("a small copy of the photo")),
            text(_("its mean brightness, its contrast and the share burnt white")),
            [
                text(
                    _(
                        "rejected when darker than {dark:.0f}, brighter than {bright:.0f} or flatter than {flat:.0f}"
                    ),
                    dark=photo.DARK_FAIL_BELOW,
                    bright=photo.BRIGHT_FAIL_ABOVE,
                    flat=photo.FLAT_FAIL_BELOW,
                ),
                text(
                    _(
                        "a person reviews when darker than {dark:.0f}, flatter than {flat:.0f} or more than "
                        "{clipped:.0%} burnt white"
                    ),
                    dark=photo.DARK_WARN_BELOW,
                    flat=photo.FLAT_WARN_BELOW,
                    clipped=photo.CLIPPED_WARN_SHARE,
                ),
            ],
            (Outcome.passed, Outcome.warn, Outcome.fail),
        ),
        CheckRule(
            "screen",
            text(_("Not a photo of a screen")),
            PHOTO,
            text(
                _("parts of {size} px of the {working} px copy"),
                size=recapture.RECAPTURE_WINDOW,
                working=sharpness.WORKING_LONG_SIDE,
            ),
            text(
                _("whether a fine regular pattern (the pixels of a screen, moire) covers much of the photo")
            ),
            [text(_("a person reviews above {limit:.0%} of the parts"), limit=photo.SCREEN_WARN_ABOVE)],
            (Outcome.passed, Outcome.warn),
        ),
        CheckRule(
            "reference_match",
            text(_("The shelf asked for")),
            PHOTO,
            text(
                _(
                    "the campaign's reference photos, then the store's last approved photos of the campaign "
                    "(five at most)"
                )
            ),
            text(_("points the photo and a reference have in common that agree on one perspective")),
            [
                text(
                    _("a match: at least {inliers} points, {share:.0%} of the matches"),
                    inliers=reference.MATCH_MIN_INLIERS,
                    share=reference.MATCH_MIN_SHARE,
                )
            ],
            (Outcome.passed, Outcome.warn),
            [text(_("Without any reference photo, it is not measured: a neutral note, never a failure."))],
        ),
        CheckRule(
            "duplicate",
            text(_("A new photo")),
            PHOTO,
            text(_("every photo submitted before on the platform, and every reference photo")),
            text(_("the same file, or the same picture re-saved (two perceptual hashes and a small copy)")),
            [
                text(
                    _("the same picture: at most {bits} of 64 bits apart, confirmed twice"),
                    bits=hashes.PHASH_MAX_DISTANCE,
                )
            ],
            (Outcome.passed, Outcome.fail),
            [
                text(
                    _(
                        "When a photo is uploaded, only the same file is looked for, as a first hint; the "
                        "comparison made at submission decides."
                    )
                )
            ],
        ),
        CheckRule(
            "duplicate_in_submission",
            text(_("Different photos")),
            PHOTO,
            text(_("the other photos of the same submission")),
            text(_("whether two of them are the same picture")),
            [],
            (Outcome.warn,),
        ),
        CheckRule(
            "exif_time",
            text(_("When it was taken")),
            PHOTO,
            text(_("the capture time written in the photo, when there is one")),
            text(_("whether it falls while the task was reserved")),
            [
                text(
                    _("{minutes} minutes of slack each side"),
                    minutes=int(visit.EXIF_TIME_SLACK.total_seconds() // 60),
                )
            ],
            (Outcome.passed, Outcome.warn),
            [text(_("A photo without a capture time is fine: many apps remove it."))],
        ),
        CheckRule(
            "exif_gps",
            text(_("Where it was taken")),
            PHOTO,
            text(_("the position written in the photo, when there is one")),
            text(_("its distance from the store and from the phone's position")),
            [text(_("within {limit:.0f} m"), limit=visit.EXIF_GPS_MAX_DISTANCE_M)],
            (Outcome.passed, Outcome.warn),
            [text(_("A photo without a position is fine: many apps remove it."))],
        ),
        CheckRule(
            "location",
            text(_("At the store")),
            VISIT,
            text(_("the position the phone reports when the visit is submitted (once: nothing tracks you)")),
            text(_("its distance from the store")),
            [
                text(
                    _(
                        "the store's area plus the position's own precision, counted up to {cap:.0f} m; a person "
                        "reviews up to {factor:.0f} times that, farther is rejected"
                    ),
                    cap=visit.ACCURACY_ALLOWANCE_CAP_M,
                    factor=visit.FAR_FACTOR,
                )
            ],
            (Outcome.passed, Outcome.warn, Outcome.fail),
            [text(_("A simulated (mock) position, or 0, 0, is rejected."))],
        ),
        CheckRule(
            "location_accuracy",
            text(_("Position precision")),
            VISIT,
            text(_("the precision the phone reports for its position")),
            text(_("how many metres it may be off")),
            [text(_("a person reviews above {limit:.0f} m"), limit=visit.POOR_ACCURACY_M)],
            (Outcome.passed, Outcome.warn),
        ),
        CheckRule(
            "travel",
            text(_("Travel between visits")),
            VISIT,
            text(_("your previous submission's position and time")),
            text(_("the speed needed to go from there to here")),
            [
                text(
                    _("a person reviews above {speed:.0f} km/h, over {distance:.0f} km or more"),
                    speed=visit.MAX_TRAVEL_KMH,
                    distance=visit.TRAVEL_MIN_DISTANCE_M / 1000,
                )
            ],
            (Outcome.passed, Outcome.warn),
        ),
    ]
