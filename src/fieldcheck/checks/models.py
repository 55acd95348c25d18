from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, String, Text, Uuid
from sqlmodel import Field, SQLModel

from fieldcheck.db import UTCDateTime, new_id, utcnow


class Outcome(StrEnum):
    passed = "pass"
    warn = "warn"
    fail = "fail"


class CheckResultRow(SQLModel, table=True):
    """One automated check on a photo or on the whole assignment, with its explanation."""

    __tablename__ = "check_results"
    __table_args__ = (
        CheckConstraint("outcome IN ('pass', 'warn', 'fail')", name="outcome_known"),
        Index("ix_check_results_assignment", "assignment_id", "position"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    assignment_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("assignments.id"), nullable=False))
    photo_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(Uuid, ForeignKey("photos.id"), nullable=True)
    )
    position: int = Field(default=0)
    name: str = Field(sa_column=Column(String(50), nullable=False))
    outcome: str = Field(sa_column=Column(String(8), nullable=False))
    value: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    threshold: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    explanation: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
