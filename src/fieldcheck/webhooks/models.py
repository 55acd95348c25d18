from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Column, ForeignKey, Index, Integer, String, Uuid
from sqlmodel import Field, SQLModel

from fieldcheck.db import JSONType, UTCDateTime, new_id, utcnow


class WebhookEvent(StrEnum):
    assignment_approved = "assignment.approved"
    assignment_rejected = "assignment.rejected"
    campaign_completed = "campaign.completed"
    campaign_pay_below_floor = "campaign.pay_below_floor"
    export_ready = "export.ready"


class DeliveryStatus(StrEnum):
    pending = "pending"  # an attempt is due or running
    succeeded = "succeeded"  # the last attempt got a 2xx
    failed = "failed"  # gave up: out of attempts (or a redelivery's one attempt failed)


DELIVERY_STATUS_VALUES = ", ".join(f"'{status.value}'" for status in DeliveryStatus)


class WebhookEndpoint(SQLModel, table=True):
    """Where a client organization wants to hear about events, and the secret that signs them."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        # Serves both the client's list and emit()'s one lookup per event (by organization).
        Index("ix_webhook_endpoints_organization", "organization_id", "created_at", "id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    organization_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("organizations.id"), nullable=False))
    url: str = Field(sa_column=Column(String(2000), nullable=False))
    events: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    # Kept in clear: every delivery is signed with it (it is shown to the client only when made).
    secret: str = Field(sa_column=Column(String(100), nullable=False))
    description: str | None = Field(default=None, sa_column=Column(String(500), nullable=True))
    active: bool = Field(default=True, sa_column=Column(Boolean, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    disabled_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class WebhookDelivery(SQLModel, table=True):
    """One event sent to one endpoint: the body as sent, and what happened to it (the delivery log)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at", "id"),
        CheckConstraint(f"status IN ({DELIVERY_STATUS_VALUES})", name="status_known"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    endpoint_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("webhook_endpoints.id"), nullable=False))
    organization_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("organizations.id"), nullable=False))
    event: str = Field(sa_column=Column(String(50), nullable=False))
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    status: str = Field(default=DeliveryStatus.pending.value, sa_column=Column(String(16), nullable=False))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    last_status_code: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    last_error: str | None = Field(default=None, sa_column=Column(String(500), nullable=True))
    last_attempt_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    next_attempt_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    delivered_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
