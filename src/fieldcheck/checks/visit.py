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
    if fix.is_mock:
        return Check(
            "location",
            Outcome.fail,
            "mock location",
            "a real GPS fix",
            "The phone reported a simulated (mock) location. Turn off any app that fakes the "
            "location and submit from the store.",
        ), 0.0
    if fix.lat == 0 and fix.lon == 0:
        return Check(
            "location",
            Outcome.fail,
            "0, 0",
            "a real GPS fix",
            "The phone reported the position 0, 0 (in the ocean off Africa), which means it had "
            "no GPS fix. Wait for the location to be found, then submit again.",
        ), 0.0
    distance = distance_m(fix.lat, fix.lon, store.lat, store.lon)
    allowance = min(max(fix.accuracy_m, 0.0), ACCURACY_ALLOWANCE_CAP_M)
    fence = store.geofence_m + allowance
    value = f"{distance:.0f} m from the store (accuracy {fix.accuracy_m:.0f} m)"
    threshold = f"within {store.geofence_m:.0f} m + {allowance:.0f} m for the fix's accuracy"
    if distance <= fence:
        return Check("location", Outcome.passed, value, threshold, "The phone was at the store."), distance
    if distance <= fence * FAR_FACTOR:
        return Check(
            "location",
            Outcome.warn,
            value,
            threshold,
            f"The phone was {distance:.0f} m from the store, a little outside its area; GPS "
            "drifts indoors, so a reviewer will check the photos.",
        ), distance
    return Check(
        "location",
        Outcome.fail,
        value,
        threshold,
        f"The phone was {distance / 1000:.1f} km from the store when the work was submitted: the "
        "photos must be taken and sent from the store.",
    ), distance


def accuracy_check(fix: Fix) -> Check | None:
    if fix.is_mock or (fix.lat == 0 and fix.lon == 0):
        return None
    value = f"{fix.accuracy_m:.0f} m"
    threshold = f"at most {POOR_ACCURACY_M:.0f} m"
    if fix.accuracy_m > POOR_ACCURACY_M:
        return Check(
            "location_accuracy",
            Outcome.warn,
            value,
            threshold,
            "The phone's position was imprecise, so it does not show well where you were; a "
            "reviewer will check. Turning on Wi-Fi and precise location helps.",
        )
    return Check("location_accuracy", Outcome.passed, value, threshold, "The position was precise.")


def travel_check(previous: PreviousVisit | None, fix: Fix, at: datetime) -> Check | None:
    if previous is None or fix.is_mock or (fix.lat == 0 and fix.lon == 0):
        return None
    distance = distance_m(previous.lat, previous.lon, fix.lat, fix.lon)
    hours = max((at - previous.at).total_seconds() / 3600, 1 / 3600)
    speed = distance / 1000 / hours
    value = f"{distance / 1000:.1f} km in {hours * 60:.0f} min ({speed:.0f} km/h)"
    threshold = f"at most {MAX_TRAVEL_KMH:.0f} km/h since your previous submission"
    if distance >= TRAVEL_MIN_DISTANCE_M and speed > MAX_TRAVEL_KMH:
        return Check(
            "travel",
            Outcome.warn,
            value,
            threshold,
            "This submission is too far from your previous one for the time between them; a "
            "reviewer will check both.",
        )
    return Check(
        "travel", Outcome.passed, value, threshold, "The distance from your previous submission is plausible."
    )


def exif_time_check(
    taken_at: datetime | None, *, reserved_at: datetime, submitted_at: datetime, present: bool
) -> Check:
    window = (
        f"between {(reserved_at - EXIF_TIME_SLACK):%Y-%m-%d %H:%M} and "
        f"{(submitted_at + EXIF_TIME_SLACK):%H:%M} UTC"
    )
    if taken_at is None:
        why = (
            "The photo carries no usable capture time (many apps remove it); that is fine."
            if not present
            else "The capture time in the photo cannot be placed in a time zone; it was not used."
        )
        return Check("exif_time", Outcome.passed, None, window, why)
    value = f"{taken_at:%Y-%m-%d %H:%M} UTC"
    if reserved_at - EXIF_TIME_SLACK <= taken_at <= submitted_at + EXIF_TIME_SLACK:
        return Check(
            "exif_time", Outcome.passed, value, window, "The photo was taken during the reservation."
        )
    return Check(
        "exif_time",
        Outcome.warn,
        value,
        window,
        "The photo says it was taken outside the time you held this task; photos must be taken "
        "during the visit. A reviewer will check.",
    )


def exif_gps_check(exif_lat: float | None, exif_lon: float | None, fix: Fix, store: Place) -> Check:
    threshold = f"within {EXIF_GPS_MAX_DISTANCE_M:.0f} m of the phone's position and of the store"
    if exif_lat is None or exif_lon is None:
        return Check(
            "exif_gps",
            Outcome.passed,
            None,
            threshold,
            "The photo carries no position (many apps remove it); that is fine.",
        )
    if exif_lat == 0 and exif_lon == 0:
        return Check(
            "exif_gps",
            Outcome.warn,
            "0, 0",
            threshold,
            "The photo's own position is 0, 0, which a camera writes when it had no GPS fix. It "
            "was noted; a reviewer will look at the photo.",
        )
    from_store = distance_m(exif_lat, exif_lon, store.lat, store.lon)
    from_fix = (
        None
        if fix.is_mock or (fix.lat == 0 and fix.lon == 0)
        else distance_m(exif_lat, exif_lon, fix.lat, fix.lon)
    )
    value = f"{from_store:.0f} m from the store" + (
        f", {from_fix:.0f} m from the phone" if from_fix is not None else ""
    )
    limit = EXIF_GPS_MAX_DISTANCE_M + store.geofence_m
    if from_store > limit or (from_fix is not None and from_fix > EXIF_GPS_MAX_DISTANCE_M + fix.accuracy_m):
        return Check(
            "exif_gps",
            Outcome.warn,
            value,
            threshold,
            "The position saved in the photo is far from the store or from where the phone was: it "
            "may have been taken elsewhere. A reviewer will check.",
        )
    return Check("exif_gps", Outcome.passed, value, threshold, "The photo's own position matches the store.")


class Verdict(StrEnum):
    """What the checks conclude about a whole submission (the assignment's status it leads to)."""

    approved = "approved"
    in_review = "in_review"
    rejected = "rejected"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reasons: list[str]


def decide(checks: list[Check], *, review_all: bool) -> Decision:
    """All clear: approved. Any doubt: a human reviews it. A clear failure: rejected, with every reason."""
    failures = [c for c in checks if c.outcome is Outcome.fail]
    warnings = [c for c in checks if c.outcome is Outcome.warn]
    if failures:
        return Decision(Verdict.rejected, [c.explanation for c in failures])
    if warnings:
        return Decision(Verdict.in_review, [c.explanation for c in warnings])
    if review_all:
        return Decision(Verdict.in_review, ["This campaign has every submission checked by a person."])
    return Decision(Verdict.approved, ["Every automated check passed."])
