from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Index, Integer, String, Text, Uuid
from sqlmodel import Field, SQLModel

from fieldcheck.db import EnumText, UTCDateTime, new_id, utcnow


class Outcome(StrEnum):
    """What one check concluded. `fail` rejects the work, `warn` sends it to a person."""

    passed = "pass"
    warn = "warn"
    fail = "fail"


OUTCOME_VALUES = ", ".join(f"'{outcome.value}'" for outcome in Outcome)


class CheckResultRow(SQLModel, table=True):
    """One automated check on a photo or on the whole assignment, with its explanation."""

    __tablename__ = "check_results"
    __table_args__ = (
        CheckConstraint(f"outcome IN ({OUTCOME_VALUES})", name="outcome_known"),
        Index("ix_check_results_assignment", "assignment_id", "position"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    assignment_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("assignments.id"), nullable=False))
    photo_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(Uuid, ForeignKey("photos.id"), nullable=True)
    )
    position: int = Field(default=0)
    name: str = Field(sa_column=Column(String(50), nullable=False))
    outcome: Outcome = Field(sa_column=Column(EnumText(Outcome, 8), nullable=False))
    value: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    threshold: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    explanation: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class PhotoHash(SQLModel, table=True):
    """The perceptual hashes of every checked photo, numbered in the order they were stored."""

    __tablename__ = "photo_hashes"

    seq: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    photo_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("photos.id"), nullable=False, unique=True))
    phash: int = Field(sa_column=Column(BigInteger, nullable=False))
    dhash: int = Field(sa_column=Column(BigInteger, nullable=False))
    fingerprint: str = Field(sa_column=Column(String(600), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
