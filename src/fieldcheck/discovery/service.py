"""Discovery: the open tasks near a worker, nearest first, leaving out those the worker holds or did.

It reads tasks (positions, slots, schedule), their campaigns and stores, and the worker's own
assignments, in one statement per search shape.
"""

from __future__ import annotations

import functools
import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Float, Integer, Uuid, bindparam, case, func, literal_column, or_, true
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from fieldcheck.assignments.models import RELEASED, Assignment
from fieldcheck.campaigns.models import Campaign
from fieldcheck.db import UTCDateTime
from fieldcheck.discovery import spatial
from fieldcheck.discovery.schemas import NearbyPhotoRules, NearbyStore, NearbyTask
from fieldcheck.errors import Unprocessable, field_error
from fieldcheck.geo import distances_m, local_scale_m, search_box
from fieldcheck.i18n import _, text
from fieldcheck.settings import Settings
from fieldcheck.stores.models import Store
from fieldcheck.tasks.models import Task

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
            text(_("radius_m may be at most {limit}"), limit=settings.nearby_max_radius_m),
            code="radius_too_large",
            errors=[
                field_error(
                    "radius_m", text(_("at most {limit}"), limit=settings.nearby_max_radius_m), "query"
                )
            ],
        )
    if query.limit > settings.nearby_max_limit:
        raise Unprocessable(
            text(_("limit may be at most {limit}"), limit=settings.nearby_max_limit),
            code="limit_too_large",
            errors=[
                field_error("limit", text(_("at most {limit}"), limit=settings.nearby_max_limit), "query")
            ],
        )


# Bands a search may span: a radius at the cap spans at most this many 0.05-degree bands.
MAX_BANDS = 24
NIL_WORKER = uuid.UUID(int=0)


@functools.cache
def candidates_statement(bands: int, *, wraps: bool) -> Any:
    """The database part, built once per shape (number of latitude bands; antimeridian or not).

    Only bind parameters vary between calls, so SQLAlchemy reuses its compiled form and psycopg
    its server-side prepared statement. The bands come as an IN list so that the planner walks
    the index slice by slice; the index carries every column the inner query reads, so open
    tasks are found by an index-only scan and only the page's rows touch the table.
    """
    p = bindparam
    dlon: Any = col(Task.lon) - p("lon0", type_=Float)
    if wraps:
        dlon = case((dlon > 180, dlon - 360), (dlon < -180, dlon + 360), else_=dlon)
    dx = dlon * p("metres_per_lon", type_=Float)
    dy = (col(Task.lat) - p("lat0", type_=Float)) * p("metres_per_lat", type_=Float)
    approx_sq = (dx * dx + dy * dy).label("approx_sq")
    lon_range: Any = col(Task.lon).between(p("west1", type_=Float), p("east1", type_=Float))
    if wraps:
        lon_range = or_(lon_range, col(Task.lon).between(p("west2", type_=Float), p("east2", type_=Float)))
    near = (
        _candidates(approx_sq)
        .where(
            col(Task.lat_band).in_([p(f"band{i}", type_=Integer) for i in range(bands)]),
            col(Task.lat).between(p("lat_min", type_=Float), p("lat_max", type_=Float)),
            lon_range,
        )
        .order_by(approx_sq, col(Task.id))
        .limit(p("fetch", type_=Integer))
        .subquery("near")
    )
    return _with_details(near)


def _with_details(near: Any) -> Any:
    """The candidates with what a worker reads of each (campaign, store)."""
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
            col(Store.geofence_m),
            col(Campaign.min_photos),
            col(Campaign.max_photos),
            col(Campaign.min_short_side_px),
            col(Campaign.measured_minutes_median),
        )
        .join(Campaign, col(Campaign.id) == near.c.campaign_id)
        .join(Store, col(Store.id) == near.c.store_id)
    )


def _candidates(distance: Any) -> Any:
    """The columns both statements read of a task (and the distance they order by), of the tasks
    this worker may reserve now; where they are is the caller's condition."""
    p = bindparam
    now = p("now", type_=UTCDateTime)
    return sa_select(
        col(Task.id).label("task_id"),
        col(Task.campaign_id).label("campaign_id"),
        col(Task.store_id).label("store_id"),
        col(Task.lat).label("lat"),
        col(Task.lon).label("lon"),
        (col(Task.slots_total) - col(Task.slots_taken)).label("slots_left"),
        distance,
    ).where(
        col(Task.is_open) == true(),
        col(Task.slots_taken) < col(Task.slots_total),
        or_(col(Task.starts_at).is_(None), col(Task.starts_at) <= now),
        or_(col(Task.ends_at).is_(None), col(Task.ends_at) > now),
        # Tasks this worker holds or has done are left out. NOT IN over the worker's own
        # assignments is read once into a hash, instead of one probe per candidate.
        col(Task.id).not_in(_held_by(p("worker_id", type_=Uuid))),
    )


