from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlmodel import Field, SQLModel

from fieldcheck.db import UTCDateTime, new_id, utcnow

DEFAULT_GEOFENCE_M = 150


class Store(SQLModel, table=True):
    """A place where work is done: coordinates (WGS84) and a geofence radius in metres."""

    __tablename__ = "stores"
    __table_args__ = (
        # Re-importing a store list updates stores by their reference instead of duplicating them.
        UniqueConstraint("organization_id", "external_ref"),
        Index("ix_stores_organization_created", "organization_id", "created_at", "id"),
        CheckConstraint("lat >= -90 AND lat <= 90", name="lat_range"),
        CheckConstraint("lon >= -180 AND lon <= 180", name="lon_range"),
        CheckConstraint("geofence_m > 0", name="geofence_positive"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    organization_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("organizations.id"), nullable=False))
    external_ref: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    name: str = Field(sa_column=Column(String(200), nullable=False))
    address: str | None = Field(default=None, sa_column=Column(String(500), nullable=True))
    lat: float = Field(sa_column=Column(Float, nullable=False))
    lon: float = Field(sa_column=Column(Float, nullable=False))
    geofence_m: int = Field(default=DEFAULT_GEOFENCE_M, sa_column=Column(Integer, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
