"""The check job: measure every photo of a submission, compare with every earlier photo, judge the
place and the time, then decide, explain, and (approved) release the payment.

The slow part (downloads, decoding, derivatives) runs before any write; the decision is taken in
one short transaction holding the duplicate lock, so that two submissions of the same picture
cannot both pass.
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlmodel import Session, col, select

from fieldcheck.assignments.models import ActorType, Assignment, AssignmentStatus
from fieldcheck.assignments.payment import release_reward
from fieldcheck.assignments.transitions import transition
from fieldcheck.campaigns.models import Campaign
from fieldcheck.checks import assignment as rules
from fieldcheck.checks.derivatives import make_derivatives
from fieldcheck.checks.duplicates import HashIndex, PhotoHash, lock_for_duplicates
from fieldcheck.checks.imaging import exif_time_utc
from fieldcheck.checks.models import CheckResultRow
from fieldcheck.checks.photo import Check, PhotoReport, check_photo, same_picture
from fieldcheck.db import utcnow
from fieldcheck.jobs import JobContext
from fieldcheck.photos.models import Photo, PhotoStatus
from fieldcheck.storage import ObjectStorage
from fieldcheck.stores.models import Store
from fieldcheck.tasks.models import Task

log = logging.getLogger("fieldcheck.checks")


@dataclass
class PhotoWork:
    photo: Photo
    report: PhotoReport
    thumbnail_key: str | None = None
    safe_key: str | None = None
    faces_blurred: int = 0
    taken_at: Any = None  # EXIF capture time in UTC, when it can be placed
    extra: list[Check] = field(default_factory=list)


@dataclass
class Submission:
    assignment: Assignment
    campaign: Campaign
    store: Store
    photos: list[Photo]
    previous: rules.PreviousVisit | None


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
        previous = rules.PreviousVisit(earlier.device_lat, earlier.device_lon, earlier.submitted_at)
    return Submission(assignment, campaign, store, photos, previous)


def measure_photo(
    storage: ObjectStorage, photo: Photo, *, min_short_side_px: int, max_bytes: int
) -> PhotoWork:
    """Read the photo as submitted (refusing one changed since), check it, make its derivatives."""
    info = storage.head(photo.storage_key)
    if info is None or info.etag != photo.stored_etag or info.size != photo.stored_bytes:
        report = PhotoReport()
        report.checks.append(
            Check(
                "file",
                "fail",
                None,
                "the file submitted",
                "The stored photo changed or disappeared after it was submitted, so it cannot be trusted. "
                "Take the photo again on your next task.",
            )
        )
        return PhotoWork(photo, report)
    data = storage.get_bytes(photo.storage_key)
    report = check_photo(data, min_short_side_px=min_short_side_px, max_bytes=max_bytes)
    work = PhotoWork(photo, report)
    if (
        report.width
        and report.height
        and report.detected_type in ("jpeg", "png")
        and report.measurements.get("decoded")
    ):
        try:
            derived = make_derivatives(
                data,
                width=report.width,
                height=report.height,
                orientation=report.orientation,
                detected_type=report.detected_type,
            )
        except ValueError:
            log.warning("no derivatives for photo %s", photo.id)
        else:
            base = photo.storage_key.rsplit("/", 1)[0]
            work.thumbnail_key, work.safe_key = f"{base}/thumbnail.jpg", f"{base}/client-safe.jpg"
            storage.put(work.thumbnail_key, derived.thumbnail, content_type="image/jpeg")
            storage.put(work.safe_key, derived.safe, content_type="image/jpeg")
            work.faces_blurred = derived.faces_blurred
    return work


def _duplicate_checks(session: Session, index: HashIndex, works: list[PhotoWork]) -> None:
    """Earlier photos anywhere on the platform (fail), and twins inside this submission (warn)."""
    mine = {w.photo.id for w in works}
    for work in works:
        report = work.report
        if report.sha256 is None or not report.measurements.get("decoded"):
            continue
        exact = session.exec(
            select(Photo.id)
            .where(
                Photo.sha256 == report.sha256,
                col(Photo.id).not_in(mine),
                Photo.status == PhotoStatus.checked.value,
            )
            .limit(1)
        ).first()
        near: tuple[uuid.UUID, int] | None = None
        if exact is None and report.comparable and report.phash is not None:
            candidates = [c for c in index.candidates(report.phash) if c.photo_id not in mine]
            if candidates:
                stored = {
                    row.photo_id: row
                    for row in session.exec(
                        select(PhotoHash).where(col(PhotoHash.photo_id).in_([c.photo_id for c in candidates]))
                    ).all()
                }
                for candidate in sorted(candidates, key=lambda c: c.distance):
                    row = stored.get(candidate.photo_id)
                    if row is not None and same_picture(report, row.model_dump())[0]:
                        near = (candidate.photo_id, candidate.distance)
                        break
        threshold = "not an earlier photo (same file, or the same picture re-saved)"
        if exact is not None:
            work.extra.append(
                Check(
                    "duplicate",
                    "fail",
                    "identical file",
                    threshold,
                    "This exact photo was already submitted before. Each task needs new photos "
                    "taken during the visit.",
                )
            )
        elif near is not None:
            work.extra.append(
                Check(
                    "duplicate",
                    "fail",
                    f"{near[1]} of 64 bits differ",
                    threshold,
                    "This photo is the same picture as one submitted before (perhaps resized, "
                    "cropped or re-saved). Each task needs new photos taken during the visit.",
                )
            )
        else:
            work.extra.append(
                Check("duplicate", "pass", None, threshold, "This photo was not submitted before.")
            )
    for index_a, a in enumerate(works):
        for b in works[index_a + 1 :]:
            if a.report.sha256 == b.report.sha256 and a.report.sha256 is not None:
                twin: tuple[bool, int] = (True, 0)
            elif a.report.comparable and b.report.comparable:
                twin = same_picture(a.report, b.report)
            else:
                continue
            if twin[0]:
                b.extra.append(
                    Check(
                        "duplicate_in_submission",
                        "warn",
                        f"same picture as photo {a.photo.id}",
                        "different pictures",
                        "Two photos of this submission are the same picture; a reviewer will check "
                        "that the task is complete.",
                    )
                )


def _assignment_checks(submission: Submission, works: list[PhotoWork]) -> tuple[list[Check], float | None]:
    assignment, store = submission.assignment, submission.store
    assert assignment.device_lat is not None and assignment.device_lon is not None and assignment.submitted_at
    fix = rules.Fix(
        assignment.device_lat,
        assignment.device_lon,
        assignment.device_accuracy_m or 0.0,
        bool(assignment.device_is_mock),
    )
    place = rules.Place(store.lat, store.lon, float(store.geofence_m))
    location, distance = rules.location_check(fix, place)
    checks = [location]
    accuracy = rules.accuracy_check(fix)
    if accuracy:
        checks.append(accuracy)
    travel = rules.travel_check(submission.previous, fix, assignment.submitted_at)
    if travel:
        checks.append(travel)
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
            rules.exif_time_check(
                taken,
                reserved_at=assignment.created_at,
                submitted_at=assignment.submitted_at,
                present="taken_local" in exif,
            )
        )
        work.extra.append(rules.exif_gps_check(exif.get("gps_lat"), exif.get("gps_lon"), fix, place))
    located = distance if not (fix.is_mock or (fix.lat == 0 and fix.lon == 0)) else None
    return checks, located


def check_submission(ctx: JobContext, index: HashIndex, assignment_id: uuid.UUID) -> None:
    settings, storage = ctx.settings, ctx.runtime.storage
    with ctx.reading() as reading:
        submission = load_submission(reading, assignment_id)
    if submission is None or submission.assignment.status != AssignmentStatus.submitted.value:
        return
    campaign = submission.campaign
    works = [
        measure_photo(
            storage, photo, min_short_side_px=campaign.min_short_side_px, max_bytes=settings.photo_max_bytes
        )
        for photo in submission.photos
    ]

    # The write phase: short, and one at a time for duplicate detection.
    session = ctx.session
    lock_for_duplicates(session)
    current = session.get(Assignment, assignment_id, populate_existing=True)
    if current is None or current.status != AssignmentStatus.submitted.value:
        return
    index.refresh(session)
    _duplicate_checks(session, index, works)
    assignment_checks, distance = _assignment_checks(submission, works)
    now = utcnow()
    results: list[tuple[uuid.UUID | None, Check]] = []
    for work in works:
        _store_photo(session, work, now)
        results += [(work.photo.id, check) for check in work.report.checks + work.extra]
    results += [(None, check) for check in assignment_checks]
    for position, (photo_id, check) in enumerate(results):
        session.add(
            CheckResultRow(
                assignment_id=assignment_id,
                photo_id=photo_id,
                position=position,
                name=check.name,
                outcome=check.outcome,
                value=check.value,
                threshold=check.threshold,
                explanation=check.explanation,
            )
        )
    decision = rules.decide([check for _, check in results], review_all=campaign.review_all)
    sampled = decision.outcome == "approved" and random.random() * 100 < campaign.audit_sample_percent  # noqa: S311
    reason = {
        "approved": "Approved automatically: every check passed.",
        "in_review": "Sent to a person: some checks were not sure.",
        "rejected": "Rejected by the automated checks; you can appeal to a person.",
    }[decision.outcome]
    decided = transition(
        session,
        assignment_id,
        from_statuses=[AssignmentStatus.submitted],
        to=AssignmentStatus(decision.outcome),
        actor_type=ActorType.system,
        actor_id=None,
        reason=reason,
        details={"reasons": decision.reasons},
        values={"distance_m": distance, "audit_sampled": sampled}
        | ({"decided_at": now} if decision.outcome != "in_review" else {})
        | (
            {"review_due_at": now + timedelta(hours=campaign.review_deadline_hours)}
            if decision.outcome == "in_review"
            else {}
        ),
    )
    if decided is not None and decision.outcome == "approved":
        release_reward(session, decided, campaign)


def _store_photo(session: Session, work: PhotoWork, now: Any) -> None:
    photo, report = work.photo, work.report
    stored = session.get(Photo, photo.id, populate_existing=True)
    assert stored is not None
    stored.status = PhotoStatus.checked.value
    stored.detected_type = report.detected_type
    stored.width, stored.height = report.width, report.height
    stored.sha256, stored.phash, stored.dhash, stored.fingerprint = (
        report.sha256,
        report.phash,
        report.dhash,
        report.fingerprint,
    )
    taken = report.exif.get("taken_local")
    stored.exif_lat, stored.exif_lon = report.exif.get("gps_lat"), report.exif.get("gps_lon")
    stored.exif_taken_at = work.taken_at
    stored.measurements = {
        **report.measurements,
        "faces_blurred": work.faces_blurred,
        **({"exif_taken_local": taken} if taken else {}),
    }
    stored.thumbnail_key, stored.safe_key = work.thumbnail_key, work.safe_key
    stored.checked_at = now
    session.add(stored)
    if report.phash is not None and report.dhash is not None and report.fingerprint:
        session.add(
            PhotoHash(
                photo_id=photo.id, phash=report.phash, dhash=report.dhash, fingerprint=report.fingerprint
            )
        )