def _held_by(worker: Any) -> Any:
    """The tasks this worker holds or has done. The released statuses are written into the
    statement (not expanding parameters): its SQL is then the same on every call, so it is
    compiled once, and the planner matches the live-assignment partial index."""
    released: list[Any] = [literal_column(f"'{s.value}'") for s in sorted(RELEASED)]
    return sa_select(col(Assignment.task_id)).where(
        col(Assignment.worker_id) == worker, col(Assignment.status).not_in(released)
    )


@functools.cache
def postgis_statement(*, ties: bool = False) -> Any:
    """PostGIS: ST_DWithin bounds the search to the radius, KNN ordering (`<->`, on the GiST index
    of open tasks' generated `geog`) reads them nearest first and stops after the page; the
    conditions on slots, schedule and the worker's own tasks are filters of that same scan.

    Ordered by the KNN distance alone: a second key (the task id) would make the planner read and
    sort every task in the radius instead. Each row carries its KNN distance last, so that a page
    not provably complete can be read whole (`ties=True`: every task up to a KNN distance, in no
    order).
    """
    p = bindparam
    here = func.geography(
        # WGS84's SRID written in the statement, as PostGIS's own examples do, not as a parameter.
        func.ST_SetSRID(
            func.ST_MakePoint(p("lon0", type_=Float), p("lat0", type_=Float)), literal_column("4326")
        )
    )
    geog: Any = literal_column("tasks.geog")
    knn = geog.op("<->", return_type=Float)(here)
    near: Any = _candidates(knn.label("knn")).where(func.ST_DWithin(geog, here, p("reach", type_=Float)))
    if ties:
        near = near.where(knn <= p("knn_max", type_=Float))
    else:
        near = near.order_by(knn).limit(p("fetch", type_=Integer))
    near = near.subquery("near")
    return _with_details(near).add_columns(near.c.knn)


# PostGIS reads this many tasks beyond the page: enough for the page to be provably complete from
# the KNN distances alone in most searches (the sphere's margin below, and a store's tasks sharing
# one position at the cut); otherwise a second, bounded statement reads what could still be on it.
POSTGIS_MARGIN = 12


def _postgis(connection: Any, query: NearbyQuery, *, worker_id: uuid.UUID | None, now: datetime) -> list[Any]:
    """The nearest `limit + POSTGIS_MARGIN` by KNN distance; then, only when a task not read could
    still be on the page (a tie at the cut, or the sphere's ordering against WGS84's), every task
    that could be, up to a bounded distance. The exact ranking (geodesic, then task id) makes the
    page from these rows, the same on every engine."""
    fetch = query.limit + POSTGIS_MARGIN
    parameters: dict[str, Any] = {
        "lat0": query.lat,
        "lon0": query.lon,
        # A metre more than the radius: the exact ranking makes the cut, the same on every engine
        # (PostGIS's spheroid and ours agree to well under a millimetre).
        "reach": query.radius_m + 1.0,
        "now": now,
        "worker_id": worker_id or NIL_WORKER,
    }
    while True:
        rows = connection.execute(postgis_statement(), {**parameters, "fetch": fetch}).all()
        if len(rows) < fetch:
            return list(rows)  # every open task within the radius
        bound = _page_bound(query, sorted(row[-1] for row in rows))
        if bound is None:
            return list(rows)  # (the KNN distance last: the ranking reads the columns before it)
        # Every task that could be on the page: within `bound` on WGS84, so within
        # `bound / SPHERE_LOW` on the sphere.
        rows = connection.execute(
            postgis_statement(ties=True),
            {**parameters, "reach": bound + 1.0, "knn_max": bound / SPHERE_LOW + 1.0},
        ).all()
        # Each statement sees the tasks as they are when it runs (reads are autocommit). The page
        # lies within `bound` if `limit` of these rows surely do, or if `bound` is the radius;
        # otherwise a task of the page filled up between the two statements: again, reading more.
        surely_within = sum(1 for row in rows if row[-1] * SPHERE_HIGH <= bound)
        if bound >= query.radius_m or surely_within >= query.limit:
            return list(rows)
        fetch *= 2


# The KNN distance is on a sphere: a geodesic on WGS84 is within 0.6 % of it, either way.
SPHERE_LOW, SPHERE_HIGH = 0.99, 1.01


def _page_bound(query: NearbyQuery, knn: list[float]) -> float | None:
    """None when the rows read (a full fetch, KNN distances in order) surely hold the page;
    otherwise the geodesic distance within which the page surely lies.

    A task not read is at least `knn[-1]` away on the sphere, so at least `knn[-1] * SPHERE_LOW`
    on WGS84. The page ends at most at `knn[limit - 1] * SPHERE_HIGH` when that is inside the
    radius (`limit` rows read are surely that near), at the radius otherwise. A task not read can
    be on the page only if the page's end reaches it (an equal distance too: ties go by id).
    """
    page_end = knn[query.limit - 1] * SPHERE_HIGH
    bound = page_end if page_end <= query.radius_m else query.radius_m
    return None if bound < knn[-1] * SPHERE_LOW else bound


