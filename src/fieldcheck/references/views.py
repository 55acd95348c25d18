"""A reference photo as the API shows it: signed, expiring links to its display copy and thumbnail."""

from __future__ import annotations

from fieldcheck.checks.models import ReferencePhoto, ReferenceStatus
from fieldcheck.references.schemas import ReferencePhotoOut
from fieldcheck.settings import Settings
from fieldcheck.storage import ObjectStorage


def reference_out(reference: ReferencePhoto, storage: ObjectStorage, settings: Settings) -> ReferencePhotoOut:
    ttl = settings.signed_url_ttl_s
    ready = reference.status == ReferenceStatus.ready.value
    return ReferencePhotoOut(
        id=reference.id,
        status=reference.status,
        problem=reference.problem,
        width=reference.width,
        height=reference.height,
        thumbnail_url=storage.presign_download(
            reference.thumbnail_key, expires_s=ttl, content_type="image/jpeg"
        )
        if ready and reference.thumbnail_key
        else None,
        url=storage.presign_download(reference.display_key, expires_s=ttl, content_type="image/jpeg")
        if ready and reference.thumbnail_key
        else None,
        created_at=reference.created_at,
    )
