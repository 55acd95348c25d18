"""Discovery answers the same on every engine and search: PostGIS, SQLite's nearest-first band
index, and the portable query on both; and each answer is the exact one (every qualifying task's
geodesic distance, nearest first, ties by task id), over a few thousand tasks with ties, the
antimeridian and both poles."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from pyproj import Geod
from sqlalchemy import update
from sqlmodel import col

from fieldcheck.campaigns import service as campaigns
from fieldcheck.campaigns.schemas import CampaignCreate
from fieldcheck.db import Database, utcnow
from fieldcheck.discovery import service, spatial
from fieldcheck.discovery.service import NearbyQuery, nearby
from fieldcheck.geo import distances_m
from fieldcheck.organizations.service import create_organization
from fieldcheck.stores.models import Store
from fieldcheck.tasks.models import Task
from tests.support.backends import BackendFactory

# Places where searches go wrong first: a dense city, the antimeridian, next to each pole, and a
# block where many stores share one position (ties, more of them than a page).
CLUSTERS = [
    ("city", 48.8566, 2.3522, 0.05),
    ("antimeridian", -16.5, 179.995, 0.02),
    ("north pole", 89.97, 20.0, 0.02),
    ("south pole", -89.96, -150.0, 0.02),
]
TIES = ("ties", 35.6762, 139.6503)


def positions(rng: np.random.Generator) -> list[tuple[float, float]]:
    found: list[tuple[float, float]] = []
    for _, lat, lon, spread in CLUSTERS:
        lats = np.clip(lat + rng.normal(0, spread, 300), -89.999, 89.999)
        lons = (lon + rng.normal(0, spread * 3, 300) + 180) % 360 - 180
        found.extend(zip(lats.tolist(), lons.tolist(), strict=True))
    found.extend([(TIES[1], TIES[2])] * 120)  # one position, 120 stores
    # Rings at exact distances around the ties block: more ties, at other distances.
    for k in range(1, 6):
        found.extend([(TIES[1] + 0.001 * k, TIES[2]), (TIES[1] - 0.001 * k, TIES[2])] * 4)
    return found


def open_campaign(
    session: Any, settings: Any, organization_id: uuid.UUID, stores: list[Store], *, title: str, slots: int
) -> uuid.UUID:
    """A campaign over these stores, its tasks open; its id."""
    data = CampaignCreate(
        title=title,
        instructions="Photograph it.",
        reward_cents=500,
        currency="EUR",
        estimated_minutes=10,
        slots_per_store=slots,
        store_ids=[s.id for s in stores],
    )
    campaign = campaigns.create_campaign(session, organization_id, data, settings)
    session.exec(update(Task).where(col(Task.campaign_id) == campaign.id).values(is_open=True))
    return campaign.id


def seed(db: Database, settings: Any) -> None:
    """1,240 stores, two campaigns over all of them (2,480 tasks), some of them full or not started."""
    rng = np.random.default_rng(7)
    with db.transaction() as session:
        organization_id = create_organization(session, name="Everywhere").id
        stores = []
        for i, (lat, lon) in enumerate(positions(rng)):
            store = Store(
                organization_id=organization_id, name=f"S{i}", lat=lat, lon=lon, external_ref=f"S{i}"
            )
            session.add(store)
            stores.append(store)
        session.flush()
        for title in ("Shelf", "Fridge"):
            campaign_id = open_campaign(session, settings, organization_id, stores, title=title, slots=2)
            # The same task ids on every database (ties are ordered by id): from campaign and store.
            for store in stores:
                session.exec(
                    update(Task)
                    .where(col(Task.campaign_id) == campaign_id, col(Task.store_id) == store.id)
                    .values(id=uuid.uuid5(uuid.NAMESPACE_URL, f"{title}/{store.external_ref}"))
                )
        # Some tasks full, some not started yet: every search must leave them out.
        ids = sorted(
            uuid.uuid5(uuid.NAMESPACE_URL, f"{t}/S{i}")
            for t in ("Shelf", "Fridge")
            for i in range(len(stores))
        )
        session.exec(update(Task).where(col(Task.id).in_(ids[::7])).values(slots_taken=2))
        session.exec(
            update(Task).where(col(Task.id).in_(ids[3::11])).values(starts_at=utcnow() + timedelta(days=1))
        )


def exact(db: Database, query: NearbyQuery, now: Any) -> list[tuple[uuid.UUID, float]]:
    """The answer by brute force: every task that qualifies, its geodesic distance, in order."""
    with db.transaction(read_only=True) as session:
        every: list[Any] = list(session.exec(Task.__table__.select()).all())  # type: ignore[attr-defined]
    rows = [
        r
        for r in every
        if r.is_open
        and r.slots_taken < r.slots_total
        and (r.starts_at is None or r.starts_at <= now)
        and (r.ends_at is None or r.ends_at > now)
    ]
    distances = distances_m(
        query.lat, query.lon, np.array([r.lat for r in rows]), np.array([r.lon for r in rows])
    )
    inside = sorted(
        ((float(d), r.id) for d, r in zip(distances, rows, strict=True) if d <= query.radius_m),
        key=lambda pair: (pair[0], pair[1].int),
    )
    return [(task_id, round(d, 1)) for d, task_id in inside[: query.limit]]


def queries(rng: np.random.Generator) -> list[NearbyQuery]:
    found = []
    for _, lat, lon, spread in CLUSTERS:
        for radius, limit in ((500.0, 10), (5000.0, 50), (50_000.0, 100), (20_000.0, 5)):
            for _ in range(3):
                qlat = float(np.clip(lat + rng.normal(0, spread), -89.99, 89.99))
                qlon = float((lon + rng.normal(0, spread * 3) + 180) % 360 - 180)
                found.append(NearbyQuery(qlat, qlon, radius, limit))
    for radius, limit in ((10.0, 50), (300.0, 30), (1000.0, 100), (2000.0, 7)):
        found.append(NearbyQuery(TIES[1], TIES[2], radius, limit))
        found.append(NearbyQuery(TIES[1] + 0.0015, TIES[2], radius, limit))
    # From the other side of the antimeridian, and exactly at a pole.
    found.append(NearbyQuery(-16.5, -179.999, 5000.0, 50))
    found.append(NearbyQuery(90.0, 0.0, 50_000.0, 100))
    found.append(NearbyQuery(-90.0, 0.0, 50_000.0, 100))
    return found


def answers(db: Database, query: NearbyQuery, now: Any, search: str) -> list[tuple[uuid.UUID, float]]:
    with db.transaction(read_only=True) as session:
        return [
            (t.task_id, t.distance_m) for t in nearby(session, query, worker_id=None, now=now, search=search)
        ]


@pytest.fixture
def databases(backends: BackendFactory) -> Any:
    made = []
    for name in ("embedded", "services"):
        settings = backends.make(name)
        db = Database(settings)
        seed(db, settings)
        made.append((name, db))
    yield made
    for _, db in made:
        db.dispose()


def test_every_engine_and_search_gives_the_exact_page(
    databases: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[bool] = []
    statement = service.postgis_statement

    def spied(*, ties: bool = False) -> Any:
        asked.append(ties)
        return statement(ties=ties)

    monkeypatch.setattr(service, "postgis_statement", spied)
    now = utcnow()
    searched = queries(np.random.default_rng(11))
    kinds = {name: spatial.search_kind(db.engine) for name, db in databases}
    assert kinds == {"embedded": "nearest-first", "services": "postgis"}
    pages = 0
    for query in searched:
        truth = exact(databases[0][1], query, now)
        for name, db in databases:
            for search in ("auto", "portable"):
                assert answers(db, query, now, search) == truth, (name, search, query)
        pages += bool(truth)
    assert pages >= 0.8 * len(searched)  # most searches find something: the comparison means something
    assert any(len(exact(databases[0][1], q, now)) == q.limit for q in searched)  # full pages too
    assert True in asked  # a tie larger than the margin straddled the cut, and was read whole


def test_postgresql_without_postgis_searches_with_the_portable_query(databases: Any) -> None:
    (_, db) = databases[1]
    query = NearbyQuery(48.8566, 2.3522, 5000.0, 50)
    now = utcnow()
    with_postgis = answers(db, query, now, "auto")
    with db.engine.begin() as connection:
        spatial.disable_postgis(connection)
    spatial.forget(db.engine)
    try:
        assert spatial.search_kind(db.engine) == "portable"
        assert answers(db, query, now, "auto") == with_postgis
    finally:
        with db.engine.begin() as connection:
            assert spatial.enable_postgis(connection) is None
        spatial.forget(db.engine)
    assert spatial.search_kind(db.engine) == "postgis"


def test_postgis_reads_again_when_a_task_of_the_page_fills_up_between_its_two_statements(
    backends: BackendFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads are autocommit: the bounded second statement sees the tasks as they are then. When a
    task of the page fills up in between, fewer than `limit` lie within the bound, and the page
    must reach past it: the search reads again, and the answer is still the exact one."""
    settings = backends.make("services")
    db = Database(settings)
    try:
        here = (10.0, 10.0)
        geod = Geod(ellps="WGS84")
        # The page (limit 3) at 100, 200 and 300 m due east (on the sphere 0.12 % nearer); twelve
        # tasks just past the second statement's reach (300 m * 1.01 on the sphere, plus 1 m), yet
        # within the sphere's margin of the page (so the first statement cannot prove the page);
        # more far away.
        distances = [
            100.0,
            200.0,
            300.0,
            *(304.0 + 0.1 * k for k in range(12)),
            *(1000.0 + 50 * k for k in range(10)),
        ]
        with db.transaction() as session:
            organization_id = create_organization(session, name="Line").id
            stores = []
            for i, metres in enumerate(distances):
                lon, lat, _ = geod.fwd(here[1], here[0], 90.0, metres)
                stores.append(
                    Store(
                        organization_id=organization_id, name=f"L{i}", lat=lat, lon=lon, external_ref=f"L{i}"
                    )
                )
            session.add_all(stores)
            session.flush()
            open_campaign(session, settings, organization_id, stores, title="Line", slots=1)
            nearest = stores[0].id
        assert spatial.search_kind(db.engine) == "postgis"
        query = NearbyQuery(here[0], here[1], 5000.0, 3)
        now = utcnow()
        before = exact(db, query, now)
        asked: list[bool] = []
        statement = service.postgis_statement

        def filling(*, ties: bool = False) -> Any:
            if ties and True not in asked:
                with db.transaction() as other:
                    other.exec(update(Task).where(col(Task.store_id) == nearest).values(slots_taken=1))
            asked.append(ties)
            return statement(ties=ties)

        monkeypatch.setattr(service, "postgis_statement", filling)
        found = answers(db, query, now, "auto")
        after = exact(db, query, now)
        assert after != before  # the nearest task filled up: the page is another one
        assert found == after
        assert asked[:3] == [False, True, False]  # the second statement, then a new first one
    finally:
        db.dispose()
