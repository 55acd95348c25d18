from __future__ import annotations

import uuid

from litestar import Controller
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from sqlmodel import Session

from fieldcheck.auth.models import Role
from fieldcheck.auth.security import BEARER_SECURITY, Principal, requires
from fieldcheck.campaigns import service
from fieldcheck.campaigns.models import CampaignStatus
from fieldcheck.campaigns.schemas import CampaignCreate, CampaignOut, CampaignPayUpdate
from fieldcheck.campaigns.views import campaign_out
from fieldcheck.settings import Settings
from fieldcheck.tasks.service import store_counts
from fieldcheck.web import DEFAULT_PAGE_LIMIT, Page, PageCursor, PageLimit, get, patch, post


class CampaignController(Controller):
    path = "/api/v1/campaigns"
    tags = ["campaigns"]
    guards = [requires(Role.client)]
    security = BEARER_SECURITY

    @post("/", summary="Create a campaign (draft), one task per store")
    def create(
        self,
        data: JSONBody[CampaignCreate],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> CampaignOut:
        campaign = service.create_campaign(db_session, principal.require_organization(), data, settings)
        return campaign_out(campaign, len(set(data.store_ids)))

    @get("/", summary="The organization's campaigns, newest first")
    def list_campaigns(
        self,
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        status: FromQuery[CampaignStatus | None] = None,
        limit: PageLimit = DEFAULT_PAGE_LIMIT,
        cursor: PageCursor = None,
    ) -> Page[CampaignOut]:
        campaigns, next_cursor = service.list_campaigns(
            db_session,
            principal.require_organization(),
            status=status.value if status else None,
            limit=limit,
            cursor=cursor,
        )
        counts = store_counts(db_session, [c.id for c in campaigns])
        return Page[CampaignOut](
            items=[campaign_out(c, counts.get(c.id, 0)) for c in campaigns], next_cursor=next_cursor
        )

    @get("/{campaign_id:uuid}", summary="One campaign")
    def get_one(
        self,
        campaign_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
    ) -> CampaignOut:
        campaign = service.get_campaign(db_session, principal.require_organization(), campaign_id)
        return campaign_out(campaign, store_counts(db_session, [campaign.id]).get(campaign.id, 0))

    @patch(
        "/{campaign_id:uuid}",
        summary="Change the reward or the estimate",
        description="A draft takes any values. Once activated the reward only goes up (409 "
        "reward_cannot_decrease), the values must meet the pay floor (422 pay_below_floor) and escrow is "
        "topped up for every slot still owed (409 insufficient_funds); approved work not yet paid gets "
        "the new reward. A campaign the platform paused because its measured pay fell below the floor "
        "takes reservations again. 409 campaign_closed.",
    )
    def change_pay(
        self,
        campaign_id: FromPath[uuid.UUID],
        data: JSONBody[CampaignPayUpdate],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> CampaignOut:
        campaign = service.update_pay(
            db_session, principal.require_organization(), campaign_id, data, settings
        )
        return campaign_out(campaign, store_counts(db_session, [campaign.id]).get(campaign.id, 0))

    def _change(
        self,
        action: str,
        campaign_id: uuid.UUID,
        db_session: Session,
        principal: Principal,
        settings: Settings,
    ) -> CampaignOut:
        campaign = service.change_status(
            db_session, principal.require_organization(), campaign_id, action, settings
        )
        return campaign_out(campaign, store_counts(db_session, [campaign.id]).get(campaign.id, 0))

    @post(
        "/{campaign_id:uuid}/activate",
        status_code=200,
        summary="Activate: list the tasks to workers",
        description="422 pay_below_floor when the reward per hour of estimated work is under the floor; "
        "409 insufficient_funds when the organization cannot fund the campaign.",
    )
    def activate(
        self,
        campaign_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> CampaignOut:
        return self._change("activate", campaign_id, db_session, principal, settings)

    @post("/{campaign_id:uuid}/pause", status_code=200, summary="Pause: stop listing the tasks")
    def pause(
        self,
        campaign_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> CampaignOut:
        return self._change("pause", campaign_id, db_session, principal, settings)

    @post("/{campaign_id:uuid}/close", status_code=200, summary="Close for good")
    def close(
        self,
        campaign_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> CampaignOut:
        return self._change("close", campaign_id, db_session, principal, settings)
