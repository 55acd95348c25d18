from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, SkipValidation
from sqlmodel import Session

from fieldcheck.auth.models import Role
from fieldcheck.auth.security import BEARER_SECURITY, Principal, requires
from fieldcheck.exports import service
from fieldcheck.exports.schemas import ExportIn, ExportOut
from fieldcheck.exports.views import export_out
from fieldcheck.ratelimit import Throttle, caller_address
from fieldcheck.settings import Settings
from fieldcheck.storage import ObjectStorage
from fieldcheck.web import DEFAULT_PAGE_LIMIT, Page, PageCursor, PageLimit, get, post


class CampaignExportController(Controller):
    path = "/api/v1/campaigns/{campaign_id:uuid}"
    tags = ["audits"]
    guards = [requires(Role.client)]
    security = BEARER_SECURITY

    @post(
        "/exports",
        status_code=202,
        summary="Build an export (csv, zip or report) in the background",
        description="Answers at once with the export to poll at /api/v1/exports/{id}. While an export of "
        "the same format is queued or running, that one is returned instead of a second.",
    )
    def create_export(
        self,
        request: Request[Any, Any, Any],
        throttle: NamedDependency[SkipValidation[Throttle]],
        campaign_id: FromPath[uuid.UUID],
        data: JSONBody[ExportIn],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        storage: NamedDependency[SkipValidation[ObjectStorage]],
        settings: NamedDependency[Settings],
    ) -> ExportOut:
        throttle.check("exports", account=principal.user_id, address=caller_address(request))
        export = service.request_export(
            db_session,
            organization_id=principal.require_organization(),
            user_id=principal.user_id,
            campaign_id=campaign_id,
            format=data.format,
        )
        return export_out(export, storage, settings)

    @get("/exports", summary="The campaign's exports, newest first")
    def list_exports(
        self,
        campaign_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        storage: NamedDependency[SkipValidation[ObjectStorage]],
        settings: NamedDependency[Settings],
        limit: PageLimit = DEFAULT_PAGE_LIMIT,
        cursor: PageCursor = None,
    ) -> Page[ExportOut]:
        exports, next_cursor = service.list_exports(
            db_session, principal.require_organization(), campaign_id, limit=limit, cursor=cursor
        )
        return Page[ExportOut](
            items=[export_out(e, storage, settings) for e in exports], next_cursor=next_cursor
        )


class ExportController(Controller):
    path = "/api/v1/exports"
    tags = ["audits"]
    guards = [requires(Role.client)]
    security = BEARER_SECURITY

    @get("/{export_id:uuid}", summary="An export's status, progress and, when done, its download URL")
    def get_one(
        self,
        export_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        storage: NamedDependency[SkipValidation[ObjectStorage]],
        settings: NamedDependency[Settings],
    ) -> ExportOut:
        return export_out(
            service.get_export(db_session, principal.require_organization(), export_id), storage, settings
        )
