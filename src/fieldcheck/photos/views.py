"""A photo as the API shows it: signed, expiring links to it and its thumbnail; and the upload
instruction handed out for one (a worker's photo, a client's reference photo)."""

from __future__ import annotations

import uuid

from fieldcheck.photos.models import Photo
from fieldcheck.photos.schemas import PhotoOut, PhotoUploadOut, UploadOut
from fieldcheck.settings import Settings
from fieldcheck.storage import ObjectStorage, UploadInstruction


def photo_out(photo: Photo, storage: ObjectStorage, settings: Settings) -> PhotoOut:
    ttl = settings.signed_url_ttl_s
    return PhotoOut(
        id=photo.id,
        status=photo.status,
        width=photo.width,
        height=photo.height,
        thumbnail_url=storage.presign_download(photo.thumbnail_key, expires_s=ttl, content_type="image/jpeg")
        if photo.thumbnail_key
        else None,
        url=storage.presign_download(photo.content_key, expires_s=ttl, content_type=photo.content_type)
        if photo.content_key
        else None,
        originals_removed_at=photo.originals_removed_at,
    )


def upload_out(photo_id: uuid.UUID, instruction: UploadInstruction) -> PhotoUploadOut:
    return PhotoUploadOut(
        photo_id=photo_id,
        upload=UploadOut(
            method=instruction.method,
            url=instruction.url,
            headers=instruction.headers,
            fields=instruction.fields,
            expires_at=instruction.expires_at,
        ),
    )
