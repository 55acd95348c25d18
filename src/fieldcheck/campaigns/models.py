from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Column, Float, ForeignKey, Index, Integer, String, Text, Uuid
from sqlmodel import Field, SQLModel

from fieldcheck.db import JSONType, UTCDateTime, new_id, utcnow


class CampaignStatus(StrEnum):
    draft = "draft"
    active = "active"
    paused = "paused"
    closed = "closed"


class PauseReason(StrEnum):
    pay_below_floor = "pay_below_floor"  # measured pay under the floor: waits for a raise


class Campaign(SQLModel, table=True):
    """A client's job definition; one task per covered store."""

    __tablename__ = "campaigns"
    __table_args__ = (
        Index("ix_campaigns_organization_created", "organization_id", "created_at", "id"),
        CheckConstraint("status IN ('draft', 'active', 'paused', 'closed')", name="status_known"),
        CheckConstraint("reward_cents > 0", name="reward_positive"),
        CheckConstraint("estimated_minutes > 0", name="estimate_positive"),
        CheckConstraint("slots_per_store > 0", name="slots_positive"),
        CheckConstraint("min_photos >= 1 AND max_photos >= min_photos", name="photo_counts"),
        CheckConstraint("ends_at IS NULL OR starts_at IS NULL OR ends_at > starts_at", name="schedule_order"),
        CheckConstraint("audit_sample_percent >= 0 AND audit_sample_percent <= 100", name="sample_percent"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    organization_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("organizations.id"), nullable=False))
    title: str = Field(sa_column=Column(String(200), nullable=False))
    instructions: str = Field(sa_column=Column(Text, nullable=False))
    reward_cents: int = Field(sa_column=Column(Integer, nullable=False))
    currency: str = Field(sa_column=Column(String(3), nullable=False))
    estimated_minutes: int = Field(sa_column=Column(Integer, nullable=False))
    slots_per_store: int = Field(sa_column=Column(Integer, nullable=False))
    starts_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    ends_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    reservation_minutes: int = Field(sa_column=Column(Integer, nullable=False))
    review_deadline_hours: int = Field(sa_column=Column(Integer, nullable=False))
    min_photos: int = Field(sa_column=Column(Integer, nullable=False))
    max_photos: int = Field(sa_column=Column(Integer, nullable=False))
    min_short_side_px: int = Field(sa_column=Column(Integer, nullable=False))
    # Fixed at first activation, from the platform's fee rate then: what escrow holds per slot.
    fee_per_slot_cents: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))
    review_all: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, default=False))
    audit_sample_percent: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))
    status: str = Field(default=CampaignStatus.draft.value, sa_column=Column(String(16), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    activated_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # Real working time of its visits (reservation to submission, the last 500), kept up to date at
    # each submission: what the pay measured, not assumed, is judged on.
    measured_minutes_median: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    measured_minutes_p75: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    measured_visits: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, default=0, server_default="0")
    )
    # Of that, the time to reach the store (reservation to arrival) over the visits whose phone
    # reported their arrival.
    measured_travel_minutes_median: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    measured_travel_visits: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, default=0, server_default="0")
    )
    # Why it is paused when the platform paused it (pay_below_floor), with the figures then (a
    # stored Text); null when the client paused it or it is not paused.
    pause_reason: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    pause_details: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    # When every slot had approved work, or the campaign was closed: campaign.completed went out.
    completed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
