"""A worker's own photo as the API shows it: signed, expiring links to it and its thumbnail."""

from __future__ import annotations

from fieldcheck.photos.models import Photo
from fieldcheck.photos.schemas import PhotoOut
from fieldcheck.settings import Settings
from fieldcheck.storage import ObjectStorage


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
        url=storage.presign_download(photo.content_key, expires_s=ttl, content_type=photo.served_type),
    )
