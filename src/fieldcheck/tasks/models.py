from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlmodel import Field, SQLModel

from fieldcheck.db import UTCDateTime, new_id, utcnow


class Task(SQLModel, table=True):
    """One campaign at one store, with a number of slots.

    The store's position, the campaign's schedule and whether the campaign lists its tasks are
    copied here so that discovery reads one index: the partial index on open tasks, keyed by
    latitude band then longitude.
    """

    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("campaign_id", "store_id"),
        CheckConstraint("slots_taken >= 0 AND slots_taken <= slots_total", name="slots_within_total"),
        CheckConstraint("slots_approved >= 0", name="approved_not_negative"),
        Index(
            "ix_tasks_open_geo",
            "lat_band",
            "lon",
            "lat",
            # Written the way each dialect renders `Task.is_open == true()`, so the planner uses it.
            sqlite_where=text("is_open = 1"),
            postgresql_where=text("is_open"),
            # Everything discovery reads: open tasks are found by an index-only scan.
            postgresql_include=[
                "id",
                "campaign_id",
                "store_id",
                "slots_taken",
                "slots_total",
                "starts_at",
                "ends_at",
            ],
        ),
        Index("ix_tasks_store", "store_id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    campaign_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("campaigns.id"), nullable=False))
    store_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("stores.id"), nullable=False))
    organization_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("organizations.id"), nullable=False, index=True)
    )
    lat: float = Field(sa_column=Column(Float, nullable=False))
    lon: float = Field(sa_column=Column(Float, nullable=False))
    lat_band: int = Field(sa_column=Column(SmallInteger, nullable=False))
    slots_total: int = Field(sa_column=Column(Integer, nullable=False))
    # Slots held by an assignment (reserved, delivered, decided) that did not give its slot back.
    slots_taken: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))
    # Approved assignments: the task is done when they fill its slots. A reversed rejection can
    # make it exceed slots_total (the slot had gone to someone else, who was approved too).
    slots_approved: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))
    is_open: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, default=False))
    starts_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    ends_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
