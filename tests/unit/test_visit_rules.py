"""The visit rules as the pure functions they are: where the phone was, how it travelled, when and
where the photos were taken, and the decision that follows from every check.

One end-to-end case per rule family runs the whole pipeline (tests/api/test_submissions.py); the
cases and their boundaries are here, in milliseconds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldcheck.checks import visit
from fieldcheck.checks.models import Outcome
from fieldcheck.checks.photo import Check
from fieldcheck.checks.visit import Fix, Place, PreviousVisit, Verdict
from fieldcheck.geo import distance_m

STORE = Place(48.8566, 2.3522, 150.0)
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
METRES_PER_DEGREE_LAT = 111_200  # near 48.9 degrees north, to place test fixes


def fix(north_m: float = 0.0, *, accuracy_m: float = 12.0, is_mock: bool = False) -> Fix:
    return Fix(STORE.lat + north_m / METRES_PER_DEGREE_LAT, STORE.lon, accuracy_m, is_mock)


def check(name: str, outcome: Outcome, explanation: str = "why") -> Check:
    return Check(name, outcome, None, None, explanation)


# Location ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("where", "outcome"),
    [
        (fix(0), Outcome.passed),
        (fix(140), Outcome.passed),  # inside the 150 m geofence
        (fix(155), Outcome.passed),  # outside the fence, inside fence + the fix's accuracy (12 m)
        (fix(280), Outcome.warn),  # GPS drifts indoors: a person looks
        (fix(5_600), Outcome.fail),  # 5.6 km away: not done at the store
        (fix(0, is_mock=True), Outcome.fail),  # a simulated location
        (Fix(0.0, 0.0, 5.0, False), Outcome.fail),  # 0, 0: no GPS fix at all
    ],
    ids=["at-the-store", "in-the-fence", "within-accuracy", "drift", "far", "mock", "null-island"],
)
def test_location(where: Fix, outcome: Outcome) -> None:
    found, distance = visit.location_check(where, STORE)
    assert found.name == "location"
    assert found.outcome is outcome
    assert found.explanation and found.threshold
    if not where.is_mock and (where.lat, where.lon) != (0.0, 0.0):
        assert distance == pytest.approx(distance_m(where.lat, where.lon, STORE.lat, STORE.lon))


def test_the_accuracy_allowance_is_capped() -> None:
    """A fix claiming 5 km of uncertainty widens the fence by 150 m at most, not by 5 km."""
    vague = fix(800, accuracy_m=5_000)
    found, _ = visit.location_check(vague, STORE)
    assert found.outcome is Outcome.warn  # 800 m: outside 150 + 150 m, within three times that
    assert "150 m for the fix's accuracy" in (found.threshold or "")
    assert visit.location_check(fix(1_000, accuracy_m=50_000), STORE)[0].outcome is Outcome.fail


@given(north=st.floats(min_value=0, max_value=20_000), accuracy=st.floats(min_value=0, max_value=500))
def test_location_never_passes_outside_the_widened_fence(north: float, accuracy: float) -> None:
    where = fix(north, accuracy_m=accuracy)
    found, distance = visit.location_check(where, STORE)
    fence = STORE.geofence_m + min(accuracy, visit.ACCURACY_ALLOWANCE_CAP_M)
    assert (found.outcome is Outcome.passed) == (distance <= fence)
    assert (found.outcome is Outcome.fail) == (distance > fence * visit.FAR_FACTOR)


@pytest.mark.parametrize(
    ("accuracy_m", "outcome"), [(12.0, Outcome.passed), (100.0, Outcome.passed), (400.0, Outcome.warn)]
)
def test_accuracy(accuracy_m: float, outcome: Outcome) -> None:
    found = visit.accuracy_check(fix(0, accuracy_m=accuracy_m))
    assert found is not None and found.outcome is outcome


def test_no_accuracy_check_without_a_real_fix() -> None:
    assert visit.accuracy_check(fix(0, is_mock=True)) is None
    assert visit.accuracy_check(Fix(0.0, 0.0, 5.0, False)) is None


# Travel -----------------------------------------------------------------------------------------
LYON = (45.764, 4.8357)


def test_impossible_travel_warns() -> None:
    """Lyon then Paris (390 km) a few minutes apart: faster than any car."""
    previous = PreviousVisit(*LYON, NOW - timedelta(minutes=5))
    found = visit.travel_check(previous, fix(0), NOW)
    assert found is not None and found.outcome is Outcome.warn
    assert "km/h" in (found.value or "")


def test_plausible_travel_passes() -> None:
    previous = PreviousVisit(*LYON, NOW - timedelta(hours=4))  # about 100 km/h
    found = visit.travel_check(previous, fix(0), NOW)
    assert found is not None and found.outcome is Outcome.passed


def test_short_hops_are_not_judged_however_fast() -> None:
    """Two stores in one street, a minute apart: GPS noise, not a teleport."""
    previous = PreviousVisit(STORE.lat + 0.005, STORE.lon, NOW - timedelta(seconds=30))  # 556 m
    found = visit.travel_check(previous, fix(0), NOW)
    assert found is not None and found.outcome is Outcome.passed


def test_no_travel_check_for_a_first_visit_or_without_a_real_fix() -> None:
    previous = PreviousVisit(*LYON, NOW - timedelta(minutes=5))
    assert visit.travel_check(None, fix(0), NOW) is None
    assert visit.travel_check(previous, fix(0, is_mock=True), NOW) is None


# EXIF time and place ----------------------------------------------------------------------------
RESERVED, SUBMITTED = NOW - timedelta(minutes=40), NOW


@pytest.mark.parametrize(
    ("taken", "outcome"),
    [
        (NOW - timedelta(minutes=10), Outcome.passed),
        (RESERVED - timedelta(minutes=10), Outcome.passed),  # phone clocks drift: 15 min of slack
        (RESERVED - timedelta(hours=3), Outcome.warn),  # taken before the task was reserved
        (SUBMITTED + timedelta(hours=1), Outcome.warn),
    ],
)
def test_exif_time(taken: datetime, outcome: Outcome) -> None:
    found = visit.exif_time_check(taken, reserved_at=RESERVED, submitted_at=SUBMITTED, present=True)
    assert found.outcome is outcome


def test_missing_exif_time_is_fine() -> None:
    found = visit.exif_time_check(None, reserved_at=RESERVED, submitted_at=SUBMITTED, present=False)
    assert found.outcome is Outcome.passed and "many apps remove it" in found.explanation


@pytest.mark.parametrize(
    ("gps", "outcome"),
    [
        ((None, None), Outcome.passed),  # stripped by the camera app
        ((STORE.lat, STORE.lon), Outcome.passed),
        ((0.0, 0.0), Outcome.warn),  # the camera had no fix
        (LYON, Outcome.warn),  # taken elsewhere
    ],
)
def test_exif_gps(gps: tuple[float | None, float | None], outcome: Outcome) -> None:
    assert visit.exif_gps_check(gps[0], gps[1], fix(0), STORE).outcome is outcome


# The decision -----------------------------------------------------------------------------------
def test_every_check_passing_approves() -> None:
    decided = visit.decide([check("blur", Outcome.passed)], review_all=False)
    assert (decided.verdict, decided.reasons) == (Verdict.approved, ["Every automated check passed."])
    assert decided.reason_texts[0].render("fr") != decided.reasons[0]  # said in French too


def test_a_doubt_goes_to_a_person_with_its_reason() -> None:
    decided = visit.decide(
        [check("blur", Outcome.passed), check("location", Outcome.warn, "drift")], review_all=False
    )
    assert (decided.verdict, decided.reasons) == (Verdict.in_review, ["drift"])


def test_a_failure_rejects_with_every_reason_even_with_doubts() -> None:
    decided = visit.decide(
        [check("a", Outcome.warn, "doubt"), check("b", Outcome.fail, "one"), check("c", Outcome.fail, "two")],
        review_all=False,
    )
    assert (decided.verdict, decided.reasons) == (Verdict.rejected, ["one", "two"])


def test_a_campaign_can_send_everything_to_a_person() -> None:
    assert visit.decide([check("blur", Outcome.passed)], review_all=True).verdict is Verdict.in_review
