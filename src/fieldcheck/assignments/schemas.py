from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictFloat, field_validator

from fieldcheck.assignments.models import DecidedBy, PaymentStatus
from fieldcheck.checks.models import Outcome
from fieldcheck.photos.schemas import PhotoOut
from fieldcheck.stores.schemas import StoreSummary

MAX_PHOTOS_PER_SUBMISSION = 20


class AssignmentEventOut(BaseModel):
    at: datetime
    from_status: str | None
    to_status: str
    by: str
    reason: str


class CheckOut(BaseModel):
    name: str
    photo_id: uuid.UUID | None
    outcome: Outcome
    value: str | None
    threshold: str | None
    explanation: str


class DecisionOut(BaseModel):
    outcome: str
    decided_by: DecidedBy = Field(description="the system or a person (never who)")
    reasons: list[str]
    decided_at: datetime


class PaymentOut(BaseModel):
    status: PaymentStatus
    amount_cents: int
    currency: str


class PhotoRulesOut(BaseModel):
    min_photos: int
    max_photos: int
    min_short_side_px: int


class AssignmentOut(BaseModel):
    id: uuid.UUID
    task_id: uuid.UUID
    campaign_id: uuid.UUID
    status: str
    title: str
    instructions: str
    store: StoreSummary
    reward_cents: int
    currency: str
    created_at: datetime
    expires_at: datetime
    submitted_at: datetime | None
    decided_at: datetime | None
    distance_m: float | None = None
    photos: list[PhotoOut] = Field(default_factory=list)
    checks: list[CheckOut] = Field(default_factory=list)
    decision: DecisionOut | None = None
    payment: PaymentOut
    history: list[AssignmentEventOut]
    estimated_minutes: int | None = None
    photo_rules: PhotoRulesOut | None = None
    appeal_until: datetime | None = Field(
        default=None, description="Until when the rejection can be appealed (null: it cannot be, or not now)."
    )


class DeviceLocation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: StrictFloat = Field(ge=-90, le=90)
    lon: StrictFloat = Field(ge=-180, le=180)
    accuracy_m: StrictFloat = Field(ge=0, le=100_000)
    is_mock: bool = False


class SubmitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    photo_ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_PHOTOS_PER_SUBMISSION)
    location: DeviceLocation
    captured_at: AwareDatetime
    device_id: str = Field(min_length=1, max_length=200)
    arrived_at: AwareDatetime | None = Field(
        default=None,
        description="When the worker reached the store, if the phone knows (the worker app sends when the "
        "visit's first photo was taken): from the reservation to it is the time to reach the store, "
        "measured per campaign. Kept between the reservation and the submission.",
    )

    @field_validator("photo_ids")
    @classmethod
    def _distinct(cls, value: list[uuid.UUID]) -> list[uuid.UUID]:
        if len(set(value)) != len(value):
            raise ValueError("each photo may appear once")
        return value


class StatementReason(BaseModel):
    check: str | None = Field(description="the automated check behind this reason, if any")
    photo_id: uuid.UUID | None = None
    explanation: str
    value: str | None = None
    threshold: str | None = None


class StatementOut(BaseModel):
    """A written statement of the reasons for a rejection (EU Platform Work Directive, Art. 11)."""

    assignment_id: uuid.UUID
    title: str
    store: str
    decision: str
    decided_by: DecidedBy = Field(description="the system or a person (never who)")
    decided_at: datetime
    final: bool = Field(description="decided on appeal: no further appeal")
    reasons: list[StatementReason]
    appeal: str = Field(description="how to appeal and until when, or why it is no longer possible")
    appeal_until: datetime | None
    issued_at: datetime
