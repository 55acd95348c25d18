from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from fieldcheck.web import JsonInt, not_blank_schema

MAX_PHOTOS = 20


class PhotoRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_photos: JsonInt = Field(default=1, ge=1, le=MAX_PHOTOS)
    max_photos: JsonInt = Field(default=5, ge=1, le=MAX_PHOTOS)
    min_short_side_px: JsonInt = Field(default=1000, ge=0, le=10_000)


class CampaignCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200, json_schema_extra=not_blank_schema())
    instructions: str = Field(min_length=1, max_length=10_000, json_schema_extra=not_blank_schema())
    reward_cents: JsonInt = Field(gt=0, le=1_000_000)
    currency: str = Field(
        min_length=3, max_length=3, pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. EUR"
    )
    estimated_minutes: JsonInt = Field(gt=0, le=24 * 60)
    slots_per_store: JsonInt = Field(default=1, gt=0, le=1000)
    store_ids: list[uuid.UUID] = Field(min_length=1)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    reservation_minutes: JsonInt = Field(default=120, ge=5, le=7 * 24 * 60)
    review_deadline_hours: JsonInt = Field(default=72, ge=1, le=30 * 24)
    photo_rules: PhotoRules = Field(default_factory=PhotoRules)
    review_all: bool = Field(default=False, description="Send every submission to a person.")
    audit_sample_percent: JsonInt = Field(
        default=0,
        ge=0,
        le=100,
        description="Share of automatically approved work a person audits afterwards.",
    )

    @field_validator("title", "instructions")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


class CampaignPayUpdate(BaseModel):
    """A new reward, estimate or both (what is left out or null stays as it is). Once activated the
    reward only goes up and escrow is topped up."""

    model_config = ConfigDict(extra="forbid")

    reward_cents: JsonInt | None = Field(default=None, ge=1, le=1_000_000)
    estimated_minutes: JsonInt | None = Field(default=None, ge=1, le=24 * 60)


class CampaignOut(BaseModel):
    id: uuid.UUID
    title: str
    instructions: str
    status: str
    reward_cents: int
    currency: str
    estimated_minutes: int
    hourly_rate_cents: int = Field(description="reward per hour of estimated work")
    measured_minutes_median: float | None = Field(
        default=None,
        description="real working time of its visits, reservation to submission (null until one)",
    )
    measured_minutes_p75: float | None = None
    measured_visits: int = 0
    measured_travel_minutes_median: float | None = Field(
        default=None,
        description="of the working time, the median time to reach the store (reservation to arrival), over "
        "the visits whose phone reported its arrival (null until one did)",
    )
    measured_travel_visits: int = 0
    effective_hourly_rate_cents: int | None = Field(
        default=None, description="reward per hour of measured work: reward / median real minutes"
    )
    slots_per_store: int
    store_count: int
    starts_at: datetime | None
    ends_at: datetime | None
    reservation_minutes: int
    review_deadline_hours: int
    photo_rules: PhotoRules
    review_all: bool
    audit_sample_percent: int
    created_at: datetime
    activated_at: datetime | None
    closed_at: datetime | None
    pause_reason: str | None = Field(
        default=None,
        description="pay_below_floor when the platform paused it: its measured pay fell below the floor; "
        "it takes reservations again once the reward is raised",
    )
    pause_detail: str | None = Field(
        default=None, description="why, with the figures, in the reader's language"
    )
