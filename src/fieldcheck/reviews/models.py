from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, String, Text, Uuid
from sqlmodel import Field, SQLModel

from fieldcheck.db import EnumText, JSONType, UTCDateTime, new_id, utcnow
from fieldcheck.i18n import _, text


class QueueReason(StrEnum):
    flagged = "flagged"  # the checks were not sure
    sampled = "sampled"  # approved work drawn for an audit
    appeal = "appeal"  # the worker asked a person to look again


class ReasonCode(StrEnum):
    blurry = "blurry"
    wrong_shelf = "wrong_shelf"
    wrong_store = "wrong_store"
    duplicate = "duplicate"
    not_in_store = "not_in_store"
    incomplete = "incomplete"
    other = "other"


class ReviewDecision(StrEnum):
    approve = "approve"
    reject = "reject"


class AppealOutcome(StrEnum):
    approved = "approved"
    rejected = "rejected"


# What a worker reads for each code: plain words, and what to do next time.
REASON_TEXT = {
    ReasonCode.blurry: text(_("The photos are too blurred to read the products.")),
    ReasonCode.wrong_shelf: text(_("The photos do not show the shelf the instructions ask for.")),
    ReasonCode.wrong_store: text(_("The photos were taken in another store.")),
    ReasonCode.duplicate: text(_("The photos were used before, or are copies of other photos.")),
    ReasonCode.not_in_store: text(_("The work was not done inside the store.")),
    ReasonCode.incomplete: text(_("Part of what the instructions ask for is missing.")),
    ReasonCode.other: text(_("Another reason, explained in the reviewer's comment.")),
}


class Review(SQLModel, table=True):
    """A person's decision on an assignment, with structured reasons."""

    __tablename__ = "reviews"
    __table_args__ = (
        Index("ix_reviews_assignment", "assignment_id", "created_at"),
        Index("ix_reviews_reviewer", "reviewer_id", "created_at"),
        CheckConstraint("decision IN ('approve', 'reject')", name="decision_known"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    assignment_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("assignments.id"), nullable=False))
    reviewer_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("users.id"), nullable=False))
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    decision: ReviewDecision = Field(sa_column=Column(EnumText(ReviewDecision, 8), nullable=False))
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
    comment: str = Field(default="", sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class ReviewClaim(SQLModel, table=True):
    """Who is looking at an item, until when: two reviewers never decide the same item."""

    __tablename__ = "review_claims"

    assignment_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("assignments.id"), primary_key=True))
    reviewer_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("users.id"), nullable=False))
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    claimed_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class Appeal(SQLModel, table=True):
    __tablename__ = "appeals"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    assignment_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("assignments.id"), nullable=False, unique=True)
    )
    message: str = Field(sa_column=Column(Text, nullable=False))
    # The reviewer whose rejection is appealed (None: the automated checks rejected).
    rejected_by: uuid.UUID | None = Field(
        default=None, sa_column=Column(Uuid, ForeignKey("users.id"), nullable=True)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    decided_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    outcome: AppealOutcome | None = Field(
        default=None, sa_column=Column(EnumText(AppealOutcome, 16), nullable=True)
    )
