"""Assignments: reserving a slot, cancelling, expiry, and what a worker sees of their work."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from fieldcheck.assignments.models import (
    ActorType,
    Assignment,
    AssignmentEvent,
    AssignmentStatus,
    status_text,
)
from fieldcheck.assignments.schemas import SubmitIn
from fieldcheck.assignments.transitions import record_event, transition
from fieldcheck.auth.models import User
from fieldcheck.campaigns import service as campaigns
from fieldcheck.campaigns.models import Campaign, CampaignStatus
from fieldcheck.checks.models import PhotoFeatures
from fieldcheck.db import utcnow
from fieldcheck.errors import Conflict, NotFound, Unprocessable, field_error
from fieldcheck.i18n import Text, _, text
from fieldcheck.jobs import enqueue
from fieldcheck.pagination import paginate
from fieldcheck.photos import service as photos
from fieldcheck.photos.models import Photo, PhotoStatus
from fieldcheck.settings import Settings
from fieldcheck.storage import ObjectStorage, UploadInstruction
from fieldcheck.stores.models import Store
from fieldcheck.tasks.models import Task
from fieldcheck.tasks.service import take_slot

CHECK_SUBMISSION_JOB = "assignments.check_submission"
CHECK_PHOTO_JOB = "assignments.check_photo"

EXPIRY_BATCH = 500
EXPIRED_REASON = text(
    _("The reservation time ran out before photos were submitted; the slot went back to the task.")
)


def said(reason: Text) -> dict[str, Any]:
    """An event's reason as a Text, kept in its details to be read in the worker's language."""
    return {"reason_text": reason.as_json()}


def reservation_limit(session: Session, worker_id: uuid.UUID, settings: Settings) -> int:
    """How many reservations a worker may hold at once: fewer until a first visit is approved.

    New accounts cost nothing to make; holding many slots before any work was accepted is how
    fresh accounts crowd out the workers who do the visits.
    """
    proven = session.exec(
        select(Assignment.id)
        .where(Assignment.worker_id == worker_id, Assignment.status == AssignmentStatus.approved.value)
        .limit(1)
    ).first()
    if proven is not None:
        return settings.max_reservations_per_worker
    return min(settings.new_worker_max_reservations, settings.max_reservations_per_worker)


def reserve(session: Session, *, worker_id: uuid.UUID, task_id: uuid.UUID, settings: Settings) -> Assignment:
    now = utcnow()
    # One worker's reservations queue on their own row, so the cap below cannot be raced past.
    session.exec(select(User.id).where(User.id == worker_id).with_for_update()).first()
    expire_overdue(session, now=now, task_id=task_id)
    held = session.exec(
        select(func.count())
        .select_from(Assignment)
        .where(
            Assignment.worker_id == worker_id,
            Assignment.status == AssignmentStatus.reserved.value,
            col(Assignment.expires_at) > now,
        )
    ).one()
    limit = reservation_limit(session, worker_id, settings)
    if held >= limit:
        newcomer = limit < settings.max_reservations_per_worker
        if held == 1:
            message = (
                _(
                    "you already hold {held} reservation, the most at once until a first visit of yours "
                    "is approved; submit or cancel one first"
                )
                if newcomer
                else _("you already hold {held} reservation, the most at once; submit or cancel one first")
            )
        else:
            message = (
                _(
                    "you already hold {held} reservations, the most at once until a first visit of yours "
                    "is approved; submit or cancel one first"
                )
                if newcomer
                else _("you already hold {held} reservations, the most at once; submit or cancel one first")
            )
        raise Conflict(text(message, held=held), code="reservation_limit_reached", limit=limit)
    found = session.exec(
        select(Task, Campaign)
        .join(Campaign, col(Campaign.id) == col(Task.campaign_id))
        .where(Task.id == task_id)
    ).first()
    if found is None:
        raise NotFound(text(_("no such task")), code="task_not_found")
    task, campaign = found
    if campaign.status != CampaignStatus.active.value or not task.is_open or not _in_schedule(campaign, now):
        raise Conflict(text(_("this task is not open for reservations now")), code="task_not_available")
    assignment = Assignment(
        task_id=task.id,
        campaign_id=campaign.id,
        worker_id=worker_id,
        status=AssignmentStatus.reserved.value,
        created_at=now,
        updated_at=now,
        expires_at=now + timedelta(minutes=campaign.reservation_minutes),
    )
    session.add(assignment)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(text(_("you already hold or have done this task")), code="already_reserved") from None
    if not take_slot(session, task.id):
        raise Conflict(text(_("every slot of this task is taken")), code="no_slot_left")
    reason = text(_("Reserved for {minutes} minutes."), minutes=campaign.reservation_minutes)
    record_event(
        session,
        assignment.id,
        from_status=None,
        to_status=AssignmentStatus.reserved,
        actor_type=ActorType.worker,
        actor_id=worker_id,
        reason=reason.english,
        details=said(reason),
    )
    return assignment


def submit(
    session: Session,
    storage: ObjectStorage,
    settings: Settings,
    *,
    worker_id: uuid.UUID,
    assignment_id: uuid.UUID,
    data: SubmitIn,
) -> Assignment:
    """Hand in the photos with the phone's position; the checks run in a job after the commit."""
    assignment, campaign = live_reservation(session, worker_id, assignment_id)
    given = {
        photo.id: photo
        for photo in session.exec(
            select(Photo).where(Photo.assignment_id == assignment.id, col(Photo.id).in_(data.photo_ids))
        ).all()
    }
    unknown = [str(i) for i in data.photo_ids if i not in given]
    if unknown:
        raise Unprocessable(
            text(_("some photo ids are not photos of this assignment")),
            code="unknown_photos",
            photo_ids=unknown,
            errors=[field_error("photo_ids", text(_("unknown photo ids")))],
        )
    count = len(data.photo_ids)
    if not campaign.min_photos <= count <= campaign.max_photos:
        code = "too_few_photos" if count < campaign.min_photos else "too_many_photos"
        raise Unprocessable(
            text(
                _("this task takes {least} to {most} photos, not {count}"),
                least=campaign.min_photos,
                most=campaign.max_photos,
                count=count,
            ),
            code=code,
            errors=[
                field_error(
                    "photo_ids",
                    text(_("{least} to {most}"), least=campaign.min_photos, most=campaign.max_photos),
                )
            ],
        )
    now = utcnow()
    refused: dict[str, list[str]] = {}
    for photo_id in data.photo_ids:
        photo = given[photo_id]
        # Frozen now: the checks, reviewers and clients will see exactly these bytes.
        problem = photos.freeze(session, storage, settings, photo)
        if problem is not None:
            refused.setdefault(problem, []).append(str(photo_id))
            continue
        photo.status, photo.submitted_at = PhotoStatus.submitted.value, now
        session.add(photo)
    for problem, ids in refused.items():
        raise _unsubmittable(problem, ids, settings)
    offset = data.captured_at.utcoffset()
    reason = text(_("Submitted {count} photo(s); the automated checks run now."), count=count)
    submitted = transition(
        session,
        assignment.id,
        from_statuses=[AssignmentStatus.reserved],
        to=AssignmentStatus.submitted,
        actor_type=ActorType.worker,
        actor_id=worker_id,
        worker_id=worker_id,
        reason=reason.english,
        details=said(reason),
        values={
            "submitted_at": now,
            "device_lat": data.location.lat,
            "device_lon": data.location.lon,
            "device_accuracy_m": data.location.accuracy_m,
            "device_is_mock": data.location.is_mock,
            "device_id": data.device_id,
            "captured_at": data.captured_at,
            "arrived_at": arrival(data.arrived_at, assignment.created_at, now),
            "capture_offset_minutes": int(offset.total_seconds() // 60) if offset is not None else None,
        },
    )
    if submitted is None:  # the row is locked above: only an expiry sweep racing us gets here
        raise Conflict(text(_("the reservation ended before the submission")), code="reservation_expired")
    measure_visit_times(session, campaign.id)
    campaigns.pause_if_underpaid(session, campaign.id, settings)
    enqueue(session, CHECK_SUBMISSION_JOB, assignment_id=str(assignment.id))
    return submitted


MEASURED_VISITS = 500  # the campaign's most recent visits its working time is measured on


# How far a phone's clock may be off: an arrival this close outside the reservation is kept at its edge.
ARRIVAL_CLOCK_ERROR = timedelta(minutes=2)


def arrival(said: datetime | None, reserved: datetime, submitted: datetime) -> datetime | None:
    """When the worker reached the store, from what the phone said: within the reservation (give or
    take a clock's small error, kept at its edge), or unknown: a time well outside it is not evidence
    of travel, and would skew the campaign's median either way."""
    if said is None or not reserved - ARRIVAL_CLOCK_ERROR <= said <= submitted + ARRIVAL_CLOCK_ERROR:
        return None
    return min(max(said, reserved), submitted)


def measure_visit_times(session: Session, campaign_id: uuid.UUID) -> None:
    """The campaign's real working time, reservation to submission, over its last visits: median
    and 75th percentile in minutes, kept on the campaign (what its pay is judged on); and of it, the
    median time to reach the store over those visits whose phone reported its arrival."""
    rows = session.exec(
        select(Assignment.created_at, Assignment.submitted_at, Assignment.arrived_at)
        .where(Assignment.campaign_id == campaign_id, col(Assignment.submitted_at).is_not(None))
        .order_by(col(Assignment.submitted_at).desc())
        .limit(MEASURED_VISITS)
    ).all()
    minutes = sorted(
        (submitted - reserved).total_seconds() / 60 for reserved, submitted, _ in rows if submitted
    )
    if not minutes:
        return
    travel = sorted((arrived - reserved).total_seconds() / 60 for reserved, _, arrived in rows if arrived)
    session.exec(
        update(Campaign)
        .where(col(Campaign.id) == campaign_id)
        .values(
            measured_minutes_median=round(_quantile(minutes, 0.5), 1),
            measured_minutes_p75=round(_quantile(minutes, 0.75), 1),
            measured_visits=len(minutes),
            measured_travel_minutes_median=round(_quantile(travel, 0.5), 1) if travel else None,
            measured_travel_visits=len(travel),
        )
    )


def _quantile(ordered: list[float], share: float) -> float:
    position = (len(ordered) - 1) * share
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def live_reservation(
    session: Session, worker_id: uuid.UUID, assignment_id: uuid.UUID
) -> tuple[Assignment, Campaign]:
    """This worker's assignment, locked, while it is a reservation that has not run out."""
    found = session.exec(
        select(Assignment, Campaign)
        .join(Campaign, col(Campaign.id) == col(Assignment.campaign_id))
        .where(Assignment.id == assignment_id, Assignment.worker_id == worker_id)
        .with_for_update(of=Assignment)
    ).first()
    if found is None:
        raise NotFound(text(_("no such assignment")), code="assignment_not_found")
    assignment, campaign = found
    if assignment.status != AssignmentStatus.reserved.value:
        raise Conflict(
            text(
                _("photos can be added while the task is reserved; this assignment is {status}"),
                status=status_text(assignment.status),
            ),
            code="not_reserved",
            current_status=assignment.status,
        )
    if assignment.expires_at <= utcnow():
        raise Conflict(
            text(_("the reservation has expired; reserve the task again")), code="reservation_expired"
        )
    return assignment, campaign


def request_upload(
    session: Session,
    storage: ObjectStorage,
    settings: Settings,
    *,
    worker_id: uuid.UUID,
    assignment_id: uuid.UUID,
    content_type: str,
    size_bytes: int,
) -> tuple[Photo, UploadInstruction]:
    """A place for one more photo of a live reservation, and where the phone uploads it."""
    content_type = photos.accepted_type(content_type, size_bytes, settings)
    # The assignment row is locked: two uploads asked at once cannot both take the last place.
    assignment, campaign = live_reservation(session, worker_id, assignment_id)
    return photos.create_upload(
        session,
        storage,
        settings,
        assignment_id=assignment.id,
        worker_id=worker_id,
        content_type=content_type,
        size_bytes=size_bytes,
        limit=campaign.max_photos,
    )


def photo_uploaded(
    session: Session,
    storage: ObjectStorage,
    settings: Settings,
    *,
    worker_id: uuid.UUID,
    assignment_id: uuid.UUID,
    photo_id: uuid.UUID,
) -> Photo:
    """The phone says a photo's upload finished: its instant checks start (after the commit)."""
    live_reservation(session, worker_id, assignment_id)
    photo = photos.get_for_worker(
        session, worker_id=worker_id, assignment_id=assignment_id, photo_id=photo_id, lock=True
    )
    photos.upload_finished(session, storage, settings, photo, job=CHECK_PHOTO_JOB)
    return photo


def photo_of_worker(
    session: Session, *, worker_id: uuid.UUID, assignment_id: uuid.UUID, photo_id: uuid.UUID
) -> Photo:
    """One of the worker's photos (whatever the assignment's state: the checks stay readable)."""
    return photos.get_for_worker(session, worker_id=worker_id, assignment_id=assignment_id, photo_id=photo_id)


def drop_photo(
    session: Session, *, worker_id: uuid.UUID, assignment_id: uuid.UUID, photo_id: uuid.UUID
) -> None:
    """Delete a photo not yet submitted, freeing its place (its objects go after the commit)."""
    live_reservation(session, worker_id, assignment_id)
    # Locked: an instant check writing its results meanwhile waits, or finds the photo gone.
    photo = photos.get_for_worker(
        session, worker_id=worker_id, assignment_id=assignment_id, photo_id=photo_id, lock=True
    )
    if photo.status == PhotoStatus.awaiting_upload.value:
        # The local features its instant checks kept go with it.
        session.exec(delete(PhotoFeatures).where(col(PhotoFeatures.photo_id) == photo.id))
    photos.delete_unsubmitted(session, worker_id=worker_id, assignment_id=assignment_id, photo_id=photo_id)


def _unsubmittable(problem: str, photo_ids: list[str], settings: Settings) -> Unprocessable | Conflict:
    count = len(photo_ids)
    if problem == "missing":
        return Unprocessable(
            text(
                _("{count} photo(s) have not arrived in storage yet: upload them, then submit again"),
                count=count,
            ),
            code="photo_not_uploaded",
            photo_ids=photo_ids,
        )
    if problem == "too_large":
        return Unprocessable(
            text(
                _("{count} photo(s) are larger than {limit} bytes"),
                count=count,
                limit=settings.photo_max_bytes,
            ),
            code="photo_too_large",
            photo_ids=photo_ids,
        )
    if problem == "size_mismatch":
        return Unprocessable(
            text(
                _(
                    "{count} photo(s) in storage are not the size announced for them: delete them and "
                    "upload again"
                ),
                count=count,
            ),
            code="photo_size_mismatch",
            photo_ids=photo_ids,
        )
    return Conflict(
        text(_("{count} photo(s) changed while being submitted; submit again"), count=count),
        code="photo_changed",
        photo_ids=photo_ids,
    )


def _in_schedule(campaign: Campaign, now: datetime) -> bool:
    return (campaign.starts_at is None or campaign.starts_at <= now) and (
        campaign.ends_at is None or campaign.ends_at > now
    )


def cancel(session: Session, *, worker_id: uuid.UUID, assignment_id: uuid.UUID) -> Assignment:
    assignment = get_for_worker(session, worker_id, assignment_id)
    reason = text(_("Cancelled by the worker; the slot went back to the task."))
    changed = transition(
        session,
        assignment.id,
        from_statuses=[AssignmentStatus.reserved],
        to=AssignmentStatus.cancelled,
        actor_type=ActorType.worker,
        actor_id=worker_id,
        worker_id=worker_id,
        reason=reason.english,
        details=said(reason),
    )
    if changed is None:
        session.refresh(assignment)
        raise Conflict(
            text(
                _("only a reservation can be cancelled; this assignment is {status}"),
                status=status_text(assignment.status),
            ),
            code="not_cancellable",
            current_status=assignment.status,
        )
    return changed


def record_audit(
    session: Session, assignment: Assignment, *, reviewer_id: uuid.UUID, passed: bool, reasons: list[str]
) -> None:
    """An audit of approved work: noted in the history; the payment stands either way."""
    reason = text(
        _("Audited by a person: the work is fine.")
        if passed
        else _("Audited by a person: problems were noted; your payment stands.")
    )
    record_event(
        session,
        assignment.id,
        from_status=AssignmentStatus.approved,
        to_status=AssignmentStatus.approved,
        actor_type=ActorType.reviewer,
        actor_id=reviewer_id,
        reason=reason.english,
        details={"reasons": reasons, "audit": "passed" if passed else "failed", **said(reason)},
    )


SWEEP_BATCH = 200


def sweep_unsubmitted_photos(session: Session, settings: Settings, *, now: datetime | None = None) -> int:
    """Photos never submitted, of reservations that ended (cancelled, expired, or submitted without
    them), once no upload to them can still arrive: their objects (the upload, and the thumbnail and
    client-safe copy their instant checks made), their local features and their rows go. Returns
    how many."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=settings.signed_url_ttl_s + photos.UPLOAD_GRACE_S)
    rows = session.exec(
        select(Photo)
        .join(Assignment, col(Assignment.id) == col(Photo.assignment_id))
        .where(
            Photo.status == PhotoStatus.awaiting_upload.value,
            col(Photo.created_at) < cutoff,
            (col(Assignment.status) != AssignmentStatus.reserved.value)
            | (col(Assignment.expires_at) <= cutoff),
        )
        .limit(SWEEP_BATCH)
        .with_for_update(of=Photo, skip_locked=True)
    ).all()
    for photo in rows:
        session.exec(delete(PhotoFeatures).where(col(PhotoFeatures.photo_id) == photo.id))
        photos.delete_unsubmitted(
            session, worker_id=photo.worker_id, assignment_id=photo.assignment_id, photo_id=photo.id
        )
    return len(rows)


def expire_overdue(session: Session, *, now: datetime | None = None, task_id: uuid.UUID | None = None) -> int:
    """Turn overdue reservations into expired ones, freeing their slots; returns how many."""
    now = now or utcnow()
    query = select(Assignment.id).where(
        Assignment.status == AssignmentStatus.reserved.value, col(Assignment.expires_at) <= now
    )
    if task_id is not None:
        query = query.where(Assignment.task_id == task_id)
    overdue = session.exec(query.limit(EXPIRY_BATCH).with_for_update(skip_locked=True)).all()
    expired = 0
    for assignment_id in overdue:
        if transition(
            session,
            assignment_id,
            from_statuses=[AssignmentStatus.reserved],
            to=AssignmentStatus.expired,
            actor_type=ActorType.system,
            actor_id=None,
            reason=EXPIRED_REASON.english,
            details=said(EXPIRED_REASON),
        ):
            expired += 1
    return expired


def get_for_worker(session: Session, worker_id: uuid.UUID, assignment_id: uuid.UUID) -> Assignment:
    assignment = session.exec(
        select(Assignment).where(Assignment.id == assignment_id, Assignment.worker_id == worker_id)
    ).first()
    if assignment is None:
        raise NotFound(text(_("no such assignment")), code="assignment_not_found")
    return assignment


def list_for_worker(
    session: Session, worker_id: uuid.UUID, *, status: str | None, limit: int, cursor: str | None
) -> tuple[list[Assignment], str | None]:
    query = select(Assignment).where(Assignment.worker_id == worker_id)
    if status:
        query = query.where(Assignment.status == status)
    return paginate(
        session,
        query,
        time_column=col(Assignment.created_at),
        id_column=col(Assignment.id),
        limit=limit,
        cursor=cursor,
        newest_first=True,
    )


def events_of(session: Session, assignment_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[AssignmentEvent]]:
    grouped: dict[uuid.UUID, list[AssignmentEvent]] = {i: [] for i in assignment_ids}
    if assignment_ids:
        rows = session.exec(
            select(AssignmentEvent)
            .where(col(AssignmentEvent.assignment_id).in_(assignment_ids))
            .order_by(col(AssignmentEvent.at), col(AssignmentEvent.id))
        ).all()
        for event in rows:
            grouped[event.assignment_id].append(event)
    return grouped


def context_of(
    session: Session, assignments: list[Assignment]
) -> dict[uuid.UUID, tuple[Task, Campaign, Store]]:
    """Task, campaign and store of each assignment, read in one query."""
    task_ids = list({a.task_id for a in assignments})
    if not task_ids:
        return {}
    rows = session.exec(
        select(Task, Campaign, Store)
        .join(Campaign, col(Campaign.id) == col(Task.campaign_id))
        .join(Store, col(Store.id) == col(Task.store_id))
        .where(col(Task.id).in_(task_ids))
    ).all()
    return {task.id: (task, campaign, store) for task, campaign, store in rows}
