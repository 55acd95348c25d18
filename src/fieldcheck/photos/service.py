"""Photos: upload instructions handed to phones, and the places they take in a submission.

This domain knows photos and storage; whether the assignment they belong to may take one more is
the assignments domain's rule (it locks the assignment, then asks here).
"""

from __future__ import annotations

import mimetypes
import uuid
from datetime import timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from fieldcheck.errors import Conflict, NotFound, Unprocessable, field_error
from fieldcheck.jobs import enqueue
from fieldcheck.photos.models import Photo, PhotoStatus
from fieldcheck.settings import Settings
from fieldcheck.storage import ObjectStorage, UploadInstruction

EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/heic": "heic", "image/heif": "heic"}
DELETE_OBJECT_JOB = "photos.delete_object"
# An upload still in flight when its instruction expires may finish a little later.
UPLOAD_GRACE_S = 300


def accepted_type(content_type: str, size_bytes: int, settings: Settings) -> str:
    """The normalized content type of an upload the phone announces; 422 when refused."""
    content_type = content_type.split(";")[0].strip().lower()
    if content_type not in settings.photo_types:
        accepted = ", ".join(settings.photo_types)
        raise Unprocessable(
            f"photos are accepted as {accepted}, not {content_type}",
            code="unsupported_photo_type",
            errors=[field_error("content_type", f"one of {accepted}")],
        )
    if size_bytes > settings.photo_max_bytes:
        raise Unprocessable(
            f"a photo may be at most {settings.photo_max_bytes} bytes",
            code="photo_too_large",
            errors=[field_error("size_bytes", f"at most {settings.photo_max_bytes}")],
        )
    return content_type


def extension_for(content_type: str) -> str:
    """The file name extension a stored upload gets (the real type is read from its bytes)."""
    return EXTENSIONS.get(content_type) or (mimetypes.guess_extension(content_type) or ".bin").lstrip(".")


def create_upload(
    session: Session,
    storage: ObjectStorage,
    settings: Settings,
    *,
    assignment_id: uuid.UUID,
    worker_id: uuid.UUID,
    content_type: str,
    size_bytes: int,
    limit: int,
) -> tuple[Photo, UploadInstruction]:
    """A new photo of the assignment (at most `limit` of them) and its signed upload instruction."""
    held = session.exec(
        select(func.count()).select_from(Photo).where(Photo.assignment_id == assignment_id)
    ).one()
    if held >= limit:
        raise Conflict(
            f"this task takes at most {limit} photos; delete one to upload another",
            code="photo_limit_reached",
            limit=limit,
        )
    photo_id = uuid.uuid4()
    extension = extension_for(content_type)
    photo = Photo(
        id=photo_id,
        assignment_id=assignment_id,
        worker_id=worker_id,
        storage_key=f"photos/{assignment_id}/{photo_id}/original.{extension}",
        declared_type=content_type,
        declared_bytes=size_bytes,
    )
    session.add(photo)
    instruction = storage.presign_upload(
        photo.storage_key,
        content_type=content_type,
        size_bytes=size_bytes,
        expires_s=settings.signed_url_ttl_s,
    )
    return photo, instruction


def frozen_key_of(photo: Photo) -> str:
    base, _, name = photo.storage_key.rpartition("/")
    return f"{base}/submitted.{name.rpartition('.')[2]}"


def freeze(session: Session, storage: ObjectStorage, settings: Settings, photo: Photo) -> str | None:
    """Copy the uploaded photo to a key no worker can write, as it is now; the checks, reviewers
    and clients read only that copy. None, with the reason, when it cannot be frozen as announced.

    The upload itself stays until its instruction has expired (a second upload to it is refused
    meanwhile), then goes.
    """
    info = storage.head(photo.storage_key)
    if info is None or info.size == 0:
        return "missing"
    if info.size > settings.photo_max_bytes:
        return "too_large"
    if info.size != photo.declared_bytes or info.etag is None:
        return "size_mismatch"
    frozen = storage.copy(
        photo.storage_key, frozen_key_of(photo), if_etag=info.etag, content_type=photo.declared_type
    )
    if frozen is None or frozen.size != info.size:
        return "changed"
    photo.frozen_key = frozen.key
    photo.stored_bytes, photo.stored_etag = frozen.size, frozen.etag
    enqueue(
        session,
        DELETE_OBJECT_JOB,
        delay=timedelta(seconds=settings.signed_url_ttl_s + UPLOAD_GRACE_S),
        key=photo.storage_key,
    )
    return None


def delete_unsubmitted(
    session: Session, *, worker_id: uuid.UUID, assignment_id: uuid.UUID, photo_id: uuid.UUID
) -> None:
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
    enqueue(session, DELETE_OBJECT_JOB, key=photo.storage_key)
    if photo.frozen_key:
        enqueue(session, DELETE_OBJECT_JOB, key=photo.frozen_key)


def photos_of(session: Session, assignment_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Photo]]:
    """The delivered photos of each assignment, in the order they were asked for."""
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
