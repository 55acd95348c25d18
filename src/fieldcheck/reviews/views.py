"""What a reviewer sees of an item: everything needed to decide it, on one page (API and console)."""

from __future__ import annotations

import uuid

from sqlmodel import Session, col, select

from fieldcheck.assignments import service as assignments
from fieldcheck.assignments.models import Assignment, AssignmentStatus
from fieldcheck.assignments.views import check_out
from fieldcheck.checks.models import ReferencePhoto
from fieldcheck.checks.service import results_of
from fieldcheck.errors import NotFound
from fieldcheck.i18n import _, text
from fieldcheck.photos.models import Photo, PhotoStatus
from fieldcheck.reviews import service
from fieldcheck.reviews.models import Appeal, ReviewClaim
from fieldcheck.reviews.schemas import (
    EarlierPhotoOut,
    ItemOut,
    Position,
    QueueItemOut,
    ReviewPhotoOut,
    ReviewReferenceOut,
)
from fieldcheck.settings import Settings
from fieldcheck.storage import ObjectStorage
from fieldcheck.tasks.models import Task

EARLIER_PHOTOS = 6


def item_detail(
    session: Session,
    storage: ObjectStorage,
    settings: Settings,
    reviewer_id: uuid.UUID,
    assignment_id: uuid.UUID,
) -> ItemOut:
    """Everything a reviewer needs to decide, on one page."""
    assignment = session.get(Assignment, assignment_id)
    if assignment is None:
        raise NotFound(text(_("no such assignment")), code="assignment_not_found")
    reason = service.reason_of(assignment)
    if reason is None:
        raise NotFound(text(_("this assignment is not waiting for a review")), code="not_in_review")
    _task, campaign, store = assignments.context_of(session, [assignment])[assignment.task_id]
    ttl = settings.signed_url_ttl_s
    photos = session.exec(
        select(Photo)
        .where(Photo.assignment_id == assignment_id, Photo.status != PhotoStatus.awaiting_upload.value)
        .order_by(col(Photo.created_at))
    ).all()
    earlier = session.exec(
        select(Photo, Assignment)
        .join(Assignment, col(Assignment.id) == col(Photo.assignment_id))
        .join(Task, col(Task.id) == col(Assignment.task_id))
        .where(
            Task.store_id == store.id,
            Assignment.status == AssignmentStatus.approved.value,
            Assignment.id != assignment_id,
            col(Photo.thumbnail_key).is_not(None),
        )
        .order_by(col(Assignment.decided_at).desc())
        .limit(EARLIER_PHOTOS)
    ).all()
    checks = results_of(session, [assignment_id])[assignment_id]
    events = assignments.events_of(session, [assignment_id])[assignment_id]
    appeal = session.exec(select(Appeal).where(Appeal.assignment_id == assignment_id)).first()
    claim = session.get(ReviewClaim, assignment_id)
    mine = claim is not None and claim.reviewer_id == reviewer_id
    return ItemOut(
        assignment_id=assignment.id,
        reason=reason,
        status=assignment.status,
        campaign_title=campaign.title,
        instructions=campaign.instructions,
        store_name=store.name,
        store_address=store.address,
        store_position=Position(lat=store.lat, lon=store.lon),
        geofence_m=store.geofence_m,
        device_position=Position(lat=assignment.device_lat, lon=assignment.device_lon)
        if assignment.device_lat is not None and assignment.device_lon is not None
        else None,
        device_accuracy_m=assignment.device_accuracy_m,
        distance_m=assignment.distance_m,
        submitted_at=assignment.submitted_at,
        review_due_at=assignment.review_due_at,
        photos=[
            ReviewPhotoOut(
                id=p.id,
                url=storage.presign_download(p.viewable_key, expires_s=ttl, content_type=p.viewable_type)
                if p.viewable_key
                else None,
                originals_removed_at=p.originals_removed_at,
                thumbnail_url=storage.presign_download(
                    p.thumbnail_key, expires_s=ttl, content_type="image/jpeg"
                )
                if p.thumbnail_key
                else None,
                width=p.width,
                height=p.height,
                measurements=p.measurements,
                reference=_reference_of(session, storage, ttl, p),
            )
            for p in photos
        ],
        checks=[check_out(c) for c in checks],
        earlier_photos_of_store=[
            EarlierPhotoOut(
                assignment_id=a.id,
                decided_at=a.decided_at,
                thumbnail_url=storage.presign_download(p.thumbnail_key, expires_s=ttl)
                if p.thumbnail_key
                else None,
                url=storage.presign_download(p.safe_key, expires_s=ttl) if p.safe_key else None,
            )
            for p, a in earlier
        ],
        worker_record=service.worker_record(session, assignment.worker_id),
        appeal_message=appeal.message if appeal else None,
        history=[
            {"at": e.at, "from": e.from_status, "to": e.to_status, "by": e.actor_type, "reason": e.reason}
            for e in events
        ],
        lease_expires_at=claim.expires_at if mine and claim else None,
    )


def _reference_of(
    session: Session, storage: ObjectStorage, ttl: int, photo: Photo
) -> ReviewReferenceOut | None:
    """The reference the photo was compared with, and where the photo lies in it."""
    found = photo.measurements.get("reference")
    if not isinstance(found, dict):
        return None
    try:
        owner = uuid.UUID(str(found.get("id")))
    except ValueError:
        return None
    key: str | None = None
    if found.get("kind") == "campaign":
        reference = session.get(ReferencePhoto, owner)
        key = reference.display_key if reference is not None and reference.deleted_at is None else None
    else:
        earlier = session.get(Photo, owner)
        key = earlier.safe_key if earlier is not None else None
    outline = found.get("outline")
    return ReviewReferenceOut(
        kind=str(found.get("kind")),
        url=storage.presign_download(key, expires_s=ttl, content_type="image/jpeg") if key else None,
        matched=bool(found.get("matched")),
        inliers=int(found.get("inliers") or 0),
        outline=[(float(x), float(y)) for x, y in outline] if isinstance(outline, list) else None,
    )


def queue_out(session: Session, reviewer_id: uuid.UUID, items: list[service.QueueItem]) -> list[QueueItemOut]:
    contexts = assignments.context_of(session, [i.assignment for i in items])
    out = []
    for item in items:
        _task, campaign, store = contexts[item.assignment.task_id]
        mine = item.claim is not None and item.claim.reviewer_id == reviewer_id
        out.append(
            QueueItemOut(
                assignment_id=item.assignment.id,
                reason=item.reason,
                waiting_since=item.waiting_since,
                review_due_at=item.assignment.review_due_at,
                campaign_title=campaign.title,
                store_name=store.name,
                claimed_by_me=mine,
                lease_expires_at=item.claim.expires_at if mine and item.claim else None,
            )
        )
    return out
