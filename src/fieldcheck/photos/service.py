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

from fieldcheck.db import utcnow
from fieldcheck.errors import Conflict, NotFound, Unprocessable, field_error
from fieldcheck.i18n import _, text
from fieldcheck.jobs import enqueue
from fieldcheck.photos.models import CheckStatus, Photo, PhotoStatus
from fieldcheck.settings import Settings
from fieldcheck.storage import ObjectStorage, UploadInstruction

EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/heic": "heic", "image/heif": "heic"}
DELETE_OBJECT_JOB = "photos.delete_object"
# An upload still in flight when its instruction expires may finish a little later.
UPLOAD_GRACE_S = 300
# Instant checks take about a second; pending this long, their job was lost (asked again then).
STALE_CHECK = timedelta(minutes=2)


def accepted_type(content_type: str, size_bytes: int, settings: Settings) -> str:
    """The normalized content type of an upload the phone announces; 422 when refused."""
    content_type = content_type.split(";")[0].strip().lower()
    if content_type not in settings.photo_types:
        accepted = ", ".join(settings.photo_types)
        raise Unprocessable(
            text(_("photos are accepted as {accepted}, not {given}"), accepted=accepted, given=content_type),
            code="unsupported_photo_type",
            errors=[field_error("content_type", text(_("one of {accepted}"), accepted=accepted))],
        )
    if size_bytes > settings.photo_max_bytes:
        raise Unprocessable(
            text(_("a photo may be at most {limit} bytes"), limit=settings.photo_max_bytes),
            code="photo_too_large",
            errors=[field_error("size_bytes", text(_("at most {limit}"), limit=settings.photo_max_bytes))],
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
            text(_("this task takes at most {limit} photos; delete one to upload another"), limit=limit),
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
    if photo.early_etag is not None and photo.early_etag != info.etag:
        forget_early_checks(photo)  # they were made on other bytes: the submission measures again
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


def upload_finished(
    session: Session, storage: ObjectStorage, settings: Settings, photo: Photo, *, job: str
) -> bool:
    """The phone says the photo's upload finished: queue its instant checks (`job`) unless they
    already ran or run on this very object. True when a check was queued now."""
    if photo.status != PhotoStatus.awaiting_upload.value:
        raise Conflict(text(_("a submitted photo stays with its submission")), code="photo_submitted")
    info = storage.head(photo.storage_key)
    if info is None or info.size == 0:
        raise Unprocessable(
            text(_("the photo has not arrived in storage yet: upload it, then say so again")),
            code="photo_not_uploaded",
            photo_ids=[str(photo.id)],
        )
    if info.size > settings.photo_max_bytes:
        raise Unprocessable(
            text(_("the photo is larger than {limit} bytes"), limit=settings.photo_max_bytes),
            code="photo_too_large",
            photo_ids=[str(photo.id)],
        )
    if info.size != photo.declared_bytes:
        raise Unprocessable(
            text(_("the photo in storage is not the size announced for it: delete it and upload again")),
            code="photo_size_mismatch",
            photo_ids=[str(photo.id)],
        )
    same_object = photo.early_etag == info.etag
    if same_object and photo.check_status == CheckStatus.checked.value:
        return False  # a repeated call (a phone retrying): the checks are there
    if (
        same_object
        and photo.check_status == CheckStatus.pending.value
        and photo.check_requested_at is not None
        and utcnow() - photo.check_requested_at < STALE_CHECK
    ):
        return False  # on their way
    # New, failed, or pending for so long that its job was lost: the checks are asked for (again).
    forget_early_checks(photo)
    photo.check_status = CheckStatus.pending.value
    photo.early_etag = info.etag
    photo.check_requested_at = utcnow()
    session.add(photo)
    enqueue(session, job, photo_id=str(photo.id))
    return True


def forget_early_checks(photo: Photo) -> None:
    """Drop the instant checks' results (their derivatives stay until the photo's objects go)."""
    photo.check_status = None
    photo.early_etag = None
    photo.early_checks = None
    photo.early_report = None
    photo.early_checked_at = None
    photo.early_started_at = None


def get_for_worker(
    session: Session,
    *,
    worker_id: uuid.UUID,
    assignment_id: uuid.UUID,
    photo_id: uuid.UUID,
    lock: bool = False,
) -> Photo:
    """One of the worker's photos of one of their assignments (someone else's is not found)."""
    query = select(Photo).where(
        Photo.id == photo_id, Photo.assignment_id == assignment_id, Photo.worker_id == worker_id
    )
    photo = session.exec(query.with_for_update() if lock else query).first()
    if photo is None:
        raise NotFound(text(_("no such photo")), code="photo_not_found")
    return photo


def delete_unsubmitted(
    session: Session, *, worker_id: uuid.UUID, assignment_id: uuid.UUID, photo_id: uuid.UUID
) -> None:
    photo = get_for_worker(session, worker_id=worker_id, assignment_id=assignment_id, photo_id=photo_id)
    if photo.status != PhotoStatus.awaiting_upload.value:
        raise Conflict(text(_("a submitted photo stays with its submission")), code="photo_submitted")
    session.delete(photo)
    # The objects go once the row is gone for good: after the commit. (An instant check still
    # running finds the row gone and deletes what it made itself.)
    for key in (photo.storage_key, photo.frozen_key, photo.thumbnail_key, photo.safe_key):
        if key:
            enqueue(session, DELETE_OBJECT_JOB, key=key)


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
