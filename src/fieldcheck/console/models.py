from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Uuid
from sqlmodel import Field, SQLModel

from fieldcheck.db import UTCDateTime, utcnow


class ConsoleSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is stored here."""

    __tablename__ = "console_sessions"
    __table_args__ = (Index("ix_console_sessions_expires", "expires_at"),)

    token_hash: str = Field(sa_column=Column(String(64), primary_key=True))
    user_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("users.id"), nullable=False, index=True))
    # Sent back in every form and script request: a page of another site cannot know it.
    csrf_token: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    # The account's token version when it signed in: a new password ends older sessions too.
    token_version: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))
    user_agent: str | None = Field(default=None, sa_column=Column(String(300), nullable=True))
