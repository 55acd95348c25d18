"""Campaigns: created as drafts with one task per store, then activated, paused and closed."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, insert
from sqlmodel import Session, col, select, update

from fieldcheck.campaigns import funding
from fieldcheck.campaigns.models import Campaign, CampaignStatus
from fieldcheck.campaigns.schemas import CampaignCreate
from fieldcheck.db import utcnow
from fieldcheck.errors import Conflict, NotFound, Unprocessable
from fieldcheck.geo import lat_band
from fieldcheck.pagination import paginate
from fieldcheck.settings import Settings
from fieldcheck.stores.models import Store
from fieldcheck.tasks.models import Task
from fieldcheck.webhooks import events

LOOKUP_CHUNK = 1000
SHOWN_UNKNOWN_IDS = 20

# Which transitions each action allows, and whether the campaign lists its tasks afterwards.
TRANSITIONS: dict[str, tuple[frozenset[CampaignStatus], CampaignStatus, bool]] = {
    "activate": (frozenset({CampaignStatus.draft, CampaignStatus.paused}), CampaignStatus.active, True),
    "pause": (frozenset({CampaignStatus.active}), CampaignStatus.paused, False),
    "close": (
        frozenset({CampaignStatus.draft, CampaignStatus.active, CampaignStatus.paused}),
        CampaignStatus.closed,
        False,
    ),
}


def hourly_rate_cents(reward_cents: int, estimated_minutes: int) -> int:
    return reward_cents * 60 // estimated_minutes


def _chunks(items: list[uuid.UUID], size: int) -> Iterable[list[uuid.UUID]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def create_campaign(
    session: Session, organization_id: uuid.UUID, data: CampaignCreate, settings: Settings
) -> Campaign:
    if data.currency not in settings.pay_floor_cents_per_hour:
        accepted = ", ".join(sorted(settings.pay_floor_cents_per_hour))
        raise Unprocessable(
            f"campaigns are paid in {accepted}; {data.currency} is not accepted",
            code="unsupported_currency",
            errors=[{"field": "currency", "message": f"one of {accepted}", "source": "body"}],
        )
    store_ids = list(dict.fromkeys(data.store_ids))
    if len(store_ids) > settings.campaign_max_stores:
        raise Unprocessable(
            f"a campaign covers at most {settings.campaign_max_stores} stores",
            code="too_many_stores",
        )
    stores: dict[uuid.UUID, tuple[float, float]] = {}
    for chunk in _chunks(store_ids, LOOKUP_CHUNK):
        rows = session.exec(
            select(Store.id, Store.lat, Store.lon).where(
                Store.organization_id == organization_id, col(Store.id).in_(chunk)
            )
        ).all()
        stores.update({store_id: (lat, lon) for store_id, lat, lon in rows})
    unknown = [str(i) for i in store_ids if i not in stores]
    if unknown:
        raise Unprocessable(
            f"{len(unknown)} store id(s) are not stores of your organization",
            code="unknown_stores",
            unknown_store_ids=unknown[:SHOWN_UNKNOWN_IDS],
            errors=[{"field": "store_ids", "message": "unknown store ids", "source": "body"}],
        )
    rules = data.photo_rules
    campaign = Campaign(
        organization_id=organization_id,
        title=data.title,
        instructions=data.instructions,
        reward_cents=data.reward_cents,
        currency=data.currency,
        estimated_minutes=data.estimated_minutes,
        slots_per_store=data.slots_per_store,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        reservation_minutes=data.reservation_minutes,
        review_deadline_hours=data.review_deadline_hours,
        min_photos=rules.min_photos,
        max_photos=rules.max_photos,
        min_short_side_px=rules.min_short_side_px,
        review_all=data.review_all,
        audit_sample_percent=data.audit_sample_percent,
    )
    session.add(campaign)
    session.flush()
    now = utcnow()
    task_rows = [
        {
            "id": uuid.uuid4(),
            "campaign_id": campaign.id,
            "store_id": store_id,
            "organization_id": organization_id,
            "lat": lat,
            "lon": lon,
            "lat_band": lat_band(lat),
            "slots_total": data.slots_per_store,
            "slots_taken": 0,
            "is_open": False,
            "starts_at": data.starts_at,
            "ends_at": data.ends_at,
            "created_at": now,
        }
        for store_id, (lat, lon) in stores.items()
    ]
    for start in range(0, len(task_rows), LOOKUP_CHUNK):
        session.connection().execute(insert(Task), task_rows[start : start + LOOKUP_CHUNK])
    return campaign


def get_campaign(session: Session, organization_id: uuid.UUID, campaign_id: uuid.UUID) -> Campaign:
    campaign = session.exec(
        select(Campaign).where(Campaign.id == campaign_id, Campaign.organization_id == organization_id)
    ).first()
    if campaign is None:
        raise NotFound("no such campaign", code="campaign_not_found")
    return campaign


def list_campaigns(
    session: Session, organization_id: uuid.UUID, *, status: str | None, limit: int, cursor: str | None
) -> tuple[list[Campaign], str | None]:
    query = select(Campaign).where(Campaign.organization_id == organization_id)
    if status:
        query = query.where(Campaign.status == status)
    return paginate(
        session,
        query,
        time_column=col(Campaign.created_at),
        id_column=col(Campaign.id),
        limit=limit,
        cursor=cursor,
        newest_first=True,
    )


def store_counts(session: Session, campaign_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    if not campaign_ids:
        return {}
    rows = session.exec(
        select(Task.campaign_id, func.count())
        .where(col(Task.campaign_id).in_(campaign_ids))
        .group_by(col(Task.campaign_id))
    ).all()
    return dict(rows)


def check_pay_floor(campaign: Campaign, settings: Settings) -> None:
    floor = settings.pay_floor_cents_per_hour.get(campaign.currency)
    if floor is None:
        raise Unprocessable(f"{campaign.currency} is no longer accepted", code="unsupported_currency")
    # Compared without rounding: reward per minute x 60 against the hourly floor.
    if campaign.reward_cents * 60 < floor * campaign.estimated_minutes:
        rate = hourly_rate_cents(campaign.reward_cents, campaign.estimated_minutes)
        raise Unprocessable(
            f"this campaign pays {rate / 100:.2f} {campaign.currency} per hour of estimated work, below the "
            f"platform's floor of {floor / 100:.2f} {campaign.currency}: raise the reward or lower the estimate",
            code="pay_below_floor",
            hourly_rate_cents=rate,
            floor_cents_per_hour=floor,
            currency=campaign.currency,
        )


def change_status(
    session: Session, organization_id: uuid.UUID, campaign_id: uuid.UUID, action: str, settings: Settings
) -> Campaign:
    allowed, target, listed = TRANSITIONS[action]
    campaign = get_campaign(session, organization_id, campaign_id)
    if action == "activate":
        check_pay_floor(campaign, settings)
    first_activation = action == "activate" and campaign.activated_at is None
    now = utcnow()
    values: dict[str, datetime | str] = {"status": target.value}
    if first_activation:
        values["activated_at"] = now
    if target is CampaignStatus.closed:
        values["closed_at"] = now
    # The status test sits in the UPDATE itself: of two racing requests, one wins.
    changed = session.exec(
        update(Campaign)
        .where(
            col(Campaign.id) == campaign_id,
            col(Campaign.organization_id) == organization_id,
            col(Campaign.status).in_([s.value for s in allowed]),
        )
        .values(**values)
        .returning(col(Campaign.id))
    ).first()
    if changed is None:
        session.refresh(campaign)
        raise Conflict(
            f"a {campaign.status} campaign cannot be {_past(action)}",
            code="invalid_campaign_transition",
            current_status=campaign.status,
        )
    session.exec(update(Task).where(col(Task.campaign_id) == campaign_id).values(is_open=listed))
    session.refresh(campaign)
    if first_activation:
        funding.hold_escrow_for_activation(session, campaign, settings)
    if target is CampaignStatus.closed:
        funding.release_unused_escrow(session, campaign, settings)
        events.campaign_completed(session, campaign.id, reason="closed")
    return campaign


def _past(action: str) -> str:
    return {"activate": "activated", "pause": "paused", "close": "closed"}[action]
