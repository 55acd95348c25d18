from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request
from litestar.di import NamedDependency
from litestar.params import FromPath, SkipValidation
from sqlmodel import Session

from fieldcheck.auth.models import Role
from fieldcheck.auth.security import BEARER_SECURITY, Principal, requires
from fieldcheck.i18n import language_var
from fieldcheck.privacy import export as service
from fieldcheck.privacy.schemas import DataExportOut
from fieldcheck.privacy.views import data_export_out
from fieldcheck.ratelimit import Throttle, caller_address
from fieldcheck.settings import Settings
from fieldcheck.storage import ObjectStorage
from fieldcheck.web import DEFAULT_PAGE_LIMIT, Page, PageCursor, PageLimit, get, post


class DataExportController(Controller):
    """A worker's own data, in one ZIP (GDPR Arts. 15 and 20)."""

    path = "/api/v1/me"
    tags = ["workers"]
    guards = [requires(Role.worker)]
    security = BEARER_SECURITY

    @post(
        "/export",
        status_code=202,
        summary="Build a ZIP of everything fieldcheck holds about me",
        description="Answers at once with the export to poll at /api/v1/me/exports/{id}: account, "
        "assignments, photos as sent, checks, decisions, appeals, statements, ledger entries and payouts, "
        "as JSON with a README, the texts in the language of Accept-Language. While an export is queued or "
        "running, or one finished in the last ten minutes, that one is the answer: asked twice, built once.",
    )
    def request_export(
        self,
        request: Request[Any, Any, Any],
        throttle: NamedDependency[SkipValidation[Throttle]],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        storage: NamedDependency[SkipValidation[ObjectStorage]],
        settings: NamedDependency[Settings],
    ) -> DataExportOut:
        throttle.check("exports", account=principal.user_id, address=caller_address(request))
        export = service.request_export(db_session, user_id=principal.user_id, language=language_var.get())
        return data_export_out(export, storage, settings)

    @get("/exports", summary="My data exports, newest first")
    def list_exports(
        self,
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        storage: NamedDependency[SkipValidation[ObjectStorage]],
        settings: NamedDependency[Settings],
        limit: PageLimit = DEFAULT_PAGE_LIMIT,
        cursor: PageCursor = None,
    ) -> Page[DataExportOut]:
        exports, next_cursor = service.list_exports(db_session, principal.user_id, limit=limit, cursor=cursor)
        return Page[DataExportOut](
            items=[data_export_out(e, storage, settings) for e in exports], next_cursor=next_cursor
        )

    @get(
        "/exports/{export_id:uuid}",
        summary="My data export: status, progress and, when done, a download link that expires",
    )
    def get_export(
        self,
        export_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        storage: NamedDependency[SkipValidation[ObjectStorage]],
        settings: NamedDependency[Settings],
    ) -> DataExportOut:
        return data_export_out(
            service.get_export(db_session, principal.user_id, export_id), storage, settings
        )
