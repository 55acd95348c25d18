from __future__ import annotations

import uuid

from litestar import Controller
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, SkipValidation
from sqlmodel import Session

from fieldcheck.auth.models import Role
from fieldcheck.auth.security import BEARER_SECURITY, Principal, requires
from fieldcheck.campaigns.service import get_campaign
from fieldcheck.results import views
from fieldcheck.results.schemas import ResultsPage
from fieldcheck.settings import Settings
from fieldcheck.storage import ObjectStorage
from fieldcheck.web import DEFAULT_PAGE_LIMIT, PageCursor, PageLimit, get


class CampaignResultsController(Controller):
    path = "/api/v1/campaigns/{campaign_id:uuid}/results"
    tags = ["audits"]
    guards = [requires(Role.client)]
    security = BEARER_SECURITY

    @get(
        "/",
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
        limit: PageLimit = DEFAULT_PAGE_LIMIT,
        cursor: PageCursor = None,
    ) -> ResultsPage:
        campaign = get_campaign(db_session, principal.require_organization(), campaign_id)
        rows, next_cursor = views.page(
            db_session,
            campaign,
            statuses=views.parse_statuses(status),
            store_id=store_id,
            limit=limit,
            cursor=cursor,
        )
        return ResultsPage(
            items=[views.result_out(r, storage, settings) for r in rows],
            next_cursor=next_cursor,
            summary=views.summary_out(views.summary(db_session, campaign)),
        )
