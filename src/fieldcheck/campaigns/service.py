"""Campaigns: created as drafts with one task per store, then activated, paused and closed."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select, update

from fieldcheck.campaigns import escrow
from fieldcheck.campaigns.completion import CompletionReason, mark_completed
from fieldcheck.campaigns.models import Campaign, CampaignStatus, PauseReason
from fieldcheck.campaigns.schemas import CampaignCreate, CampaignPayUpdate
from fieldcheck.db import utcnow
from fieldcheck.errors import Conflict, NotFound, Unprocessable, field_error
from fieldcheck.i18n import Text, _, text
from fieldcheck.pagination import paginate
from fieldcheck.settings import Settings
from fieldcheck.stores.models import Store
from fieldcheck.tasks import service as tasks
from fieldcheck.webhooks import service as webhooks
from fieldcheck.webhooks.models import WebhookEvent

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


@dataclass(frozen=True)
class PayBreach:
    """Pay under the floor, and on what it was judged: the estimate or the measured working time."""

    basis: str  # "estimate" or "measured"
    hourly_rate_cents: int
    floor_cents_per_hour: int
    minutes: float  # the estimate, or the median real minutes
    visits: int  # measured visits (0 when judged on the estimate)


def pay_breach(
    campaign: Campaign,
    settings: Settings,
    *,
    reward_cents: int | None = None,
    estimated_minutes: int | None = None,
) -> PayBreach | None:
    """The one definition of the pay floor, for activation, edits and measured visits.

    A campaign pays at least the floor per hour of its estimated work, and, once it has
    `pay_floor_min_visits` measured visits, per hour of their median real working time too.
    `reward_cents` and `estimated_minutes` test values the campaign does not have yet.
    """
    floor = settings.pay_floor_cents_per_hour.get(campaign.currency)
    if floor is None:
        raise Unprocessable(
            text(_("{currency} is no longer accepted"), currency=campaign.currency),
            code="unsupported_currency",
        )
    reward = campaign.reward_cents if reward_cents is None else reward_cents
    estimate = campaign.estimated_minutes if estimated_minutes is None else estimated_minutes
    # Compared without rounding: reward per minute x 60 against the hourly floor.
    if reward * 60 < floor * estimate:
        return PayBreach("estimate", hourly_rate_cents(reward, estimate), floor, estimate, 0)
    median = campaign.measured_minutes_median
    measured = median is not None and campaign.measured_visits >= settings.pay_floor_min_visits
    if measured and median is not None and reward * 60 < floor * median:
        return PayBreach(
            "measured", round(reward * 60 / max(median, 0.1)), floor, median, campaign.measured_visits
        )
    return None


def _pay_below_floor(breach: PayBreach, currency: str) -> Text:
    if breach.basis == "estimate":
        return text(
            _(
                "this campaign pays {rate:.2f} {currency} per hour of estimated work, below the "
                "platform's floor of {floor:.2f} {currency}: raise the reward or lower the estimate"
            ),
            rate=breach.hourly_rate_cents / 100,
            floor=breach.floor_cents_per_hour / 100,
            currency=currency,
        )
    return text(
        _(
            "workers took a median of {minutes:.0f} minutes over {visits} visits, so this campaign pays "
            "{rate:.2f} {currency} per hour of real work, below the platform's floor of {floor:.2f} "
            "{currency}: raise the reward"
        ),
        minutes=breach.minutes,
        visits=breach.visits,
        rate=breach.hourly_rate_cents / 100,
        floor=breach.floor_cents_per_hour / 100,
        currency=currency,
    )


def check_pay_floor(
    campaign: Campaign,
    settings: Settings,
    *,
    reward_cents: int | None = None,
    estimated_minutes: int | None = None,
) -> None:
    """422 pay_below_floor when the campaign (or the values tried) pays under the floor."""
    breach = pay_breach(campaign, settings, reward_cents=reward_cents, estimated_minutes=estimated_minutes)
    if breach is not None:
        raise Unprocessable(
            _pay_below_floor(breach, campaign.currency),
            code="pay_below_floor",
            basis=breach.basis,
            hourly_rate_cents=breach.hourly_rate_cents,
            floor_cents_per_hour=breach.floor_cents_per_hour,
            currency=campaign.currency,
        )


def pause_if_underpaid(session: Session, campaign_id: uuid.UUID, settings: Settings) -> bool:
    """After a visit was measured: an active campaign whose measured pay fell below the floor stops
    taking reservations (reservations held go on), says why, and tells its client once."""
    campaign = session.get(Campaign, campaign_id, populate_existing=True)
    if campaign is None or campaign.status != CampaignStatus.active.value:
        return False
    breach = pay_breach(campaign, settings)
    if breach is None or breach.basis != "measured":
        return False
    reason = _pay_below_floor(breach, campaign.currency)
    # The status test sits in the UPDATE: of two submissions racing here, one pauses and tells.
    paused = session.exec(
        update(Campaign)
        .where(col(Campaign.id) == campaign_id, col(Campaign.status) == CampaignStatus.active.value)
        .values(
            status=CampaignStatus.paused.value,
            pause_reason=PauseReason.pay_below_floor.value,
            pause_details=reason.as_json(),
        )
        .returning(col(Campaign.id))
    ).first()
    if paused is None:
        return False
    tasks.set_listed(session, campaign_id, False)
    webhooks.emit(
        session,
        campaign.organization_id,
        WebhookEvent.campaign_pay_below_floor,
        {
            "campaign_id": campaign_id,
            "status": CampaignStatus.paused.value,
            "reason": reason.english,
            "measured_minutes_median": breach.minutes,
            "measured_visits": breach.visits,
            "effective_hourly_rate_cents": breach.hourly_rate_cents,
            "floor_cents_per_hour": breach.floor_cents_per_hour,
            "reward_cents": campaign.reward_cents,
            "currency": campaign.currency,
        },
    )
    session.refresh(campaign)
    return True


def update_pay(
    session: Session,
    organization_id: uuid.UUID,
    campaign_id: uuid.UUID,
    data: CampaignPayUpdate,
    settings: Settings,
) -> Campaign:
    """Change a campaign's reward or estimate.

    A draft takes any values (the floor is checked at activation). Once activated the reward only
    goes up (workers reserved on the reward shown), the new values must meet the floor, and escrow
    is topped up for every slot still owed (409 insufficient_funds otherwise); approved work not
    paid yet is paid the new reward. A campaign the platform paused for its pay resumes.
    """
    campaign = session.exec(
        select(Campaign)
        .where(Campaign.id == campaign_id, Campaign.organization_id == organization_id)
        .with_for_update()
    ).first()
    if campaign is None:
        raise NotFound(text(_("no such campaign")), code="campaign_not_found")
    if campaign.status == CampaignStatus.closed.value:
        raise Conflict(
            text(_("a closed campaign cannot be changed")),
            code="campaign_closed",
            current_status=campaign.status,
        )
    reward = data.reward_cents if data.reward_cents is not None else campaign.reward_cents
    estimate = data.estimated_minutes if data.estimated_minutes is not None else campaign.estimated_minutes
    if campaign.activated_at is None:
        campaign.reward_cents, campaign.estimated_minutes = reward, estimate
        session.add(campaign)
        session.flush()
        return campaign
    if reward < campaign.reward_cents:
        raise Conflict(
            text(
                _(
                    "the reward of an activated campaign can only go up: workers reserved its tasks for "
                    "{reward:.2f} {currency}"
                ),
                reward=campaign.reward_cents / 100,
                currency=campaign.currency,
            ),
            code="reward_cannot_decrease",
            reward_cents=campaign.reward_cents,
        )
    check_pay_floor(campaign, settings, reward_cents=reward, estimated_minutes=estimate)
    if reward > campaign.reward_cents:
        escrow.top_up_for_reward(session, campaign, reward)
    campaign.reward_cents, campaign.estimated_minutes = reward, estimate
    resumes = (
        campaign.status == CampaignStatus.paused.value
        and campaign.pause_reason == PauseReason.pay_below_floor.value
    )
    if resumes:
        campaign.status = CampaignStatus.active.value
        campaign.pause_reason, campaign.pause_details = None, None
    session.add(campaign)
    session.flush()
    if resumes:
        tasks.set_listed(session, campaign_id, True)
    return campaign


def change_status(
    session: Session, organization_id: uuid.UUID, campaign_id: uuid.UUID, action: str, settings: Settings
) -> Campaign:
    allowed, target, listed = TRANSITIONS[action]
    campaign = get_campaign(session, organization_id, campaign_id)
    if action == "activate":
        check_pay_floor(campaign, settings)
    first_activation = action == "activate" and campaign.activated_at is None
    now = utcnow()
    values: dict[str, datetime | str | None] = {"status": target.value}
    if first_activation:
        values["activated_at"] = now
    if action in ("activate", "pause"):  # the client decides now: no platform reason stands
        values["pause_reason"] = None
        values["pause_details"] = None
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
