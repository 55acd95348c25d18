"""Campaigns: created as drafts with one task per store, then activated, paused and closed."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session, col, select, update

from fieldcheck.campaigns import escrow
from fieldcheck.campaigns.completion import CompletionReason, mark_completed
from fieldcheck.campaigns.models import Campaign, CampaignStatus
from fieldcheck.campaigns.schemas import CampaignCreate
from fieldcheck.db import utcnow
from fieldcheck.errors import Conflict, NotFound, Unprocessable, field_error
from fieldcheck.i18n import _, text
from fieldcheck.pagination import paginate
from fieldcheck.settings import Settings
from fieldcheck.stores.models import Store
from fieldcheck.tasks import service as tasks

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

# What a refused action answers, by action.
_REFUSED_TRANSITION = {
    "activate": _("a {status} campaign cannot be activated"),
    "pause": _("a {status} campaign cannot be paused"),
    "close": _("a {status} campaign cannot be closed"),
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
            text(
                _("campaigns are paid in {accepted}; {currency} is not accepted"),
                accepted=accepted,
                currency=data.currency,
            ),
            code="unsupported_currency",
            errors=[field_error("currency", text(_("one of {accepted}"), accepted=accepted))],
        )
    # Rules between fields: no schema states them, so they are 422 problems naming the field.
    if data.photo_rules.max_photos < data.photo_rules.min_photos:
        raise Unprocessable(
            text(_("max_photos must be at least min_photos")),
            code="invalid_photo_rules",
            errors=[
                field_error(
                    "photo_rules.max_photos",
                    text(_("at least min_photos ({min_photos})"), min_photos=data.photo_rules.min_photos),
                )
            ],
        )
    if data.starts_at and data.ends_at and data.ends_at <= data.starts_at:
        raise Unprocessable(
            text(_("the campaign must end after it starts")),
            code="invalid_schedule",
            errors=[field_error("ends_at", text(_("after starts_at")))],
        )
    store_ids = list(dict.fromkeys(data.store_ids))
    if len(store_ids) > settings.campaign_max_stores:
        raise Unprocessable(
            text(_("a campaign covers at most {limit} stores"), limit=settings.campaign_max_stores),
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
            text(_("{count} store id(s) are not stores of your organization"), count=len(unknown)),
            code="unknown_stores",
            unknown_store_ids=unknown[:SHOWN_UNKNOWN_IDS],
            errors=[field_error("store_ids", text(_("unknown store ids")))],
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
    tasks.create_for_campaign(
        session,
        campaign_id=campaign.id,
        organization_id=organization_id,
        stores=[tasks.StoreSpot(store_id, lat, lon) for store_id, (lat, lon) in stores.items()],
        slots=data.slots_per_store,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
    )
    return campaign


def get_campaign(session: Session, organization_id: uuid.UUID, campaign_id: uuid.UUID) -> Campaign:
    campaign = session.exec(
        select(Campaign).where(Campaign.id == campaign_id, Campaign.organization_id == organization_id)
    ).first()
    if campaign is None:
        raise NotFound(text(_("no such campaign")), code="campaign_not_found")
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


def check_pay_floor(campaign: Campaign, settings: Settings) -> None:
    floor = settings.pay_floor_cents_per_hour.get(campaign.currency)
    if floor is None:
        raise Unprocessable(
            text(_("{currency} is no longer accepted"), currency=campaign.currency),
            code="unsupported_currency",
        )
    # Compared without rounding: reward per minute x 60 against the hourly floor.
    if campaign.reward_cents * 60 < floor * campaign.estimated_minutes:
        rate = hourly_rate_cents(campaign.reward_cents, campaign.estimated_minutes)
        raise Unprocessable(
            text(
                _(
                    "this campaign pays {rate:.2f} {currency} per hour of estimated work, below the "
                    "platform's floor of {floor:.2f} {currency}: raise the reward or lower the estimate"
                ),
                rate=rate / 100,
                floor=floor / 100,
                currency=campaign.currency,
            ),
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
            text(_REFUSED_TRANSITION[action], status=campaign.status),
            code="invalid_campaign_transition",
            current_status=campaign.status,
        )
    tasks.set_listed(session, campaign_id, listed)
    session.refresh(campaign)
    if first_activation:
        escrow.hold_for_activation(session, campaign, settings)
    if target is CampaignStatus.closed:
        escrow.settle(session, campaign)
        mark_completed(session, campaign.id, reason=CompletionReason.closed)
    return campaign
