from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Column, Float, ForeignKey, Index, String, Uuid, text
from sqlmodel import Field, SQLModel

from fieldcheck.db import UTCDateTime, new_id, utcnow


class ExportFormat(StrEnum):
    csv = "csv"  # one row per assignment
    zip = "zip"  # the CSV and every approved client-safe photo
    report = "report"  # a self-contained HTML report


class ExportStatus(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"
    expired = "expired"  # done once; its file was removed after the retention period


class Export(SQLModel, table=True):
    """A file built in the background from one campaign's results, for its organization."""

    __tablename__ = "exports"
    __table_args__ = (
        CheckConstraint("format IN ('csv', 'zip', 'report')", name="format_known"),
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed', 'expired')", name="status_known"),
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress_range"),
        Index("ix_exports_campaign_created", "campaign_id", "created_at", "id"),
        Index("ix_exports_status_expires", "status", "expires_at"),
        # One unfinished export per campaign and format: asking again returns it.
        Index(
            "uq_exports_campaign_format_unfinished",
            "campaign_id",
            "format",
            unique=True,
            sqlite_where=text("status IN ('queued', 'running')"),
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    organization_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("organizations.id"), nullable=False))
    campaign_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("campaigns.id"), nullable=False))
    requested_by: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("users.id"), nullable=False))
    format: str = Field(sa_column=Column(String(10), nullable=False))
    status: str = Field(default=ExportStatus.queued.value, sa_column=Column(String(10), nullable=False))
    progress: float = Field(default=0.0, sa_column=Column(Float, nullable=False, default=0.0))
    # What is being done now, in words ("photos 120 of 2000"), for a progress bar's caption.
    stage: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    storage_key: str | None = Field(default=None, sa_column=Column(String(300), nullable=True))
    filename: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    size_bytes: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    row_count: int | None = Field(default=None)
    photo_count: int | None = Field(default=None)
    error: str | None = Field(default=None, sa_column=Column(String(500), nullable=True))
    attempts: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    started_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # Touched while a build makes progress: a running export whose heartbeat stopped was abandoned
    # (its worker died) and may be taken over or failed.
    heartbeat_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # The job whose delivery started the running build: a retry of that job may take it over.
    claimed_by_job: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # The file is deleted after this (retention); the row stays, marked expired.
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
