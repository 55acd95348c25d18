from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Column, Float, ForeignKey, Index, Integer, String, Uuid, text
from sqlmodel import Field, SQLModel

from fieldcheck.db import JSONType, UTCDateTime, new_id, utcnow
from fieldcheck.i18n import Text, _


class AssignmentStatus(StrEnum):
    reserved = "reserved"
    submitted = "submitted"
    in_review = "in_review"
    approved = "approved"
    rejected = "rejected"
    appealed = "appealed"
    expired = "expired"
    cancelled = "cancelled"


S = AssignmentStatus
# An assignment in one of these states no longer holds a slot of its task.
RELEASED = frozenset({S.expired, S.cancelled})
# What a decision leads to: the checks', a person's or the review deadline's.
DECISIONS = frozenset({S.approved, S.in_review, S.rejected})
# Decided for now: the client hears of it (webhooks) and an approval is paid.
DECIDED = frozenset({S.approved, S.rejected})
# Delivered work waiting for the checks, a person or an appeal: its payment is pending.
AWAITING_DECISION = frozenset({S.submitted, S.in_review, S.appealed})
# Work a client can see: delivered, whatever became of it. Reservations in progress, cancelled
# and expired attempts are the worker's business.
DELIVERED = (S.submitted, S.in_review, S.approved, S.rejected, S.appealed)
STATUS_VALUES = ", ".join(f"'{s.value}'" for s in AssignmentStatus)
RELEASED_VALUES = ", ".join(f"'{s.value}'" for s in sorted(RELEASED))


class ActorType(StrEnum):
    system = "system"
    worker = "worker"
    reviewer = "reviewer"
    admin = "admin"
    client = "client"


class DecidedBy(StrEnum):
    """Who decided, as workers and clients are told: the system or a person, never which person."""

    system = "system"
    reviewer = "reviewer"

    @classmethod
    def of(cls, actor_type: str) -> DecidedBy:
        return cls.system if actor_type == ActorType.system else cls.reviewer


class PaymentStatus(StrEnum):
    """Where the reward of an assignment stands, for its worker."""

    released = "released"  # credited to the worker's balance
    due = "due"  # approved; the payment is being recorded
    pending = "pending"  # waiting for a decision
    none = "none"  # not paid: not delivered, or rejected


class Assignment(SQLModel, table=True):
    """One worker's attempt at one task."""

    __tablename__ = "assignments"
    __table_args__ = (
        CheckConstraint(f"status IN ({STATUS_VALUES})", name="status_known"),
        # One live attempt per worker per task; cancelled or expired ones do not count.
        Index(
            "uq_assignments_worker_task_live",
            "task_id",
            "worker_id",
            unique=True,
            sqlite_where=text(f"status NOT IN ({RELEASED_VALUES})"),
            postgresql_where=text(f"status NOT IN ({RELEASED_VALUES})"),
        ),
        Index("ix_assignments_worker_created", "worker_id", "created_at", "id"),
        # A worker's live tasks, read whole by discovery to leave them out.
        Index(
            "ix_assignments_worker_task_live",
            "worker_id",
            "task_id",
            sqlite_where=text(f"status NOT IN ({RELEASED_VALUES})"),
            postgresql_where=text(f"status NOT IN ({RELEASED_VALUES})"),
        ),
        Index(
            "ix_assignments_reserved_expiry",
            "expires_at",
            sqlite_where=text("status = 'reserved'"),
            postgresql_where=text("status = 'reserved'"),
        ),
        Index("ix_assignments_task", "task_id"),
        Index("ix_assignments_campaign_status", "campaign_id", "status"),
        Index("ix_assignments_status_submitted", "status", "submitted_at"),
        Index("ix_assignments_status_review_due", "status", "review_due_at"),
        # Decided work still holding the phone's position: the retention job's worklist (it shrinks
        # as positions are removed).
        Index(
            "ix_assignments_positions_kept",
            "decided_at",
            sqlite_where=text("positions_removed_at IS NULL AND decided_at IS NOT NULL"),
            postgresql_where=text("positions_removed_at IS NULL AND decided_at IS NOT NULL"),
        ),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    task_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("tasks.id"), nullable=False))
    campaign_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("campaigns.id"), nullable=False))
    worker_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("users.id"), nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    submitted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    decided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    # What the phone said at submission: kept from submissions only, never tracked otherwise.
    device_lat: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    device_lon: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    device_accuracy_m: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    device_is_mock: bool | None = Field(default=None, sa_column=Column(Boolean, nullable=True))
    device_id: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    captured_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # When the worker reached the store, as the phone said (the worker app: the visit's first photo),
    # kept between the reservation and the submission: reservation to it is the time to get there.
    arrived_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    capture_offset_minutes: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    distance_m: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    audit_sampled: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, default=False))
    audited_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    appealed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # While a person is to decide (in review, appealed): when the platform approves it if nobody has.
    review_due_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # Set once the task got this assignment's slot back (expired, cancelled, finally rejected).
    slot_freed: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, default=False))
    # When the phone's position, accuracy and identifier were erased, the retention period after the
    # decision became final (fieldcheck.privacy.retention); distance_m stays for the client's audit.
    positions_removed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class AssignmentEvent(SQLModel, table=True):
    """Every state change of an assignment: when, from what, to what, by whom and why."""

    __tablename__ = "assignment_events"
    __table_args__ = (Index("ix_assignment_events_assignment_at", "assignment_id", "at"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    assignment_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("assignments.id"), nullable=False))
    from_status: str | None = Field(default=None, sa_column=Column(String(16), nullable=True))
    to_status: str = Field(sa_column=Column(String(16), nullable=False))
    actor_type: str = Field(sa_column=Column(String(16), nullable=False))
    actor_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(Uuid, ForeignKey("users.id"), nullable=True)
    )
    reason: str = Field(sa_column=Column(String(500), nullable=False))
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


# What a status is called in the worker's language, when a message names it.
STATUS_WORDS = {
    AssignmentStatus.reserved.value: _("reserved"),
    AssignmentStatus.submitted.value: _("submitted"),
    AssignmentStatus.in_review.value: _("under review"),
    AssignmentStatus.approved.value: _("approved"),
    AssignmentStatus.rejected.value: _("rejected"),
    AssignmentStatus.appealed.value: _("appealed"),
    AssignmentStatus.expired.value: _("expired"),
    AssignmentStatus.cancelled.value: _("cancelled"),
}


def status_text(status: str) -> Text:
    """An assignment status as words of the reader's language (the code itself stays in `code`s)."""
    return Text(STATUS_WORDS.get(status, status))
