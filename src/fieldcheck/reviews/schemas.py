from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fieldcheck.assignments.schemas import CheckOut
from fieldcheck.reviews.models import QueueReason, ReasonCode


class QueueItemOut(BaseModel):
    assignment_id: uuid.UUID
    reason: QueueReason
    waiting_since: datetime
    review_due_at: datetime | None
    campaign_title: str
    store_name: str
    claimed_by_me: bool
    lease_expires_at: datetime | None


class QueueOut(BaseModel):
    items: list[QueueItemOut]
    counts: dict[str, int] = Field(description="items waiting per reason (flagged, sampled, appeal)")


class ClaimOut(BaseModel):
    assignment_id: uuid.UUID
    reason: QueueReason
    lease_expires_at: datetime


class ReviewReferenceOut(BaseModel):
    kind: str = Field(
        description="campaign (a client's reference photo) or store (an earlier approved photo)"
    )
    url: str | None = Field(description="the reference, signed, expiring")
    matched: bool
    inliers: int
    outline: list[tuple[float, float]] | None = Field(
        description="where the photo lies in the reference: its four corners, as shares of the "
        "reference's width and height (top left, top right, bottom right, bottom left)"
    )


class ReviewPhotoOut(BaseModel):
    id: uuid.UUID
    url: str | None = Field(
        description="full size, signed, expiring; once the original was deleted after the retention "
        "period, the client-safe copy (null when there is none)"
    )
    originals_removed_at: datetime | None = Field(
        default=None, description="when the photo as sent was deleted (FIELDCHECK_ORIGINAL_RETENTION_DAYS)"
    )
    thumbnail_url: str | None
    width: int | None
    height: int | None
    measurements: dict[str, Any]
    reference: ReviewReferenceOut | None = Field(
        default=None, description="the reference photo it was compared with (the best match)"
    )


class EarlierPhotoOut(BaseModel):
    assignment_id: uuid.UUID
    decided_at: datetime | None
    thumbnail_url: str | None
    url: str | None


class Position(BaseModel):
    lat: float
    lon: float


class ItemOut(BaseModel):
    assignment_id: uuid.UUID
    reason: QueueReason
    status: str
    campaign_title: str
    instructions: str
    store_name: str
    store_address: str | None
    store_position: Position
    geofence_m: int
    device_position: Position | None
    device_accuracy_m: float | None
    distance_m: float | None
    submitted_at: datetime | None
    review_due_at: datetime | None
    photos: list[ReviewPhotoOut]
    checks: list[CheckOut]
    earlier_photos_of_store: list[EarlierPhotoOut]
    worker_record: dict[str, Any] = Field(description="approved, rejected, pending, approval_rate")
    appeal_message: str | None
    history: list[dict[str, Any]]
    lease_expires_at: datetime | None


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    reasons: list[ReasonCode] = Field(default_factory=list, max_length=7)
    comment: str = Field(default="", max_length=2000)


class AppealIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=2000)


class AppealOut(BaseModel):
    id: uuid.UUID
    assignment_id: uuid.UUID
    message: str
    created_at: datetime


class ReversalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=500)
