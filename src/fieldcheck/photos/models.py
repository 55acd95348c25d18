from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Uuid,
    text,
)
from sqlmodel import Field, SQLModel

from fieldcheck.db import JSONType, UTCDateTime, new_id, utcnow


class PhotoStatus(StrEnum):
    awaiting_upload = "awaiting_upload"  # an upload instruction was handed out
    submitted = "submitted"  # part of a submission; its object was seen in storage
    checked = "checked"  # the check job measured it


class CheckStatus(StrEnum):
    """Where the instant per-photo checks of an uploaded photo stand (before any submission)."""

    pending = "pending"  # the phone said the upload finished; the checks are queued or running
    checked = "checked"  # measured: the photo's checks are there to read
    failed_to_check = "failed_to_check"  # the checks could not run; they run again at submission


class Photo(SQLModel, table=True):
    """One uploaded photo: where it is stored, what it is, and what the checks measured."""

    __tablename__ = "photos"
    __table_args__ = (
        CheckConstraint("status IN ('awaiting_upload', 'submitted', 'checked')", name="status_known"),
        CheckConstraint(
            "check_status IS NULL OR check_status IN ('pending', 'checked', 'failed_to_check')",
            name="check_status_known",
        ),
        Index("ix_photos_assignment", "assignment_id", "created_at"),
        # Exact duplicates: the same bytes seen before, by anyone.
        Index(
            "ix_photos_sha256",
            "sha256",
            postgresql_where=text("sha256 IS NOT NULL"),
            sqlite_where=text("sha256 IS NOT NULL"),
        ),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    assignment_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("assignments.id"), nullable=False))
    worker_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("users.id"), nullable=False))
    status: str = Field(
        default=PhotoStatus.awaiting_upload.value, sa_column=Column(String(20), nullable=False)
    )
    # Where the phone uploads (a single-use signed PUT), and the copy made at submission that
    # the checks, reviewers and clients read: no worker ever holds a link to write it.
    storage_key: str = Field(sa_column=Column(String(300), nullable=False, unique=True))
    frozen_key: str | None = Field(default=None, sa_column=Column(String(300), nullable=True))
    declared_type: str = Field(sa_column=Column(String(50), nullable=False))
    declared_bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    stored_bytes: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    stored_etag: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    detected_type: str | None = Field(default=None, sa_column=Column(String(20), nullable=True))
    width: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    height: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    sha256: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    # Its perceptual hashes, for near duplicates, are in checks.models.PhotoHash.
    exif_taken_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    exif_lat: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    exif_lon: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    measurements: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    thumbnail_key: str | None = Field(default=None, sa_column=Column(String(300), nullable=True))
    safe_key: str | None = Field(default=None, sa_column=Column(String(300), nullable=True))
    # The instant checks, run when the phone says the upload finished (before the submission): their
    # state, the stored object they read (its ETag: a submission of the same object reuses them), the
    # per-photo checks as the worker reads them, and what the submission's decision needs of them.
    check_status: str | None = Field(default=None, sa_column=Column(String(20), nullable=True))
    early_etag: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    early_checks: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    early_report: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    check_requested_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    early_checked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # When the instant checks started: a submission made meanwhile waits for them (checking.py).
    early_started_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    submitted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    checked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # When the photo as uploaded and submitted (storage_key, frozen_key) and its GPS position were
    # deleted, the retention period after the decision became final (fieldcheck.privacy.retention).
    # The client-safe copy and the thumbnail (made from it: faces blurred, no EXIF) stay.
    originals_removed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))

    @property
    def original_key(self) -> str | None:
        """The bytes that were submitted and checked (the upload itself before submission), while
        they are kept: what the checks read, never a copy."""
        if self.originals_removed_at is not None:
            return None
        return self.frozen_key or self.storage_key

    @property
    def content_key(self) -> str | None:
        """The photo as shown to its worker: the original while it is kept, then the client-safe
        copy (None when there is none)."""
        if self.originals_removed_at is not None:
            return self.safe_key
        return self.original_key

    @property
    def content_type(self) -> str:
        """The content type `content_key` is served with."""
        return "image/jpeg" if self.originals_removed_at is not None else self.served_type

    @property
    def viewable_key(self) -> str | None:
        """What a browser can show: the photo itself, or for HEIC (which Chromium and Firefox
        cannot display) its JPEG rendering, once the checks made it; the client-safe copy once
        the originals were removed (None when there is none)."""
        if self.originals_removed_at is not None or (self.detected_type == "heic" and self.safe_key):
            return self.safe_key
        return self.content_key

    @property
    def viewable_type(self) -> str:
        return "image/jpeg" if self.viewable_key == self.safe_key else self.served_type

    @property
    def served_type(self) -> str:
        """The content type the photo is served with: chosen by the server, never the uploader."""
        return {"jpeg": "image/jpeg", "png": "image/png", "heic": "image/heic"}.get(
            self.detected_type or "", self.declared_type
        )
