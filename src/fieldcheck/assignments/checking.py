"""The system's decision on a submission: measure every photo, compare it with every earlier photo,
judge the place and the time, then decide and explain. An approval is paid by the transition.

The slow part (downloads, decoding, derivatives) runs before any write; the decision is taken in
one short transaction holding the duplicate lock, so that two submissions of the same picture
cannot both pass.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select, update

from fieldcheck import metrics
from fieldcheck.assignments.models import ActorType, Assignment, AssignmentStatus
from fieldcheck.assignments.transitions import transition
from fieldcheck.campaigns.models import Campaign
from fieldcheck.checks import service as checks
from fieldcheck.checks import visit
from fieldcheck.checks.duplicates import HashIndex, lock_for_duplicates
from fieldcheck.checks.exif import exif_time_utc
from fieldcheck.checks.models import Outcome, PhotoFeatures
from fieldcheck.checks.photo import Check, PhotoReport
from fieldcheck.checks.reference import MIN_MATCHES
from fieldcheck.checks.service import PhotoWork
from fieldcheck.checks.visit import Verdict
from fieldcheck.db import utcnow
from fieldcheck.i18n import Text, _, text
from fieldcheck.jobs import JobContext
from fieldcheck.photos.models import CheckStatus, Photo, PhotoStatus
from fieldcheck.stores.models import Store
from fieldcheck.tasks.models import Task

log = logging.getLogger("fieldcheck.checks")

# What the worker reads in the history, for each verdict of the checks.
VERDICT_REASON = {
    Verdict.approved: text(_("Approved automatically: every check passed.")),
    Verdict.in_review: text(_("Sent to a person: some checks were not sure.")),
    Verdict.rejected: text(_("Rejected by the automated checks; you can appeal to a person.")),
}
VERDICT_STATUS = {
    Verdict.approved: AssignmentStatus.approved,
    Verdict.in_review: AssignmentStatus.in_review,
    Verdict.rejected: AssignmentStatus.rejected,
}


@dataclass
class Submission:
    assignment: Assignment
    campaign: Campaign
    store: Store
    photos: list[Photo]
    previous: visit.PreviousVisit | None


def load_submission(session: Session, assignment_id: uuid.UUID) -> Submission | None:
    found = session.exec(
        select(Assignment, Campaign, Store)
        .join(Campaign, col(Campaign.id) == col(Assignment.campaign_id))
        .join(Task, col(Task.id) == col(Assignment.task_id))
        .join(Store, col(Store.id) == col(Task.store_id))
        .where(Assignment.id == assignment_id)
    ).first()
    if found is None:
        return None
    assignment, campaign, store = found
    photos = list(
        session.exec(
            select(Photo)
            .where(Photo.assignment_id == assignment_id, Photo.status != PhotoStatus.awaiting_upload.value)
            .order_by(col(Photo.created_at), col(Photo.id))
        ).all()
    )
    earlier = session.exec(
        select(Assignment)
        .where(
            Assignment.worker_id == assignment.worker_id,
            Assignment.id != assignment.id,
            col(Assignment.submitted_at).is_not(None),
            col(Assignment.submitted_at) < assignment.submitted_at,
            col(Assignment.device_lat).is_not(None),
        )
        .order_by(col(Assignment.submitted_at).desc())
        .limit(1)
    ).first()
    previous = None
    if (
        earlier is not None
        and earlier.device_lat is not None
        and earlier.device_lon is not None
        and earlier.submitted_at
    ):
        previous = visit.PreviousVisit(earlier.device_lat, earlier.device_lon, earlier.submitted_at)
    return Submission(assignment, campaign, store, photos, previous)


MAX_REFERENCES = 5  # compared with each photo: the check's time budget counts five


def load_references(
    session: Session, *, campaign_id: uuid.UUID, store_id: uuid.UUID, assignment_id: uuid.UUID
) -> checks.ReferenceSet:
    """The campaign's reference photos, then this store's most recent approved photos of the same
    campaign (another campaign at the store may ask for another shelf), five at most in all."""
    found = checks.ReferenceSet()
    for photo in checks.campaign_references(session, campaign_id, MAX_REFERENCES):
        assert photo.features is not None
        found.add("campaign", photo.id, photo.features)
    room = MAX_REFERENCES - len(found.features)
    if room > 0:
        earlier = session.exec(
            select(Photo.id, PhotoFeatures.features)
            .join(PhotoFeatures, col(PhotoFeatures.photo_id) == col(Photo.id))
            .join(Assignment, col(Assignment.id) == col(Photo.assignment_id))
            .join(Task, col(Task.id) == col(Assignment.task_id))
            .where(
                Assignment.campaign_id == campaign_id,
                Task.store_id == store_id,
                Assignment.status == AssignmentStatus.approved.value,
                Assignment.id != assignment_id,
            )
            .order_by(col(Photo.checked_at).desc(), col(Photo.id))
            .limit(room)
        ).all()
        for photo_id, stored in earlier:
            found.add("store", photo_id, stored)
    return found


def visit_checks(submission: Submission, works: list[PhotoWork]) -> tuple[list[Check], float | None]:
    """The checks of the visit (place, accuracy, travel) and of each photo's own time and place.

    Returns the visit's checks and the distance from the store, when the phone had a real fix.
    """
    assignment, store = submission.assignment, submission.store
    assert assignment.device_lat is not None and assignment.device_lon is not None and assignment.submitted_at
    fix = visit.Fix(
        assignment.device_lat,
        assignment.device_lon,
        assignment.device_accuracy_m or 0.0,
        bool(assignment.device_is_mock),
    )
    place = visit.Place(store.lat, store.lon, float(store.geofence_m))
    location, distance = visit.location_check(fix, place)
    found = [location]
    accuracy = visit.accuracy_check(fix)
    if accuracy:
        found.append(accuracy)
    travel = visit.travel_check(submission.previous, fix, assignment.submitted_at)
    if travel:
        found.append(travel)
    device_offset = (
        timedelta(minutes=assignment.capture_offset_minutes)
        if assignment.capture_offset_minutes is not None
        else None
    )
    for work in works:
        exif = work.report.exif
        if not work.report.measurements.get("decoded") and not exif:
            continue
        taken = exif_time_utc(exif, device_offset)
        work.taken_at = taken
        work.extra.append(
            visit.exif_time_check(
                taken,
                reserved_at=assignment.created_at,
                submitted_at=assignment.submitted_at,
                present="taken_local" in exif,
            )
        )
        work.extra.append(visit.exif_gps_check(exif.get("gps_lat"), exif.get("gps_lon"), fix, place))
    located = distance if not (fix.is_mock or (fix.lat == 0 and fix.lon == 0)) else None
    return found, located


def check_submission(ctx: JobContext, index: HashIndex, assignment_id: uuid.UUID) -> None:
    settings, storage = ctx.settings, ctx.runtime.storage
    with ctx.reading() as reading:
        submission = load_submission(reading, assignment_id)
    if submission is None or submission.assignment.status != AssignmentStatus.submitted.value:
        return
    campaign = submission.campaign
    with ctx.reading() as reading:
        references = load_references(
            reading,
            campaign_id=campaign.id,
            store_id=submission.store.id,
            assignment_id=assignment_id,
        )
    # A photo whose instant checks ran on the very object submitted is not measured again: what
    # they found is used (the comparison with earlier photos and the visit's checks are done now).
    works = []
    for photo in submission.photos:
        work = early_work(photo) or _wait_for_instant_checks(ctx, photo)
        metrics.PHOTO_MEASUREMENTS.labels("reused" if work else "submission").inc()
        works.append(
            work
            or checks.measure_photo(
                storage,
                photo,
                min_short_side_px=campaign.min_short_side_px,
                max_bytes=settings.photo_max_bytes,
                references=references,
            )
        )

    # The write phase: short, and one at a time for duplicate detection.
    session = ctx.session
    lock_for_duplicates(session)
    current = session.get(Assignment, assignment_id, populate_existing=True)
    if current is None or current.status != AssignmentStatus.submitted.value:
        return
    index.refresh(session)
    checks.duplicate_checks(session, index, works)
    for work in works:
        note_a_changed_answer(work)
    of_visit, distance = visit_checks(submission, works)
    now = utcnow()
    results: list[tuple[uuid.UUID | None, Check]] = []
    for work in works:
        checks.store_measurements(session, work, now)
        results += [(work.photo.id, check) for check in work.checks]
    results += [(None, check) for check in of_visit]
    checks.record_results(session, assignment_id, results)
    decision = visit.decide([check for _, check in results], review_all=campaign.review_all)
    transition(
        session,
        assignment_id,
        from_statuses=[AssignmentStatus.submitted],
        to=VERDICT_STATUS[decision.verdict],
        actor_type=ActorType.system,
        actor_id=None,
        reason=VERDICT_REASON[decision.verdict].english,
        details={
            "reasons": decision.reasons,
            "reason_texts": [reason.as_json() for reason in decision.reason_texts],
            "reason_text": VERDICT_REASON[decision.verdict].as_json(),
        },
        values=_decision_values(decision.verdict, campaign, distance, now),
    )


def _mark_early_started(ctx: JobContext, photo_id: uuid.UUID, etag: str | None) -> None:
    """Say at once that the instant checks of this upload are running (own short transaction)."""
    with ctx.runtime.db.transaction() as session:
        session.execute(
            update(Photo)
            .where(
                col(Photo.id) == photo_id,
                col(Photo.early_etag) == etag,
                col(Photo.check_status) == CheckStatus.pending.value,
            )
            .values(early_started_at=utcnow())
        )


def _wait_for_instant_checks(ctx: JobContext, photo: Photo) -> PhotoWork | None:
    """When the instant checks of this very upload are running, their result: measuring the photo
    again would double the work. None when they are not running, or did not finish in time."""
    started = photo.early_started_at
    if photo.check_status != CheckStatus.pending.value or started is None:
        return None
    # `started` is another host's clock: however far it is off, this job never waits longer than
    # INSTANT_CHECKS_WAIT by its own (a clock ahead only makes it measure the photo itself).
    deadline = min(started, utcnow()) + INSTANT_CHECKS_WAIT
    while utcnow() < deadline:
        time.sleep(INSTANT_CHECKS_POLL_S)
        with ctx.reading() as reading:
            current = reading.get(Photo, photo.id, populate_existing=True)
            if current is not None and current.check_status == CheckStatus.pending.value:
                continue
            done = early_work(current) if current is not None else None
            if done is not None:
                reading.expunge(current)
            return done
    return None


def early_work(photo: Photo) -> PhotoWork | None:
    """What the instant checks found of this photo, when they ran on the object now submitted."""
    if photo.check_status != CheckStatus.checked.value or not photo.early_report:
        return None
    work = PhotoWork(photo, PhotoReport.from_json(photo.early_report))
    work.thumbnail_key, work.safe_key = photo.thumbnail_key, photo.safe_key
    work.faces_blurred = int(photo.early_report.get("faces_blurred") or 0)
    return work


# How long after the instant checks of a photo started a submission's check waits for them (a
# worker killed in the middle leaves them started for ever; then the submission measures).
INSTANT_CHECKS_WAIT = timedelta(seconds=30)
INSTANT_CHECKS_POLL_S = 0.1

EARLY_NOTE = _("{verdict} (A first look: the check when you submit decides.)")
EARLY_DUPLICATE_LATER = _(
    "This file was not submitted before. Whether it is the same picture as an earlier photo, re-saved, "
    "is checked when you submit."
)


def check_photo_early(ctx: JobContext, photo_id: uuid.UUID) -> None:
    """The instant checks of an uploaded photo, while the worker is still in the store: the same
    per-photo checks as at submission, and a first comparison with earlier photos (a hint: the one
    made at submission, under the duplicate lock, decides). Nothing here decides or pays."""
    storage, settings = ctx.runtime.storage, ctx.settings
    with ctx.reading() as reading:
        found = reading.exec(
            select(Photo, Assignment, Campaign, Task)
            .join(Assignment, col(Assignment.id) == col(Photo.assignment_id))
            .join(Campaign, col(Campaign.id) == col(Assignment.campaign_id))
            .join(Task, col(Task.id) == col(Assignment.task_id))
            .where(Photo.id == photo_id)
        ).first()
        if found is None:
            return
        photo, assignment, campaign, task = found
        resumed = photo.status == PhotoStatus.submitted.value and photo.early_started_at is not None
        if photo.check_status != CheckStatus.pending.value or (
            photo.status != PhotoStatus.awaiting_upload.value and not resumed
        ):
            # Submitted before this started (the submission measures it), or already done. A
            # submitted photo whose instant checks had started (and died: this is a redelivery) is
            # measured here, since its submission's check may be waiting for them.
            return
        etag = photo.early_etag
        references = load_references(
            reading, campaign_id=campaign.id, store_id=task.store_id, assignment_id=assignment.id
        )
    _mark_early_started(ctx, photo_id, etag)
    metrics.PHOTO_MEASUREMENTS.labels("upload").inc()
    try:
        work = checks.measure_photo(
            storage,
            photo,
            min_short_side_px=campaign.min_short_side_px,
            max_bytes=settings.photo_max_bytes,
            references=references,
            upload=True,
        )
        with ctx.reading() as reading:
            work.extra.append(early_duplicate(reading, work))
            store = reading.get(Store, task.store_id)
        early_exif_checks(work, reserved_at=assignment.created_at, store=store)
    except Exception:
        log.exception("the instant checks of photo %s failed; they run again at submission", photo_id)
        _early_failed(ctx.session, photo_id, etag)
        return
    session = ctx.session
    stored = session.exec(select(Photo).where(Photo.id == photo_id).with_for_update()).first()
    if stored is None:
        # Deleted while being checked: what was made for it goes too.
        for key in (work.thumbnail_key, work.safe_key):
            if key:
                storage.delete(key)
        return
    if (
        stored.status not in (PhotoStatus.awaiting_upload.value, PhotoStatus.submitted.value)
        or stored.early_etag != etag
        or stored.check_status != CheckStatus.pending.value
    ):
        # Checked at submission already, or uploaded again meanwhile (other bytes: forgotten). A
        # photo submitted while this ran keeps the result: its frozen copy has these very bytes
        # (photos.service.freeze forgets the instant checks otherwise), and the submission's check
        # is waiting for it.
        return
    hint = list(work.extra)
    stored.check_status = CheckStatus.checked.value
    stored.early_checks = [check.to_json() for check in work.report.checks + hint]
    stored.early_report = {**work.report.to_json(), "faces_blurred": work.faces_blurred}
    stored.early_checked_at = utcnow()
    stored.detected_type, stored.width, stored.height = (
        work.report.detected_type,
        work.report.width,
        work.report.height,
    )
    stored.thumbnail_key, stored.safe_key = work.thumbnail_key, work.safe_key
    session.add(stored)
    features = work.report.features
    if features is not None and len(features) >= MIN_MATCHES:
        session.merge(PhotoFeatures(photo_id=photo_id, features=features.to_bytes()))


SUBMIT_NOTE = _(
    "{verdict} (This is not what the first look said when the photo was uploaded: the check made when "
    "you submitted is the one that counts.)"
)


def note_a_changed_answer(work: PhotoWork) -> None:
    """When the comparison made at submission says otherwise than the first look did, it says so."""
    early = next((c for c in work.photo.early_checks or [] if c.get("name") == "duplicate"), None)
    final = next((c for c in work.extra if c.name == "duplicate"), None)
    if early is None or final is None or early.get("outcome") == final.outcome.value:
        return
    noted = Check.of(
        final.name,
        final.outcome,
        final.texts.get("value") or final.value,
        final.texts.get("threshold") or final.threshold,
        text(SUBMIT_NOTE, verdict=final.texts.get("explanation") or Text(final.explanation)),
    )
    work.extra[work.extra.index(final)] = noted


def early_exif_checks(work: PhotoWork, *, reserved_at: datetime, store: Store | None) -> None:
    """The photo's own time and place as far as they can be judged before the visit is submitted:
    against the reservation so far and the store (the phone's position comes with the submission,
    when they are judged again)."""
    report = work.report
    if not report.measurements.get("decoded") or store is None:
        return
    exif = report.exif
    taken = exif_time_utc(exif, None)
    work.extra.append(
        visit.exif_time_check(
            taken, reserved_at=reserved_at, submitted_at=utcnow(), present="taken_local" in exif
        )
    )
    place = visit.Place(store.lat, store.lon, float(store.geofence_m))
    work.extra.append(visit.exif_gps_check(exif.get("gps_lat"), exif.get("gps_lon"), None, place))


def early_duplicate(session: Session, work: PhotoWork) -> Check:
    """A first answer on copies, as a hint: the same file submitted before, or a reference photo.
    Near copies (the same picture re-saved) are looked for at submission only, under the duplicate
    lock: answering them here would let anyone edit a copied photo until it passes."""
    report = work.report
    if report.sha256 is None or not report.measurements.get("decoded"):
        return Check.of(
            "duplicate", Outcome.passed, None, text(checks.DUPLICATE_THRESHOLD), text(EARLY_DUPLICATE_LATER)
        )
    exact, reference = checks.exact_copies(session, report.sha256, {work.photo.id})
    if exact or reference:
        found = checks.duplicate_check(exact, reference, None, False)
        return Check.of(
            found.name,
            found.outcome,
            found.texts.get("value") or found.value,
            found.texts.get("threshold") or found.threshold,
            text(EARLY_NOTE, verdict=found.texts.get("explanation") or Text(found.explanation)),
        )
    return Check.of(
        "duplicate", Outcome.passed, None, text(checks.DUPLICATE_THRESHOLD), text(EARLY_DUPLICATE_LATER)
    )


def _early_failed(session: Session, photo_id: uuid.UUID, etag: str | None) -> None:
    stored = session.exec(select(Photo).where(Photo.id == photo_id).with_for_update()).first()
    if stored is not None and stored.early_etag == etag and stored.check_status == CheckStatus.pending.value:
        stored.check_status = CheckStatus.failed_to_check.value
        stored.early_checked_at = utcnow()
        session.add(stored)


def _decision_values(
    verdict: Verdict, campaign: Campaign, distance: float | None, now: datetime
) -> dict[str, Any]:
    values: dict[str, Any] = {"distance_m": distance}
    if verdict is Verdict.in_review:
        values["review_due_at"] = now + timedelta(hours=campaign.review_deadline_hours)
    else:
        values["decided_at"] = now
    if verdict is Verdict.approved:
        # A share of approved work is drawn for an audit by a person (the payment stands either way).
        values["audit_sampled"] = random.random() * 100 < campaign.audit_sample_percent  # noqa: S311
    return values
