"""Reference photos: what a client shows of the shelf it wants, compared with every worker photo.

Uploaded like workers' photos (a signed upload instruction, then the client says it is done); a
job reads the photo through the same gates as any photo, computes its local features once and
stores them, adds its hashes to the duplicate index (a worker who sends the client's own photo is
caught), and makes a display copy for reviewers.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func
from sqlmodel import Session, col, select

from fieldcheck.campaigns.models import Campaign
from fieldcheck.campaigns.service import get_campaign
from fieldcheck.checks.derivatives import SAFE_LONG_SIDE, make_derivatives
from fieldcheck.checks.duplicates import lock_for_duplicates
from fieldcheck.checks.models import PhotoHash, ReferencePhoto, ReferenceStatus
from fieldcheck.checks.photo import check_photo, reference_features_of
from fieldcheck.db import utcnow
from fieldcheck.errors import Conflict, NotFound
from fieldcheck.i18n import _, text
from fieldcheck.jobs import enqueue
from fieldcheck.photos.service import DELETE_OBJECT_JOB, accepted_type, extension_for
from fieldcheck.settings import Settings
from fieldcheck.storage import ObjectStorage, UploadInstruction

MAX_REFERENCES = 5
PROCESS_JOB = "references.process"


def create_upload(
    session: Session,
    storage: ObjectStorage,
    settings: Settings,
    *,
    organization_id: uuid.UUID,
    campaign_id: uuid.UUID,
    content_type: str,
    size_bytes: int,
) -> tuple[ReferencePhoto, UploadInstruction]:
    campaign = get_campaign(session, organization_id, campaign_id)
    content_type = accepted_type(content_type, size_bytes, settings)
    # One at a time per campaign: the count below cannot be raced past.
    session.exec(select(Campaign).where(Campaign.id == campaign.id).with_for_update()).first()
    held = session.exec(
        select(func.count())
        .select_from(ReferencePhoto)
        .where(
            ReferencePhoto.campaign_id == campaign.id,
            col(ReferencePhoto.deleted_at).is_(None),
            ReferencePhoto.status != ReferenceStatus.failed.value,
        )
    ).one()
    if held >= MAX_REFERENCES:
        raise Conflict(
            text(
                _("a campaign takes at most {limit} reference photos; delete one to add another"),
                limit=MAX_REFERENCES,
            ),
            code="reference_limit_reached",
            limit=MAX_REFERENCES,
        )
    reference_id = uuid.uuid4()
    extension = extension_for(content_type)
    reference = ReferencePhoto(
        id=reference_id,
        campaign_id=campaign.id,
        organization_id=organization_id,
        storage_key=f"references/{campaign.id}/{reference_id}/original.{extension}",
        declared_type=content_type,
        declared_bytes=size_bytes,
    )
    session.add(reference)
    instruction = storage.presign_upload(
        reference.storage_key,
        content_type=content_type,
        size_bytes=size_bytes,
        expires_s=settings.signed_url_ttl_s,
    )
    return reference, instruction


def get_reference(
    session: Session, organization_id: uuid.UUID, campaign_id: uuid.UUID, reference_id: uuid.UUID
) -> ReferencePhoto:
    reference = session.exec(
        select(ReferencePhoto).where(
            ReferencePhoto.id == reference_id,
            ReferencePhoto.campaign_id == campaign_id,
            ReferencePhoto.organization_id == organization_id,
            col(ReferencePhoto.deleted_at).is_(None),
        )
    ).first()
    if reference is None:
        raise NotFound(text(_("no such reference photo")), code="reference_not_found")
    return reference


def mark_uploaded(
    session: Session, organization_id: uuid.UUID, campaign_id: uuid.UUID, reference_id: uuid.UUID
) -> ReferencePhoto:
    """The client says the upload is done: the job reads it (again, if it failed before)."""
    reference = get_reference(session, organization_id, campaign_id, reference_id)
    if reference.status == ReferenceStatus.ready.value:
        return reference
    reference.status = ReferenceStatus.processing.value
    reference.problem = None
    session.add(reference)
    enqueue(session, PROCESS_JOB, reference_id=str(reference.id))
    return reference


def list_references(
    session: Session, organization_id: uuid.UUID, campaign_id: uuid.UUID
) -> list[ReferencePhoto]:
    campaign = get_campaign(session, organization_id, campaign_id)
    return list(
        session.exec(
            select(ReferencePhoto)
            .where(ReferencePhoto.campaign_id == campaign.id, col(ReferencePhoto.deleted_at).is_(None))
            .order_by(col(ReferencePhoto.created_at), col(ReferencePhoto.id))
        ).all()
    )


def delete_reference(
    session: Session, organization_id: uuid.UUID, campaign_id: uuid.UUID, reference_id: uuid.UUID
) -> None:
    """No longer compared with new photos. Its hashes stay in the duplicate index (it remains a
    photo nobody may submit as their own), so the row stays, marked deleted; the files go."""
    reference = get_reference(session, organization_id, campaign_id, reference_id)
    reference.deleted_at = utcnow()
    reference.features = None
    session.add(reference)
    for key in (reference.storage_key, reference.thumbnail_key, reference.display_key):
        if key:
            enqueue(session, DELETE_OBJECT_JOB, key=key)


def process(session: Session, storage: ObjectStorage, settings: Settings, reference_id: uuid.UUID) -> None:
    """Read the uploaded reference through the photo gates; store its features, hashes, copies."""
    reference = session.get(ReferencePhoto, reference_id)
    if reference is None or reference.deleted_at is not None:
        return
    if reference.status != ReferenceStatus.processing.value:
        return
    info = storage.head(reference.storage_key)
    problem: str | None = None
    features = None
    if info is None or info.size == 0:
        problem = "The file was not uploaded (or is empty): upload it again, then confirm."
    elif info.size > settings.photo_max_bytes:
        problem = f"The file is larger than photos may be ({settings.photo_max_bytes} bytes)."
    if problem is None:
        data = storage.get_bytes(reference.storage_key)
        report = check_photo(
            data,
            min_short_side_px=0,
            max_bytes=settings.photo_max_bytes,
            references=(),
            colour_long_side=SAFE_LONG_SIDE,
        )
        features, problem = reference_features_of(report)
    if problem is not None or features is None:
        reference.status, reference.problem = ReferenceStatus.failed.value, problem
        reference.checked_at = utcnow()
        session.add(reference)
        return
    if report.width and report.height and report.detected_type:
        try:
            derived = make_derivatives(
                data,
                width=report.width,
                height=report.height,
                orientation=report.orientation,
                detected_type=report.detected_type,
                progressive=bool(report.measurements.get("progressive")),
                decoded=report.colour,
            )
        except ValueError:
            pass
        else:
            thumbnail = f"{reference.storage_key.rsplit('/', 1)[0]}/thumbnail.jpg"
            storage.put(thumbnail, derived.thumbnail, content_type="image/jpeg")
            storage.put(reference.display_key, derived.safe, content_type="image/jpeg")
            reference.thumbnail_key = thumbnail
    reference.status, reference.problem = ReferenceStatus.ready.value, None
    reference.detected_type, reference.width, reference.height = (
        report.detected_type,
        report.width,
        report.height,
    )
    reference.sha256 = report.sha256
    reference.features = features.to_bytes()
    reference.checked_at = utcnow()
    session.add(reference)
    if report.phash is not None and report.dhash is not None and report.fingerprint:
        lock_for_duplicates(session)  # the index is appended in the order check jobs read it
        exists = session.exec(select(PhotoHash.seq).where(PhotoHash.reference_id == reference.id)).first()
        if exists is None:
            session.add(
                PhotoHash(
                    reference_id=reference.id,
                    phash=report.phash,
                    dhash=report.dhash,
                    fingerprint=report.fingerprint,
                )
            )
