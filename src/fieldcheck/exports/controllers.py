from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, Parameter, SkipValidation
from sqlmodel import Session

from fieldcheck.auth.models import Role
from fieldcheck.auth.security import BEARER_SECURITY, Principal, requires
from fieldcheck.campaigns.service import get_campaign
from fieldcheck.exports import results, service
from fieldcheck.exports.models import Export, ExportFormat, ExportStatus
from fieldcheck.exports.results import ResultRow, Summary
from fieldcheck.exports.schemas import (
    CheckSummaryOut,
    ExportIn,
    ExportOut,
    ResultDecisionOut,
    ResultOut,
    ResultPhotoOut,
    ResultsPage,
    ResultStoreOut,
    SummaryOut,
)
from fieldcheck.settings import Settings
from fieldcheck.storage import ObjectStorage
from fieldcheck.web import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, Page, get, post


def result_out(row: ResultRow, storage: ObjectStorage, settings: Settings) -> ResultOut:
    ttl = settings.signed_url_ttl_s
    counts = row.check_counts
    return ResultOut(
        assignment_id=row.assignment_id,
        task_id=row.task_id,
        store=ResultStoreOut(
            id=row.store.id,
            external_ref=row.store.external_ref,
            name=row.store.name,
            address=row.store.address,
            lat=row.store.lat,
            lon=row.store.lon,
        ),
        status=row.status,
        decision=ResultDecisionOut(
            outcome=row.decision.outcome,
            decided_by=row.decision.decided_by,
            reasons=row.decision.reasons,
            decided_at=row.decision.decided_at,
        )
        if row.decision
        else None,
        photos=[
            ResultPhotoOut(
                id=p.id,
                url=storage.presign_download(p.safe_key, expires_s=ttl),
                thumbnail_url=storage.presign_download(p.thumbnail_key, expires_s=ttl)
                if p.thumbnail_key
                else None,
                faces_blurred=p.faces_blurred,
            )
            for p in row.photos
            if p.safe_key
        ],
        check_summary=CheckSummaryOut(
            passed=counts.get("pass", 0),
            warned=counts.get("warn", 0),
            failed=counts.get("fail", 0),
            notes=[c.explanation for c in row.checks if c.outcome != "pass"],
        ),
        visited_at=row.visited_at,
        submitted_at=row.submitted_at,
        distance_m=row.distance_m,
    )


def summary_out(figures: Summary) -> SummaryOut:
    return SummaryOut(
        stores=figures.stores,
        slots_total=figures.slots_total,
        tasks_done=figures.tasks_done,
        submitted=figures.submitted,
        approved=figures.approved,
        rejected=figures.rejected,
        in_review=figures.in_review,
        reserved=figures.reserved,
        completion=round(figures.completion, 4),
        approval_rate=round(figures.approval_rate, 4) if figures.approval_rate is not None else None,
        currency=figures.currency,
        spent_cents=figures.spent_cents,
        escrow_left_cents=figures.escrow_left_cents,
    )


def export_out(export: Export, storage: ObjectStorage, settings: Settings) -> ExportOut:
    return ExportOut(
        id=export.id,
        campaign_id=export.campaign_id,
        format=ExportFormat(export.format),
        status=ExportStatus(export.status),
        progress=round(export.progress, 4),
        stage=export.stage,
        error=export.error,
        download_url=service.download_url(export, storage, settings),
        filename=export.filename,
        size_bytes=export.size_bytes,
        row_count=export.row_count,
        photo_count=export.photo_count,
        created_at=export.created_at,
        finished_at=export.finished_at,
        expires_at=export.expires_at,
    )


class CampaignAuditController(Controller):
    path = "/api/v1/campaigns/{campaign_id:uuid}"
    tags = ["audits"]
    guards = [requires(Role.client)]
    security = BEARER_SECURITY

    @get(
        "/results",
        summary="Results per assignment, with client-safe photos and a campaign summary",
        description="Filter with status (repeat it or separate with commas: submitted, in_review, "
        "approved, rejected, appealed) and store_id. Ordered by submission time.",
    )
    def results(
        self,
        campaign_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        storage: NamedDependency[SkipValidation[ObjectStorage]],
        settings: NamedDependency[Settings],
        status: FromQuery[list[str] | None] = None,
        store_id: FromQuery[uuid.UUID | None] = None,
        limit: Annotated[int, Parameter(ge=1, le=MAX_PAGE_LIMIT)] = DEFAULT_PAGE_LIMIT,
        cursor: Annotated[str | None, Parameter(max_length=500)] = None,
    ) -> ResultsPage:
        campaign = get_campaign(db_session, principal.require_organization(), campaign_id)
        rows, next_cursor = results.page(
            db_session,
            campaign,
            statuses=results.parse_statuses(status),
            store_id=store_id,
            limit=limit,
            cursor=cursor,
        )
        return ResultsPage(
            items=[result_out(r, storage, settings) for r in rows],
            next_cursor=next_cursor,
            summary=summary_out(results.summary(db_session, campaign)),
        )

    @post(
        "/exports",
        status_code=202,
        summary="Build an export (csv, zip or report) in the background",
        description="Answers at once with the export to poll at /api/v1/exports/{id}. While an export of "
        "the same format is queued or running, that one is returned instead of a second.",
    )
    def create_export(
        self,
        campaign_id: FromPath[uuid.UUID],
        data: JSONBody[ExportIn],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        storage: NamedDependency[SkipValidation[ObjectStorage]],
        settings: NamedDependency[Settings],
    ) -> ExportOut:
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
        limit: Annotated[int, Parameter(ge=1, le=MAX_PAGE_LIMIT)] = DEFAULT_PAGE_LIMIT,
        cursor: Annotated[str | None, Parameter(max_length=500)] = None,
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
