from __future__ import annotations

import uuid

from pydantic import BaseModel


class StoreSummary(BaseModel):
    name: str
    address: str | None
    lat: float
    lon: float


class NearbyTask(BaseModel):
    task_id: uuid.UUID
    campaign_id: uuid.UUID
    title: str
    instructions: str
    store: StoreSummary
    distance_m: float
    reward_cents: int
    currency: str
    estimated_minutes: int
    reservation_minutes: int
    slots_left: int


class NearbyPage(BaseModel):
    items: list[NearbyTask]