def candidates_query(
    query: NearbyQuery, *, worker_id: uuid.UUID | None, now: datetime
) -> tuple[Any, dict[str, Any]]:
    """The statement and its parameters for one search."""
    box = search_box(query.lat, query.lon, query.radius_m)
    bands = box.bands
    if len(bands) > MAX_BANDS:
        raise ValueError(f"a search spanning {len(bands)} latitude bands is over the cap of {MAX_BANDS}")
    metres_per_lat, metres_per_lon = local_scale_m(query.lat)
    wraps = len(box.lon_ranges) > 1 or box.lon_ranges[0] == (-180.0, 180.0)
    params: dict[str, Any] = {f"band{i}": band for i, band in enumerate(bands)}
    params.update(
        lat0=query.lat,
        lon0=query.lon,
        metres_per_lat=metres_per_lat,
        metres_per_lon=metres_per_lon,
        lat_min=box.lat_min,
        lat_max=box.lat_max,
        west1=box.lon_ranges[0][0],
        east1=box.lon_ranges[0][1],
        west2=box.lon_ranges[-1][0],
        east2=box.lon_ranges[-1][1],
        now=now,
        worker_id=worker_id or NIL_WORKER,
        fetch=query.limit + RANKING_MARGIN,
    )
    return candidates_statement(len(bands), wraps=wraps), params


def rank_exactly(query: NearbyQuery, rows: list[Any]) -> list[NearbyTask]:
    """Geodesic distances for the candidates; the nearest `limit` inside the radius, in order.

    Rows hold the columns of `_with_details` in order (and may carry more after them)."""
    if not rows:
        return []
    count = len(rows)
    distances = distances_m(
        query.lat,
        query.lon,
        np.fromiter((row[2] for row in rows), dtype=np.float64, count=count),
        np.fromiter((row[3] for row in rows), dtype=np.float64, count=count),
    ).tolist()
    radius = query.radius_m
    # Ties: by task id, so pages are stable.
    inside = sorted((d, rows[i][0].int, i) for i, d in enumerate(distances) if d <= radius)
    page = []
    for distance, _task, i in inside[: query.limit]:
        row = rows[i]
        page.append(
            NearbyTask(
                task_id=row[0],
                campaign_id=row[1],
                title=row[5],
                instructions=row[6],
                store=NearbyStore(name=row[11], address=row[12], lat=row[2], lon=row[3], geofence_m=row[13]),
                distance_m=round(distance, 1),
                reward_cents=row[7],
                currency=row[8],
                estimated_minutes=row[9],
                reservation_minutes=row[10],
                slots_left=row[4],
                photo_rules=NearbyPhotoRules(
                    min_photos=row[14], max_photos=row[15], min_short_side_px=row[16]
                ),
                measured_minutes_median=row[17],
            )
        )
    return page


# Nearest first on the band index: the first box's half-width is this share of the radius, and
# each next box doubles it, until the page is complete or the box is the whole radius.
FIRST_BOX_SHARE = 0.125
FIRST_BOX_MIN_M = 250.0


def nearby(
    session: Session,
    query: NearbyQuery,
    *,
    worker_id: uuid.UUID | None,
    now: datetime,
    search: str = "auto",
) -> list[NearbyTask]:
    connection = session.connection()
    kind = spatial.search_kind(connection.engine, search)
    if kind == "postgis":
        rows = _postgis(connection, query, worker_id=worker_id, now=now)
    elif kind == "nearest-first":
        rows = _nearest_first(connection, query, worker_id=worker_id, now=now)
    else:
        statement, parameters = candidates_query(query, worker_id=worker_id, now=now)
        rows = list(connection.execute(statement, parameters).all())
    return rank_exactly(query, rows)


def _nearest_first(
    connection: Any, query: NearbyQuery, *, worker_id: uuid.UUID | None, now: datetime
) -> list[Any]:
    """The portable statement on growing boxes: the rows it would give for the whole radius.

    The candidates of a box are ordered by the flat distance; the box holds the flat circle of its
    half-width (search_box pads it), so once `fetch` candidates lie within that circle, nothing
    outside the box can come before them: they are the first `fetch` of the whole radius.
    """
    fetch = query.limit + RANKING_MARGIN
    reach = min(query.radius_m, max(FIRST_BOX_MIN_M, query.radius_m * FIRST_BOX_SHARE))
    while True:
        box = NearbyQuery(query.lat, query.lon, reach, query.limit)
        statement, parameters = candidates_query(box, worker_id=worker_id, now=now)
        rows = list(connection.execute(statement, parameters).all())
        if reach >= query.radius_m:
            return rows
        # (The join to campaigns and stores keeps no order: the farthest is looked for.)
        if len(rows) == fetch and math.sqrt(_farthest_flat_sq(query, rows)) <= reach:
            return rows
        reach = min(query.radius_m, reach * 2)


def _farthest_flat_sq(query: NearbyQuery, rows: list[Any]) -> float:
    """The largest flat distance (squared) the statement ordered by, among its rows."""
    metres_per_lat, metres_per_lon = local_scale_m(query.lat)
    return float(
        max(
            (((row[3] - query.lon + 180.0) % 360.0 - 180.0) * metres_per_lon) ** 2
            + ((row[2] - query.lat) * metres_per_lat) ** 2
            for row in rows
        )
    )
