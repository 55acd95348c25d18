from __future__ import annotations

import uuid

import msgspec


# Discovery is the hottest read of the platform: its answer is built from msgspec structs, which
# Litestar encodes natively (no validation pass over data the database just gave us).
class NearbyStore(msgspec.Struct):
    name: str
    address: str | None
    lat: float
    lon: float
    geofence_m: int


class NearbyPhotoRules(msgspec.Struct):
    min_photos: int
    max_photos: int
    min_short_side_px: int


class NearbyTask(msgspec.Struct):
    task_id: uuid.UUID
    campaign_id: uuid.UUID
    title: str
    instructions: str
    store: NearbyStore
    distance_m: float
    reward_cents: int
    currency: str
    estimated_minutes: int
    reservation_minutes: int
    slots_left: int
    photo_rules: NearbyPhotoRules
    measured_minutes_median: float | None = None  # what people really took, reservation to submission


class NearbyPage(msgspec.Struct):
    items: list[NearbyTask]
