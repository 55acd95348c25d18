"""Tasks: one campaign at one store, with slots. Made for a campaign, listed while it runs, and
counted: the slots assignments hold and the approved work that fills them.

Every counter moves in a conditional UPDATE, so concurrent reservations never oversell a slot and
the counts stay exact (the money verification checks them against the assignments).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, Subquery, func, insert, true
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select, update

from fieldcheck.db import sql_floor, utcnow
from fieldcheck.geo import BAND_PER_DEGREE, lat_band
from fieldcheck.tasks.models import Task

INSERT_CHUNK = 1000


@dataclass(frozen=True)
class StoreSpot:
    store_id: uuid.UUID
    lat: float
    lon: float


@dataclass(frozen=True)
class Slots:
    """A campaign's slots: all of them, those held by assignments, those filled by approved work."""

    tasks: int
    total: int
    taken: int
    approved: int
    tasks_done: int


def create_for_campaign(
    session: Session,
    *,
    campaign_id: uuid.UUID,
    organization_id: uuid.UUID,
    stores: Iterable[StoreSpot],
    slots: int,
    starts_at: datetime | None,
    ends_at: datetime | None,
) -> int:
    """One unlisted task per store; returns how many."""
    now = utcnow()
    rows = [
        {
            "id": uuid.uuid4(),
            "campaign_id": campaign_id,
            "store_id": spot.store_id,
            "organization_id": organization_id,
            "lat": spot.lat,
            "lon": spot.lon,
            "lat_band": lat_band(spot.lat),
            "slots_total": slots,
            "slots_taken": 0,
            "slots_approved": 0,
            "is_open": False,
            "starts_at": starts_at,
            "ends_at": ends_at,
            "created_at": now,
        }
        for spot in stores
    ]
    for start in range(0, len(rows), INSERT_CHUNK):
        session.connection().execute(insert(Task), rows[start : start + INSERT_CHUNK])
    return len(rows)


def set_listed(session: Session, campaign_id: uuid.UUID, listed: bool) -> None:
    """List the campaign's tasks to workers (an active campaign) or stop listing them."""
    session.exec(update(Task).where(col(Task.campaign_id) == campaign_id).values(is_open=listed))


def follow_store_positions(session: Session, organization_id: uuid.UUID, stores: Subquery) -> None:
    """Tasks carry their store's position for discovery: one set-based UPDATE keeps them in step.

    `stores` has the columns id, organization_id, lat and lon of the organization's stores.
    """
    lat = sa_select(stores.c.lat).where(stores.c.id == col(Task.store_id)).scalar_subquery()
    lon = sa_select(stores.c.lon).where(stores.c.id == col(Task.store_id)).scalar_subquery()
    moved = (
        sa_select(stores.c.id)
        .where(
            stores.c.id == col(Task.store_id),
            stores.c.organization_id == organization_id,
            (stores.c.lat != col(Task.lat)) | (stores.c.lon != col(Task.lon)),
        )
        .exists()
    )
    session.exec(
        update(Task)
        .where(col(Task.organization_id) == organization_id, moved)
        .values(lat=lat, lon=lon, lat_band=sql_floor(lat * BAND_PER_DEGREE))
    )


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


def count_approval(session: Session, task_id: uuid.UUID) -> bool:
    """One more approved assignment; True when the task now has approved work in every slot."""
    row = session.exec(
        update(Task)
        .where(col(Task.id) == task_id)
        .values(slots_approved=col(Task.slots_approved) + 1)
        .returning(col(Task.slots_approved), col(Task.slots_total))
    ).one()
    return int(row[0]) >= int(row[1])


def _slot_figures() -> Select[uuid.UUID, int, int, int, int, int]:
    return sa_select(
        col(Task.campaign_id),
        func.count(),
        func.coalesce(func.sum(Task.slots_total), 0),
        func.coalesce(func.sum(Task.slots_taken), 0),
        func.coalesce(func.sum(Task.slots_approved), 0),
        func.count().filter(col(Task.slots_approved) >= col(Task.slots_total)),
    ).group_by(col(Task.campaign_id))


def slots_of(session: Session, campaign_id: uuid.UUID) -> Slots:
    row = session.connection().execute(_slot_figures().where(col(Task.campaign_id) == campaign_id)).first()
    if row is None:
        return Slots(0, 0, 0, 0, 0)
    _, tasks, total, taken, approved, done = row
    return Slots(int(tasks), int(total), int(taken), int(approved), int(done))


def slots_by_campaign(session: Session) -> dict[uuid.UUID, Slots]:
    """Every campaign's slots in one query (for verification)."""
    return {
        row[0]: Slots(*(int(v) for v in row[1:]))
        for row in session.connection().execute(_slot_figures()).all()
    }


def undone_tasks(session: Session, campaign_id: uuid.UUID) -> int:
    """Tasks of the campaign still missing approved work in some slot."""
    return int(
        session.exec(
            select(func.count()).where(
                col(Task.campaign_id) == campaign_id, col(Task.slots_approved) < col(Task.slots_total)
            )
        ).one()
    )


def store_counts(session: Session, campaign_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """How many stores (tasks) each campaign covers."""
    if not campaign_ids:
        return {}
    rows = session.exec(
        select(col(Task.campaign_id), func.count())
        .where(col(Task.campaign_id).in_(campaign_ids))
        .group_by(col(Task.campaign_id))
    ).all()
    return {campaign_id: int(count) for campaign_id, count in rows}
