from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Column, Float, ForeignKey, Index, String, Uuid, text
from sqlmodel import Field, SQLModel

from fieldcheck.db import UTCDateTime, new_id, utcnow


class DataExport(SQLModel, table=True):
    """A ZIP of everything fieldcheck holds about one worker (GDPR Arts. 15 and 20), built in the
    background, downloaded by that worker only through an expiring link, then removed."""

    __tablename__ = "worker_data_exports"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed', 'expired')", name="status_known"),
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress_range"),
        Index("ix_worker_data_exports_user_created", "user_id", "created_at", "id"),
        Index("ix_worker_data_exports_status_expires", "status", "expires_at"),
        # One unfinished export per worker: asking again (a double tap, a retry) returns it.
        Index(
            "uq_worker_data_exports_user_unfinished",
            "user_id",
            unique=True,
            sqlite_where=text("status IN ('queued', 'running')"),
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    user_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("users.id"), nullable=False))
    # The language of the request: the texts inside (checks, decisions, statements) are in it.
    language: str = Field(sa_column=Column(String(8), nullable=False))
    status: str = Field(default="queued", sa_column=Column(String(10), nullable=False))
    progress: float = Field(default=0.0, sa_column=Column(Float, nullable=False, default=0.0))
    stage: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    storage_key: str | None = Field(default=None, sa_column=Column(String(300), nullable=True))
    filename: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    size_bytes: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    photo_count: int | None = Field(default=None)
    error: str | None = Field(default=None, sa_column=Column(String(500), nullable=True))
    attempts: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    started_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # Touched while the build makes progress: a running export whose heartbeat stopped was abandoned.
    heartbeat_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # The job whose delivery started the running build: a retry of that job may take it over.
    claimed_by_job: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # The file is deleted after this; the row stays, marked expired.
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
