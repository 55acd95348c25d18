from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, CheckConstraint, Column, ForeignKey, Index, Integer, String, Uuid
from sqlmodel import Field, SQLModel

from fieldcheck.db import UTCDateTime, new_id, utcnow


class Role(StrEnum):
    worker = "worker"
    client = "client"
    reviewer = "reviewer"
    admin = "admin"


ROLE_VALUES = ", ".join(f"'{role.value}'" for role in Role)


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(f"role IN ({ROLE_VALUES})", name="role_known"),
        # Client users act for an organization; nobody else belongs to one.
        CheckConstraint(
            "(role = 'client') = (organization_id IS NOT NULL)", name="organization_only_for_clients"
        ),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    # Stored lower-cased: the unique index then makes e-mail addresses case-insensitively unique.
    email: str = Field(sa_column=Column(String(320), nullable=False, unique=True))
    password_hash: str = Field(sa_column=Column(String(200), nullable=False))
    display_name: str = Field(sa_column=Column(String(100), nullable=False))
    role: str = Field(sa_column=Column(String(16), nullable=False))
    organization_id: uuid.UUID | None = Field(
        default=None,
        sa_column=Column(Uuid, ForeignKey("organizations.id"), nullable=True, index=True),
    )
    is_active: bool = Field(default=True, sa_column=Column(Boolean, nullable=False, default=True))
    # Written into every token; raising it (new password, deactivation) revokes every older token.
    token_version: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    # When its owner closed it: signed out for good, name and e-mail erased; never reactivated.
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class LoginFailure(SQLModel, table=True):
    """Failed sign-ins, counted per account and per address to slow down password guessing."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_email_at", "email", "at"),
        Index("ix_login_failures_address_at", "address", "at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    email: str = Field(sa_column=Column(String(320), nullable=False))
    address: str = Field(sa_column=Column(String(64), nullable=False))
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class RevokedToken(SQLModel, table=True):
    """Tokens signed out before they expire; rows go once the token would have expired anyway."""

    __tablename__ = "revoked_tokens"
    __table_args__ = (Index("ix_revoked_tokens_expires_at", "expires_at"),)

    token_id: str = Field(sa_column=Column(String(64), primary_key=True))
    user_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("users.id"), nullable=False, index=True))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
