"""Tasks: discovery near a position, and the slot counters that reservations move."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import and_, case, exists, or_, true
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, update

from fieldcheck.assignments.models import RELEASED, Assignment
from fieldcheck.campaigns.models import Campaign
from fieldcheck.errors import Unprocessable
from fieldcheck.geo import distances_m, local_scale_m, search_box
from fieldcheck.settings import Settings
from fieldcheck.stores.models import Store
from fieldcheck.tasks.models import Task
from fieldcheck.tasks.schemas import NearbyTask, StoreSummary

# The database ranks by a local flat-earth distance (exact to a fraction of a percent inside the
# search radius); the exact geodesic then ranks this many extra rows so ties near the cut-off
# come out right.
RANKING_MARGIN = 20


@dataclass(frozen=True)
class NearbyQuery:
    lat: float
    lon: float
    radius_m: float
    limit: int


def validate_nearby(query: NearbyQuery, settings: Settings) -> None:
    if query.radius_m > settings.nearby_max_radius_m:
        raise Unprocessable(
            f"radius_m may be at most {settings.nearby_max_radius_m}",
            code="radius_too_large",
            errors=[
                {"field": "radius_m", "message": f"at most {settings.nearby_max_radius_m}", "source": "query"}
            ],
        )
    if query.limit > settings.nearby_max_limit:
        raise Unprocessable(
            f"limit may be at most {settings.nearby_max_limit}",
            code="limit_too_large",
            errors=[{"field": "limit", "message": f"at most {settings.nearby_max_limit}", "source": "query"}],
        )


def candidates_statement(query: NearbyQuery, *, worker_id: uuid.UUID | None, now: datetime) -> Any:
    """The database part: open tasks with slots inside the search box, nearest first (approximately)."""
    box = search_box(query.lat, query.lon, query.radius_m)
    metres_per_lat, metres_per_lon = local_scale_m(query.lat)
    dlon = col(Task.lon) - query.lon
    wrapped = case((dlon > 180, dlon - 360), (dlon < -180, dlon + 360), else_=dlon)
    dx = wrapped * metres_per_lon
    dy = (col(Task.lat) - query.lat) * metres_per_lat
    approx_sq = (dx * dx + dy * dy).label("approx_sq")
    lon_ranges = [col(Task.lon).between(west, east) for west, east in box.lon_ranges]
    conditions = [
        col(Task.is_open) == true(),
        col(Task.lat_band).in_(box.bands),
        col(Task.lat).between(box.lat_min, box.lat_max),
        lon_ranges[0] if len(lon_ranges) == 1 else or_(*lon_ranges),
        col(Task.slots_taken) < col(Task.slots_total),
        or_(col(Task.starts_at).is_(None), col(Task.starts_at) <= now),
        or_(col(Task.ends_at).is_(None), col(Task.ends_at) > now),
    ]
    if worker_id is not None:
        # Tasks this worker holds or has done are left out: their own list shows those.
        conditions.append(
            ~exists().where(
                col(Assignment.task_id) == col(Task.id),
                col(Assignment.worker_id) == worker_id,
                col(Assignment.status).not_in([s.value for s in RELEASED]),
            )
        )
    near = (
        sa_select(
            col(Task.id).label("task_id"),
            col(Task.campaign_id).label("campaign_id"),
            col(Task.store_id).label("store_id"),
            col(Task.lat).label("lat"),
            col(Task.lon).label("lon"),
            (col(Task.slots_total) - col(Task.slots_taken)).label("slots_left"),
            approx_sq,
        )
        .where(and_(*conditions))
        .order_by(approx_sq)
        .limit(query.limit + RANKING_MARGIN)
        .subquery("near")
    )
    return (
        sa_select(
            near.c.task_id,
            near.c.campaign_id,
            near.c.lat,
            near.c.lon,
            near.c.slots_left,
            col(Campaign.title),
            col(Campaign.instructions),
            col(Campaign.reward_cents),
            col(Campaign.currency),
            col(Campaign.estimated_minutes),
            col(Campaign.reservation_minutes),
            col(Store.name),
            col(Store.address),
        )
        .join(Campaign, col(Campaign.id) == near.c.campaign_id)
        .join(Store, col(Store.id) == near.c.store_id)
    )


def rank_exactly(query: NearbyQuery, rows: list[Any]) -> list[NearbyTask]:
    if not rows:
        return []
    distances = distances_m(
        query.lat, query.lon, np.array([r.lat for r in rows]), np.array([r.lon for r in rows])
    )
    ranked = sorted(
        ((float(d), r) for d, r in zip(distances, rows, strict=True) if d <= query.radius_m),
        key=lambda pair: (pair[0], str(pair[1].task_id)),
    )
    return [
        NearbyTask(
            task_id=row.task_id,
            campaign_id=row.campaign_id,
            title=row.title,
            instructions=row.instructions,
            store=StoreSummary(name=row.name, address=row.address, lat=row.lat, lon=row.lon),
            distance_m=round(distance, 1),
            reward_cents=row.reward_cents,
            currency=row.currency,
            estimated_minutes=row.estimated_minutes,
            reservation_minutes=row.reservation_minutes,
            slots_left=row.slots_left,
        )
        for distance, row in ranked[: query.limit]
    ]


def nearby(
    session: Session, query: NearbyQuery, *, worker_id: uuid.UUID | None, now: datetime
) -> list[NearbyTask]:
    rows = list(session.connection().execute(candidates_statement(query, worker_id=worker_id, now=now)).all())
    return rank_exactly(query, rows)


def take_slot(session: Session, task_id: uuid.UUID) -> bool:
    """Hold one slot if one is left; the test is part of the UPDATE, so slots never oversell."""
    taken = session.exec(
        update(Task)
        .where(
            col(Task.id) == task_id,
            col(Task.is_open) == true(),
            col(Task.slots_taken) < col(Task.slots_total),
        )
        .values(slots_taken=col(Task.slots_taken) + 1)
        .returning(col(Task.id))
    ).first()
    return taken is not None


def release_slot(session: Session, task_id: uuid.UUID) -> None:
    session.exec(
        update(Task)
        .where(col(Task.id) == task_id, col(Task.slots_taken) > 0)
        .values(slots_taken=col(Task.slots_taken) - 1)
    )
