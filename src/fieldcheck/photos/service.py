"""Photos: upload instructions handed to phones, and the proof that an upload really happened."""

from __future__ import annotations

import mimetypes
import uuid

from sqlalchemy import func
from sqlmodel import Session, col, select

from fieldcheck.assignments.models import Assignment, AssignmentStatus
from fieldcheck.campaigns.models import Campaign
from fieldcheck.db import utcnow
from fieldcheck.errors import Conflict, NotFound, Unprocessable
from fieldcheck.jobs import enqueue
from fieldcheck.photos.models import Photo, PhotoStatus
from fieldcheck.settings import Settings
from fieldcheck.storage import ObjectStorage, UploadInstruction

EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/heic": "heic"}


def live_reservation(
    session: Session, worker_id: uuid.UUID, assignment_id: uuid.UUID
) -> tuple[Assignment, Campaign]:
    found = session.exec(
        select(Assignment, Campaign)
        .join(Campaign, col(Campaign.id) == col(Assignment.campaign_id))
        .where(Assignment.id == assignment_id, Assignment.worker_id == worker_id)
        .with_for_update(of=Assignment)
    ).first()
    if found is None:
        raise NotFound("no such assignment", code="assignment_not_found")
    assignment, campaign = found
    if assignment.status != AssignmentStatus.reserved.value:
        raise Conflict(
            f"photos can be added while the task is reserved; this assignment is {assignment.status}",
            code="not_reserved",
            current_status=assignment.status,
        )
    if assignment.expires_at <= utcnow():
        raise Conflict("the reservation has expired; reserve the task again", code="reservation_expired")
    return assignment, campaign


def create_upload(
    session: Session,
    storage: ObjectStorage,
    settings: Settings,
    *,
    worker_id: uuid.UUID,
    assignment_id: uuid.UUID,
    content_type: str,
    size_bytes: int,
) -> tuple[Photo, UploadInstruction]:
    content_type = content_type.split(";")[0].strip().lower()
    if content_type not in settings.photo_types:
        accepted = ", ".join(settings.photo_types)
        raise Unprocessable(
            f"photos are accepted as {accepted}, not {content_type}",
            code="unsupported_photo_type",
            errors=[{"field": "content_type", "message": f"one of {accepted}", "source": "body"}],
        )
    if size_bytes > settings.photo_max_bytes:
        raise Unprocessable(
            f"a photo may be at most {settings.photo_max_bytes} bytes",
            code="photo_too_large",
            errors=[
                {"field": "size_bytes", "message": f"at most {settings.photo_max_bytes}", "source": "body"}
            ],
        )
    # The assignment row is locked: two uploads asked at once cannot both take the last place.
    assignment, campaign = live_reservation(session, worker_id, assignment_id)
    held = session.exec(
        select(func.count()).select_from(Photo).where(Photo.assignment_id == assignment.id)
    ).one()
    if held >= campaign.max_photos:
        raise Conflict(
            f"this task takes at most {campaign.max_photos} photos; delete one to upload another",
            code="photo_limit_reached",
            limit=campaign.max_photos,
        )
    photo_id = uuid.uuid4()
    extension = EXTENSIONS.get(content_type) or (mimetypes.guess_extension(content_type) or ".bin").lstrip(
        "."
    )
    photo = Photo(
        id=photo_id,
        assignment_id=assignment.id,
        worker_id=worker_id,
        storage_key=f"photos/{assignment.id}/{photo_id}/original.{extension}",
        declared_type=content_type,
        declared_bytes=size_bytes,
    )
    session.add(photo)
    instruction = storage.presign_upload(
        photo.storage_key,
        content_type=content_type,
        max_bytes=settings.photo_max_bytes,
        expires_s=settings.signed_url_ttl_s,
    )
    return photo, instruction


def delete_unsubmitted(
    session: Session, *, worker_id: uuid.UUID, assignment_id: uuid.UUID, photo_id: uuid.UUID
) -> None:
    live_reservation(session, worker_id, assignment_id)
    photo = session.exec(
        select(Photo).where(
            Photo.id == photo_id, Photo.assignment_id == assignment_id, Photo.worker_id == worker_id
        )
    ).first()
    if photo is None:
        raise NotFound("no such photo", code="photo_not_found")
    if photo.status != PhotoStatus.awaiting_upload.value:
        raise Conflict("a submitted photo stays with its submission", code="photo_submitted")
    session.delete(photo)
    # The object goes once the row is gone for good: after the commit.
    enqueue(session, "photos.delete_object", key=photo.storage_key)


def photos_of(session: Session, assignment_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Photo]]:
    grouped: dict[uuid.UUID, list[Photo]] = {i: [] for i in assignment_ids}
    if assignment_ids:
        for photo in session.exec(
            select(Photo)
            .where(
                col(Photo.assignment_id).in_(assignment_ids),
                Photo.status != PhotoStatus.awaiting_upload.value,
            )
            .order_by(col(Photo.created_at), col(Photo.id))
        ).all():
            grouped[photo.assignment_id].append(photo)
    return grouped
