from __future__ import annotations

from typing import Any

import anyio
from litestar import Controller, Request
from litestar.di import NamedDependency
from litestar.params import JSONBody
from sqlmodel import Session

from fieldcheck.auth.models import Role
from fieldcheck.auth.security import BEARER_SECURITY, Principal, requires
from fieldcheck.errors import BadRequest, UnsupportedMediaType
from fieldcheck.i18n import _, text
from fieldcheck.settings import Settings
from fieldcheck.stores import service
from fieldcheck.stores.schemas import StoreCreate, StoreImportResult, StoreOut
from fieldcheck.web import DEFAULT_PAGE_LIMIT, Page, PageCursor, PageLimit, get, post, spool_body

CSV_TYPES = ("text/csv", "application/csv", "text/plain", "application/vnd.ms-excel")


def store_out(store: Any) -> StoreOut:
    return StoreOut.model_validate(store, from_attributes=True)


class StoreController(Controller):
    path = "/api/v1/stores"
    tags = ["stores"]
    guards = [requires(Role.client)]
    security = BEARER_SECURITY

    @post("/", summary="Create a store")
    def create(
        self,
        data: JSONBody[StoreCreate],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
    ) -> StoreOut:
        return store_out(service.create_store(db_session, principal.require_organization(), data))

    @get("/", summary="The organization's stores, oldest first")
    def list_stores(
        self,
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        limit: PageLimit = DEFAULT_PAGE_LIMIT,
        cursor: PageCursor = None,
    ) -> Page[StoreOut]:
        stores, next_cursor = service.list_stores(
            db_session, principal.require_organization(), limit=limit, cursor=cursor
        )
        return Page[StoreOut](items=[store_out(s) for s in stores], next_cursor=next_cursor)

    @post(
        "/import",
        summary="Create or update stores from a CSV file (all or nothing)",
        description=(
            "Body: the CSV itself (Content-Type text/csv) or a multipart form with one file. Header: "
            "external_ref,name,address,lat,lon[,geofence_m]; UTF-8, comma or semicolon separated. Stores "
            "whose external_ref exists are updated. Any bad line gives 422 listing every bad line, and "
            "nothing is imported."
        ),
        status_code=200,
        request_max_body_size=None,
    )
    async def import_csv(
        self,
        request: Request[Any, Any, Any],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> StoreImportResult:
        organization_id = principal.require_organization()
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "multipart/form-data":
            form = await request.form()
            uploads = [v for v in form.values() if hasattr(v, "file")]
            if len(uploads) != 1:
                raise BadRequest(text(_("send exactly one file in the form")), code="one_file_expected")
            body = uploads[0].file
        elif content_type in CSV_TYPES:
            body = await spool_body(request, settings.store_import_max_bytes)
        else:
            raise UnsupportedMediaType(
                text(_("send the CSV as text/csv, or as one file in a multipart form"))
            )
        try:
            created, updated = await anyio.to_thread.run_sync(
                lambda: service.import_stores(
                    db_session, organization_id, body, max_rows=settings.store_import_max_rows
                )
            )
        finally:
            body.close()
        return StoreImportResult(created=created, updated=updated)
