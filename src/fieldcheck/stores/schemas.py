from __future__ import annotations

import math
import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, field_validator

from fieldcheck.stores.models import DEFAULT_GEOFENCE_M
from fieldcheck.web import JsonInt, not_blank_schema

MAX_GEOFENCE_M = 10_000


class StoreCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, json_schema_extra=not_blank_schema())
    lat: StrictFloat = Field(ge=-90, le=90)
    lon: StrictFloat = Field(ge=-180, le=180)
    address: str | None = Field(default=None, max_length=500)
    geofence_m: JsonInt = Field(default=DEFAULT_GEOFENCE_M, gt=0, le=MAX_GEOFENCE_M)
    external_ref: str | None = Field(default=None, min_length=1, max_length=100)

    @field_validator("lat", "lon")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        return value


class StoreOut(BaseModel):
    id: uuid.UUID
    external_ref: str | None
    name: str
    address: str | None
    lat: float
    lon: float
    geofence_m: int
    created_at: datetime
    updated_at: datetime


class ImportLineError(BaseModel):
    line: int
    field: str | None
    message: str


class StoreImportResult(BaseModel):
    created: int
    updated: int


class StoreSummary(BaseModel):
    """A store as a worker sees it with a task."""

    name: str
    address: str | None
    lat: float
    lon: float
    geofence_m: int | None = Field(
        default=None, description="Radius around the store within which the phone counts as there (m)."
    )
