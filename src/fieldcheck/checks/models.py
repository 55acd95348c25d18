from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    Uuid,
    text,
)
from sqlmodel import Field, SQLModel

from fieldcheck.db import EnumText, JSONType, UTCDateTime, new_id, utcnow


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
    # value, threshold and explanation as Texts (message id and values: fieldcheck.i18n), read in
    # the reader's language; the English columns above stay the record (and serve older rows).
    texts: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONType, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class PhotoHash(SQLModel, table=True):
    """The perceptual hashes of every checked photo and reference photo, numbered in the order they
    were stored: the duplicate index. Exactly one of photo_id and reference_id is set."""

    __tablename__ = "photo_hashes"
    __table_args__ = (CheckConstraint("(photo_id IS NULL) <> (reference_id IS NULL)", name="one_owner"),)

    seq: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    photo_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(Uuid, ForeignKey("photos.id"), nullable=True, unique=True)
    )
    reference_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(Uuid, ForeignKey("reference_photos.id"), nullable=True, unique=True)
    )
    phash: int = Field(sa_column=Column(BigInteger, nullable=False))
    dhash: int = Field(sa_column=Column(BigInteger, nullable=False))
    fingerprint: str = Field(sa_column=Column(String(600), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))

    @property
    def owner_id(self) -> uuid.UUID:
        owner = self.photo_id or self.reference_id
        assert owner is not None
        return owner


class PhotoFeatures(SQLModel, table=True):
    """A checked photo's local features (checks/reference.py), kept so that once approved it serves
    as a reference for later photos of its store, without being decoded again."""

    __tablename__ = "photo_features"

    photo_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("photos.id"), primary_key=True))
    features: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class ReferenceStatus(StrEnum):
    awaiting_upload = "awaiting_upload"  # an upload instruction was handed out
    processing = "processing"  # uploaded; its features are being computed
    ready = "ready"  # compared with every new photo of the campaign
    failed = "failed"  # not an image, or nothing to compare with: `problem` says why


class ReferencePhoto(SQLModel, table=True):
    """A photo of the shelf a client attaches to a campaign: what workers' photos must show."""

    __tablename__ = "reference_photos"
    __table_args__ = (
        CheckConstraint(
            "status IN ('awaiting_upload', 'processing', 'ready', 'failed')", name="reference_status_known"
        ),
        Index("ix_reference_photos_campaign", "campaign_id", "created_at"),
        Index(
            "ix_reference_photos_sha256",
            "sha256",
            postgresql_where=text("sha256 IS NOT NULL"),
            sqlite_where=text("sha256 IS NOT NULL"),
        ),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    campaign_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("campaigns.id"), nullable=False))
    organization_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("organizations.id"), nullable=False))
    status: str = Field(
        default=ReferenceStatus.awaiting_upload.value, sa_column=Column(String(20), nullable=False)
    )
    storage_key: str = Field(sa_column=Column(String(300), nullable=False, unique=True))
    declared_type: str = Field(sa_column=Column(String(50), nullable=False))
    declared_bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    detected_type: str | None = Field(default=None, sa_column=Column(String(20), nullable=True))
    width: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    height: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    sha256: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    features: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    thumbnail_key: str | None = Field(default=None, sa_column=Column(String(300), nullable=True))
    problem: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    checked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # Deleted references stop being compared with, but their hashes stay in the duplicate index.
    deleted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))

    @property
    def display_key(self) -> str:
        """The copy reviewers and the client see (JPEG, 1600 px, no metadata, faces blurred)."""
        return f"{self.storage_key.rsplit('/', 1)[0]}/display.jpg"
