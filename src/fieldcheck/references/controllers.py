from __future__ import annotations

import uuid

from litestar import Controller
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, SkipValidation
from sqlmodel import Session

from fieldcheck.auth.models import Role
from fieldcheck.auth.security import BEARER_SECURITY, Principal, requires
from fieldcheck.photos.schemas import PhotoUploadIn, PhotoUploadOut
from fieldcheck.photos.views import upload_out
from fieldcheck.references import service
from fieldcheck.references.schemas import ReferencePhotoOut
from fieldcheck.references.views import reference_out
from fieldcheck.settings import Settings
from fieldcheck.storage import ObjectStorage
from fieldcheck.web import delete, get, post


class ReferencePhotoController(Controller):
    path = "/api/v1/campaigns/{campaign_id:uuid}/reference-photos"
    tags = ["campaigns"]
    guards = [requires(Role.client)]
    security = BEARER_SECURITY

    @post(
        "/",
        summary="Attach a reference photo of the shelf (1 to 5 a campaign): an upload instruction",
        description="Upload the file as the instruction says, then confirm with `.../{photo_id}/uploaded`. "
        "409 reference_limit_reached at 5; 422 unsupported_photo_type, photo_too_large.",
    )
    def create(
        self,
        campaign_id: FromPath[uuid.UUID],
        data: JSONBody[PhotoUploadIn],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        storage: NamedDependency[SkipValidation[ObjectStorage]],
        settings: NamedDependency[Settings],
    ) -> PhotoUploadOut:
        reference, instruction = service.create_upload(
            db_session,
            storage,
            settings,
            organization_id=principal.require_organization(),
            campaign_id=campaign_id,
            content_type=data.content_type,
            size_bytes=data.size_bytes,
        )
        return upload_out(reference.id, instruction)

    @post(
        "/{photo_id:uuid}/uploaded",
        status_code=202,
        summary="The upload is done: the reference is read and its features computed",
        description="Poll the list: `ready`, or `failed` with the `problem` (not an image, too small...).",
    )
    def uploaded(
        self,
        campaign_id: FromPath[uuid.UUID],
        photo_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        storage: NamedDependency[SkipValidation[ObjectStorage]],
        settings: NamedDependency[Settings],
    ) -> ReferencePhotoOut:
        reference = service.mark_uploaded(db_session, principal.require_organization(), campaign_id, photo_id)
        return reference_out(reference, storage, settings)

    @get("/", summary="The campaign's reference photos")
    def list_references(
        self,
        campaign_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        storage: NamedDependency[SkipValidation[ObjectStorage]],
        settings: NamedDependency[Settings],
    ) -> list[ReferencePhotoOut]:
        found = service.list_references(db_session, principal.require_organization(), campaign_id)
        return [reference_out(r, storage, settings) for r in found]

    @delete("/{photo_id:uuid}", summary="Stop comparing photos with this reference", status_code=204)
    def remove(
        self,
        campaign_id: FromPath[uuid.UUID],
        photo_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
    ) -> None:
        service.delete_reference(db_session, principal.require_organization(), campaign_id, photo_id)
