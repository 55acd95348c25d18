"""A campaign as its client sees it."""

from __future__ import annotations

from fieldcheck.campaigns import service
from fieldcheck.campaigns.models import Campaign
from fieldcheck.campaigns.schemas import CampaignOut, PhotoRules
from fieldcheck.i18n import render_stored


def campaign_out(campaign: Campaign, store_count: int) -> CampaignOut:
    return CampaignOut(
        id=campaign.id,
        title=campaign.title,
        instructions=campaign.instructions,
        status=campaign.status,
        reward_cents=campaign.reward_cents,
        currency=campaign.currency,
        estimated_minutes=campaign.estimated_minutes,
        hourly_rate_cents=service.hourly_rate_cents(campaign.reward_cents, campaign.estimated_minutes),
        measured_minutes_median=campaign.measured_minutes_median,
        measured_minutes_p75=campaign.measured_minutes_p75,
        measured_visits=campaign.measured_visits,
        measured_travel_minutes_median=campaign.measured_travel_minutes_median,
        measured_travel_visits=campaign.measured_travel_visits,
        effective_hourly_rate_cents=(
            round(campaign.reward_cents * 60 / max(campaign.measured_minutes_median, 0.1))
            if campaign.measured_minutes_median is not None
            else None
        ),
        slots_per_store=campaign.slots_per_store,
        store_count=store_count,
        starts_at=campaign.starts_at,
        ends_at=campaign.ends_at,
        reservation_minutes=campaign.reservation_minutes,
        review_deadline_hours=campaign.review_deadline_hours,
        photo_rules=PhotoRules(
            min_photos=campaign.min_photos,
            max_photos=campaign.max_photos,
            min_short_side_px=campaign.min_short_side_px,
        ),
        review_all=campaign.review_all,
        audit_sample_percent=campaign.audit_sample_percent,
        created_at=campaign.created_at,
        activated_at=campaign.activated_at,
        closed_at=campaign.closed_at,
        pause_reason=campaign.pause_reason,
        pause_detail=render_stored(campaign.pause_details, None),
    )
