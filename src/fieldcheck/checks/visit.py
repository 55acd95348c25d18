"""Checks on a whole submission: where the phone was, when and where the photos were taken, and the
decision that follows. Pure functions: values in, explained outcomes out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from fieldcheck.checks.models import Outcome
from fieldcheck.checks.photo import Check
from fieldcheck.geo import distance_m
from fieldcheck.i18n import Text, _, text

# Location: a fix inside the store's geofence passes; the phone's own accuracy widens the fence
# (a fix said to be within 40 m of the truth may be 40 m off), but only up to this much.
ACCURACY_ALLOWANCE_CAP_M = 150.0
# A fix this imprecise cannot place anyone in a store: a reviewer looks at it.
POOR_ACCURACY_M = 100.0
# Outside the widened fence but this many times closer than it: GPS indoors drifts; a reviewer
# looks. Farther: the work was not done at the store.
FAR_FACTOR = 3.0
# Impossible travel: faster than this between two submissions (a car on a motorway, at most).
MAX_TRAVEL_KMH = 200.0
# Travel is not judged under this distance (two stores in one street, GPS noise).
TRAVEL_MIN_DISTANCE_M = 1000.0
# EXIF time: the photo must be taken while the reservation was held (phone clocks drift a little).
EXIF_TIME_SLACK = timedelta(minutes=15)
# EXIF position: farther than this from the phone's fix or from the store is suspicious.
EXIF_GPS_MAX_DISTANCE_M = 500.0


@dataclass(frozen=True)
class Fix:
    lat: float
    lon: float
    accuracy_m: float
    is_mock: bool


@dataclass(frozen=True)
class Place:
    lat: float
    lon: float
    geofence_m: float


@dataclass(frozen=True)
class PreviousVisit:
    lat: float
    lon: float
    at: datetime


def location_check(fix: Fix, store: Place) -> tuple[Check, float]:
    """The phone's fix against the store's geofence; also returns the distance in metres."""
    real_fix = text(_("a real GPS fix"))
    if fix.is_mock:
        return Check.of(
            "location",
            Outcome.fail,
            text(_("mock location")),
            real_fix,
            text(
                _(
                    "The phone reported a simulated (mock) location. Turn off any app that fakes the "
                    "location and submit from the store."
                )
            ),
        ), 0.0
    if fix.lat == 0 and fix.lon == 0:
        return Check.of(
            "location",
            Outcome.fail,
            "0, 0",
            real_fix,
            text(
                _(
                    "The phone reported the position 0, 0 (in the ocean off Africa), which means it had "
                    "no GPS fix. Wait for the location to be found, then submit again."
                )
            ),
        ), 0.0
    distance = distance_m(fix.lat, fix.lon, store.lat, store.lon)
    allowance = min(max(fix.accuracy_m, 0.0), ACCURACY_ALLOWANCE_CAP_M)
    fence = store.geofence_m + allowance
    value = text(
        _("{distance:.0f} m from the store (accuracy {accuracy:.0f} m)"),
        distance=distance,
        accuracy=fix.accuracy_m,
    )
    threshold = text(
        _("within {geofence:.0f} m + {allowance:.0f} m for the fix's accuracy"),
        geofence=store.geofence_m,
        allowance=allowance,
    )
    if distance <= fence:
        return Check.of(
            "location", Outcome.passed, value, threshold, text(_("The phone was at the store."))
        ), distance
    if distance <= fence * FAR_FACTOR:
        return Check.of(
            "location",
            Outcome.warn,
            value,
            threshold,
            text(
                _(
                    "The phone was {distance:.0f} m from the store, a little outside its area; GPS "
                    "drifts indoors, so a reviewer will check the photos."
                ),
                distance=distance,
            ),
        ), distance
    return Check.of(
        "location",
        Outcome.fail,
        value,
        threshold,
        text(
            _(
                "The phone was {distance:.1f} km from the store when the work was submitted: the "
                "photos must be taken and sent from the store."
            ),
            distance=distance / 1000,
        ),
    ), distance


def accuracy_check(fix: Fix) -> Check | None:
    if fix.is_mock or (fix.lat == 0 and fix.lon == 0):
        return None
    value = text(_("{accuracy:.0f} m"), accuracy=fix.accuracy_m)
    threshold = text(_("at most {limit:.0f} m"), limit=POOR_ACCURACY_M)
    if fix.accuracy_m > POOR_ACCURACY_M:
        return Check.of(
            "location_accuracy",
            Outcome.warn,
            value,
            threshold,
            text(
                _(
                    "The phone's position was imprecise, so it does not show well where you were; a "
                    "reviewer will check. Turning on Wi-Fi and precise location helps."
                )
            ),
        )
    return Check.of(
        "location_accuracy", Outcome.passed, value, threshold, text(_("The position was precise."))
    )


def travel_check(previous: PreviousVisit | None, fix: Fix, at: datetime) -> Check | None:
    if previous is None or fix.is_mock or (fix.lat == 0 and fix.lon == 0):
        return None
    distance = distance_m(previous.lat, previous.lon, fix.lat, fix.lon)
    hours = max((at - previous.at).total_seconds() / 3600, 1 / 3600)
    speed = distance / 1000 / hours
    value = text(
        _("{distance:.1f} km in {minutes:.0f} min ({speed:.0f} km/h)"),
        distance=distance / 1000,
        minutes=hours * 60,
        speed=speed,
    )
    threshold = text(_("at most {limit:.0f} km/h since your previous submission"), limit=MAX_TRAVEL_KMH)
    if distance >= TRAVEL_MIN_DISTANCE_M and speed > MAX_TRAVEL_KMH:
        return Check.of(
            "travel",
            Outcome.warn,
            value,
            threshold,
            text(
                _(
                    "This submission is too far from your previous one for the time between them; a "
                    "reviewer will check both."
                )
            ),
        )
    return Check.of(
        "travel",
        Outcome.passed,
        value,
        threshold,
        text(_("The distance from your previous submission is plausible.")),
    )


def exif_time_check(
    taken_at: datetime | None, *, reserved_at: datetime, submitted_at: datetime, present: bool
) -> Check:
    window = text(
        _("between {start} and {end} UTC"),
        start=f"{(reserved_at - EXIF_TIME_SLACK):%Y-%m-%d %H:%M}",
        end=f"{(submitted_at + EXIF_TIME_SLACK):%H:%M}",
    )
    if taken_at is None:
        why = (
            _("The photo carries no usable capture time (many apps remove it); that is fine.")
            if not present
            else _("The capture time in the photo cannot be placed in a time zone; it was not used.")
        )
        return Check.of("exif_time", Outcome.passed, None, window, text(why))
    value = f"{taken_at:%Y-%m-%d %H:%M} UTC"
    if reserved_at - EXIF_TIME_SLACK <= taken_at <= submitted_at + EXIF_TIME_SLACK:
        return Check.of(
            "exif_time", Outcome.passed, value, window, text(_("The photo was taken during the reservation."))
        )
    return Check.of(
        "exif_time",
        Outcome.warn,
        value,
        window,
        text(
            _(
                "The photo says it was taken outside the time you held this task; photos must be taken "
                "during the visit. A reviewer will check."
            )
        ),
    )


def exif_gps_check(exif_lat: float | None, exif_lon: float | None, fix: Fix | None, store: Place) -> Check:
    """The photo's own position against the store and the phone's fix (none yet: the store only)."""
    threshold = text(
        _("within {limit:.0f} m of the phone's position and of the store"), limit=EXIF_GPS_MAX_DISTANCE_M
    )
    if exif_lat is None or exif_lon is None:
        return Check.of(
            "exif_gps",
            Outcome.passed,
            None,
            threshold,
            text(_("The photo carries no position (many apps remove it); that is fine.")),
        )
    if exif_lat == 0 and exif_lon == 0:
        return Check.of(
            "exif_gps",
            Outcome.warn,
            "0, 0",
            threshold,
            text(
                _(
                    "The photo's own position is 0, 0, which a camera writes when it had no GPS fix. It "
                    "was noted; a reviewer will look at the photo."
                )
            ),
        )
    from_store = distance_m(exif_lat, exif_lon, store.lat, store.lon)
    from_fix = (
        None
        if fix is None or fix.is_mock or (fix.lat == 0 and fix.lon == 0)
        else distance_m(exif_lat, exif_lon, fix.lat, fix.lon)
    )
    value = (
        text(
            _("{store:.0f} m from the store, {phone:.0f} m from the phone"), store=from_store, phone=from_fix
        )
        if from_fix is not None
        else text(_("{store:.0f} m from the store"), store=from_store)
    )
    limit = EXIF_GPS_MAX_DISTANCE_M + store.geofence_m
    if from_store > limit or (
        fix is not None and from_fix is not None and from_fix > EXIF_GPS_MAX_DISTANCE_M + fix.accuracy_m
    ):
        return Check.of(
            "exif_gps",
            Outcome.warn,
            value,
            threshold,
            text(
                _(
                    "The position saved in the photo is far from the store or from where the phone was: it "
                    "may have been taken elsewhere. A reviewer will check."
                )
            ),
        )
    return Check.of(
        "exif_gps", Outcome.passed, value, threshold, text(_("The photo's own position matches the store."))
    )


class Verdict(StrEnum):
    """What the checks conclude about a whole submission (the assignment's status it leads to)."""

    approved = "approved"
    in_review = "in_review"
    rejected = "rejected"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason_texts: list[Text]

    @property
    def reasons(self) -> list[str]:
        """The reasons in English (what is stored beside their Texts)."""
        return [reason.english for reason in self.reason_texts]


def _reason(check: Check) -> Text:
    return check.texts.get("explanation") or Text(check.explanation)


def decide(checks: list[Check], *, review_all: bool) -> Decision:
    """All clear: approved. Any doubt: a human reviews it. A clear failure: rejected, with every reason."""
    failures = [c for c in checks if c.outcome is Outcome.fail]
    warnings = [c for c in checks if c.outcome is Outcome.warn]
    if failures:
        return Decision(Verdict.rejected, [_reason(c) for c in failures])
    if warnings:
        return Decision(Verdict.in_review, [_reason(c) for c in warnings])
    if review_all:
        return Decision(
            Verdict.in_review, [text(_("This campaign has every submission checked by a person."))]
        )
    return Decision(Verdict.approved, [text(_("Every automated check passed."))])
