"""`fieldcheck bench nearby`: discovery at platform scale.

Loads tasks spread around city centres into a scratch database on the configured server (a new
PostgreSQL database, or a temporary SQLite file), then runs nearby queries from random positions
near those cities and prints the median and p99 of the database part and of the whole HTTP
request. On PostgreSQL with PostGIS available, the same queries also run with ST_DWithin and KNN
ordering on a GiST-indexed geography column, in the same run, for a ratio.
"""

from __future__ import annotations

import contextlib
import http.client
import math
import secrets
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import click
import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from fieldcheck import migrations
from fieldcheck.db import Database, normalize_database_url, utcnow
from fieldcheck.discovery.service import RANKING_MARGIN, NearbyQuery, candidates_query
from fieldcheck.geo import BAND_PER_DEGREE
from fieldcheck.settings import Settings

STORES_PER_TASK_GROUP = 5  # tasks = stores x campaigns
CITY_SIGMA_DEG = 0.08  # about 9 km: stores cluster around each centre
QUERY_SIGMA_DEG = 0.05


@dataclass
class Figures:
    median_ms: float
    p99_ms: float

    @classmethod
    def of(cls, samples: list[float]) -> Figures:
        ordered = sorted(samples)
        p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
        return cls(statistics.median(ordered) * 1000, p99 * 1000)

    def __str__(self) -> str:
        return f"median {self.median_ms:7.2f} ms   p99 {self.p99_ms:7.2f} ms"


@contextlib.contextmanager
def scratch_settings(base: Settings, keep: bool) -> Iterator[Settings]:
    """A database of its own: the benchmark never writes into the configured one."""
    if base.is_sqlite:
        home = Path(tempfile.mkdtemp(prefix="fieldcheck-bench-"))
        yield Settings(home=home, token_secret="bench-" + secrets.token_hex(16))
        if not keep:
            for path in sorted(home.rglob("*"), reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
            home.rmdir()
        return
    url = make_url(normalize_database_url(base.effective_database_url))
    name = f"fieldcheck_bench_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield Settings(
            home=Path(tempfile.mkdtemp(prefix="fieldcheck-bench-")),
            database_url=url.set(database=name).render_as_string(hide_password=False),
            token_secret="bench-" + secrets.token_hex(16),
        )
    finally:
        if not keep:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def city_centres(count: int, rng: np.random.Generator) -> np.ndarray:
    # Inhabited latitudes, all longitudes (some cities close to the antimeridian too).
    return np.column_stack([rng.uniform(-45, 62, count), rng.uniform(-180, 180, count)])


def _wrap_lon(lon: np.ndarray) -> np.ndarray:
    return ((lon + 180.0) % 360.0) - 180.0


def load(db: Database, *, tasks: int, cities: np.ndarray, rng: np.random.Generator) -> tuple[uuid.UUID, int]:
    """Insert an organization, stores, active campaigns and their tasks; returns (worker id, tasks)."""
    from fieldcheck.auth.models import Role
    from fieldcheck.auth.security import Passwords
    from fieldcheck.auth.service import create_user

    stores = max(1, tasks // STORES_PER_TASK_GROUP)
    campaigns = math.ceil(tasks / stores)
    centre = rng.integers(0, len(cities), stores)
    lats = np.clip(cities[centre, 0] + rng.normal(0, CITY_SIGMA_DEG, stores), -89.9, 89.9)
    lons = _wrap_lon(cities[centre, 1] + rng.normal(0, CITY_SIGMA_DEG, stores))
    organization_id = uuid.uuid4()
    now = utcnow()
    store_ids = [uuid.uuid4() for _ in range(stores)]
    campaign_ids = [uuid.uuid4() for _ in range(campaigns)]
    with db.transaction() as session:
        cheap = Passwords(Settings(argon2_time_cost=1, argon2_memory_kib=8192, argon2_parallelism=1))
        session.execute(
            text("INSERT INTO organizations (id, name, created_at) VALUES (:id, 'Bench Retail', :now)"),
            {"id": _uuid_param(db, organization_id), "now": _time_param(db, now)},
        )
        worker = create_user(
            session,
            cheap,
            email=f"bench-{secrets.token_hex(4)}@example.com",
            password="bench-worker-password-1",  # noqa: S106
            role=Role.worker,
        )
        worker_id = worker.id
    store_rows = (
        (
            _uuid_param(db, store_ids[i]),
            _uuid_param(db, organization_id),
            f"B{i}",
            f"Store {i}",
            f"{i} Bench Street",
            float(lats[i]),
            float(lons[i]),
            150,
            _time_param(db, now),
            _time_param(db, now),
        )
        for i in range(stores)
    )
    _bulk(
        db,
        "stores",
        (
            "id",
            "organization_id",
            "external_ref",
            "name",
            "address",
            "lat",
            "lon",
            "geofence_m",
            "created_at",
            "updated_at",
        ),
        store_rows,
    )
    campaign_rows = (
        (
            _uuid_param(db, campaign_ids[c]),
            _uuid_param(db, organization_id),
            f"Shelf check {c}",
            "Photograph the whole shelf.",
            300 + 50 * c,
            "EUR",
            15,
            2,
            120,
            72,
            1,
            5,
            1000,
            "active",
            _time_param(db, now),
            _time_param(db, now),
        )
        for c in range(campaigns)
    )
    _bulk(
        db,
        "campaigns",
        (
            "id",
            "organization_id",
            "title",
            "instructions",
            "reward_cents",
            "currency",
            "estimated_minutes",
            "slots_per_store",
            "reservation_minutes",
            "review_deadline_hours",
            "min_photos",
            "max_photos",
            "min_short_side_px",
            "status",
            "created_at",
            "activated_at",
        ),
        campaign_rows,
    )

    def task_rows() -> Iterator[tuple[Any, ...]]:
        made = 0
        for c in range(campaigns):
            for i in range(stores):
                if made == tasks:
                    return
                made += 1
                yield (
                    _uuid_param(db, uuid.uuid4()),
                    _uuid_param(db, campaign_ids[c]),
                    _uuid_param(db, store_ids[i]),
                    _uuid_param(db, organization_id),
                    float(lats[i]),
                    float(lons[i]),
                    math.floor(float(lats[i]) * BAND_PER_DEGREE),
                    2,
                    int(i % 7 == 0),
                    0,
                    _true(db),
                    _time_param(db, now),
                )

    _bulk(
        db,
        "tasks",
        (
            "id",
            "campaign_id",
            "store_id",
            "organization_id",
            "lat",
            "lon",
            "lat_band",
            "slots_total",
            "slots_taken",
            "slots_approved",
            "is_open",
            "created_at",
        ),
        task_rows(),
    )
    with db.engine.connect() as connection:
        if db.is_postgres:
            connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
        else:
            connection.exec_driver_sql("ANALYZE")
            connection.commit()
    return worker_id, tasks


def _uuid_param(db: Database, value: uuid.UUID) -> Any:
    return value if db.is_postgres else value.hex


def _time_param(db: Database, value: Any) -> Any:
    return value if db.is_postgres else value.replace(tzinfo=None).isoformat(sep=" ")


def _true(db: Database) -> Any:
    return True if db.is_postgres else 1


def _bulk(db: Database, table: str, columns: tuple[str, ...], rows: Iterator[tuple[Any, ...]]) -> None:
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if db.is_postgres:
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            cursor.execute("BEGIN IMMEDIATE")
            placeholders = ", ".join("?" for _ in columns)
            # Table and column names are this module's constants, never input.
            insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"  # noqa: S608
            batch: list[tuple[Any, ...]] = []
            for row in rows:
                batch.append(row)
                if len(batch) == 50_000:
                    cursor.executemany(insert, batch)
                    batch.clear()
            if batch:
                cursor.executemany(insert, batch)
            cursor.execute("COMMIT")
        raw.commit()
    finally:
        raw.close()


def query_positions(cities: np.ndarray, count: int, rng: np.random.Generator) -> list[tuple[float, float]]:
    centre = rng.integers(0, len(cities), count)
    lats = np.clip(cities[centre, 0] + rng.normal(0, QUERY_SIGMA_DEG, count), -89.9, 89.9)
    lons = _wrap_lon(cities[centre, 1] + rng.normal(0, QUERY_SIGMA_DEG, count))
    return [(float(a), float(b)) for a, b in zip(lats, lons, strict=True)]


def time_ours(
    db: Database, positions: list[tuple[float, float]], radius: float, limit: int, worker_id: uuid.UUID
) -> tuple[list[float], list[int]]:
    samples, counts = [], []
    now = utcnow()
    with db.session(read_only=True) as session:
        connection = session.connection()
        for lat, lon in positions:
            started = time.perf_counter()
            search = NearbyQuery(lat, lon, radius, limit)
            statement, parameters = candidates_query(search, worker_id=worker_id, now=now)
            rows = connection.execute(statement, parameters).all()
            samples.append(time.perf_counter() - started)
            counts.append(len(rows))
    return samples, counts


POSTGIS_QUERY = text(
    """
    SELECT near.task_id, near.campaign_id, near.lat, near.lon, near.slots_left, c.title, c.instructions,
           c.reward_cents, c.currency, c.estimated_minutes, c.reservation_minutes, s.name, s.address
    FROM (
        SELECT t.id AS task_id, t.campaign_id, t.store_id, t.lat, t.lon, t.slots_total - t.slots_taken AS slots_left
        FROM tasks t
        WHERE t.is_open AND t.slots_taken < t.slots_total
          AND (t.starts_at IS NULL OR t.starts_at <= :now) AND (t.ends_at IS NULL OR t.ends_at > :now)
          AND ST_DWithin(t.geog, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, :radius)
          AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.task_id = t.id AND a.worker_id = :worker
                          AND a.status NOT IN ('cancelled', 'expired'))
        ORDER BY t.geog <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography
        LIMIT :limit
    ) near
    JOIN campaigns c ON c.id = near.campaign_id
    JOIN stores s ON s.id = near.store_id
    """
)


def prepare_postgis(db: Database) -> str | None:
    """Add a GiST-indexed geography column when PostGIS can be created; None, or why not."""
    try:
        with db.engine.begin() as connection:
            connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
            connection.exec_driver_sql("ALTER TABLE tasks ADD COLUMN geog geography(Point, 4326)")
            connection.exec_driver_sql(
                "UPDATE tasks SET geog = ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geography"
            )
            connection.exec_driver_sql(
                "CREATE INDEX ix_tasks_open_geog ON tasks USING gist (geog) WHERE is_open"
            )
        with db.engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE tasks")
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return None


def time_postgis(
    db: Database, positions: list[tuple[float, float]], radius: float, limit: int, worker_id: uuid.UUID
) -> tuple[list[float], list[int]]:
    samples, counts = [], []
    now = utcnow()
    with db.engine.connect() as connection:
        for lat, lon in positions:
            params = {
                "lat": lat,
                "lon": lon,
                "radius": radius,
                "limit": limit + RANKING_MARGIN,
                "worker": worker_id,
                "now": now,
            }
            started = time.perf_counter()
            rows = connection.execute(POSTGIS_QUERY, params).all()
            samples.append(time.perf_counter() - started)
            counts.append(len(rows))
    return samples, counts


def _wait_until_live(port: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/health/live")
            if connection.getresponse().status == 200:
                connection.close()
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def time_http(
    settings: Settings, positions: list[tuple[float, float]], radius: float, limit: int, worker_id: uuid.UUID
) -> list[float]:
    """Whole requests against `fieldcheck serve` in its own process, over loopback with keep-alive."""
    import os
    import socket
    import subprocess
    import sys

    from fieldcheck.auth.models import Role
    from fieldcheck.auth.security import Tokens

    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDCHECK_")}
    env.update(
        FIELDCHECK_HOME=str(settings.home),
        FIELDCHECK_DATABASE_URL=settings.effective_database_url,
        FIELDCHECK_TOKEN_SECRET=settings.secret.decode(),
        FIELDCHECK_RUN_SCHEDULER="false",
        FIELDCHECK_INPROCESS_WORKER="false",  # as in the scale-out shape: API processes serve requests only
        FIELDCHECK_AUTO_MIGRATE="false",
        FIELDCHECK_LOG_LEVEL="WARNING",
    )
    server = subprocess.Popen(  # noqa: S603 - our own command line
        [sys.executable, "-m", "fieldcheck.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    token = Tokens(settings).issue(user_id=worker_id, role=Role.worker.value, organization_id=None)
    headers = {"Authorization": f"Bearer {token}"}
    samples = []
    try:
        _wait_until_live(port)
        # A plain keep-alive HTTP/1.1 connection: the figure is the server's, not a client library's.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for warm_up in (True, False):
            for lat, lon in positions[:20] if warm_up else positions:
                query = urlencode({"lat": lat, "lon": lon, "radius_m": radius, "limit": limit})
                started = time.perf_counter()
                connection.request("GET", f"/api/v1/tasks/nearby?{query}", headers=headers)
                answer = connection.getresponse()
                answer.read()
                elapsed = time.perf_counter() - started
                if answer.status != 200:
                    raise RuntimeError(f"nearby answered {answer.status}")
                if not warm_up:
                    samples.append(elapsed)
        connection.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return samples


def run(
    settings: Settings,
    *,
    tasks: int,
    cities: int,
    queries: int,
    radius: float,
    limit: int,
    seed: int,
    keep: bool,
    echo: Any = click.echo,
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    centres = city_centres(cities, rng)
    with scratch_settings(settings, keep) as scratch:
        migrations.upgrade(scratch)
        db = Database(scratch)
        try:
            kind = "PostgreSQL" if db.is_postgres else "SQLite"
            echo(f"loading {tasks:,} tasks around {cities} cities into a scratch {kind} database ...")
            started = time.perf_counter()
            worker_id, _ = load(db, tasks=tasks, cities=centres, rng=rng)
            echo(f"  loaded in {time.perf_counter() - started:.1f} s")
            positions = query_positions(centres, queries, rng)
            time_ours(db, positions[:20], radius, limit, worker_id)  # warm the caches
            ours, counts = time_ours(db, positions, radius, limit, worker_id)
            result: dict[str, Any] = {
                "database": kind,
                "tasks": tasks,
                "queries": queries,
                "median_rows": statistics.median(counts),
            }
            result["db"] = Figures.of(ours)
            if db.is_postgres:
                why_not = prepare_postgis(db)
                if why_not is None:
                    time_postgis(db, positions[:20], radius, limit, worker_id)
                    postgis, _ = time_postgis(db, positions, radius, limit, worker_id)
                    result["postgis"] = Figures.of(postgis)
                    result["ratio_postgis"] = statistics.median(ours) / statistics.median(postgis)
                else:
                    result["postgis_skipped"] = why_not
            http = time_http(scratch, positions, radius, limit, worker_id)
            result["http"] = Figures.of(http)
            result["ratio_http"] = statistics.median(http) / statistics.median(ours)
        finally:
            db.dispose()
    echo(
        f"{queries} nearby queries, radius {radius:.0f} m, limit {limit} ({result['median_rows']:.0f} rows median)"
    )
    echo(f"  database part (ours)     {result['db']}")
    if "postgis" in result:
        echo(f"  database part (PostGIS)  {result['postgis']}")
        echo(f"  ratio ours / PostGIS (medians): {result['ratio_postgis']:.2f}")
    elif "postgis_skipped" in result:
        echo(f"  PostGIS not compared: {result['postgis_skipped']}")
    echo(f"  whole HTTP request       {result['http']}")
    echo(f"  ratio request / database part (medians): {result['ratio_http']:.2f}")
    return result


@click.command("nearby")
@click.option("--tasks", default=1_000_000, show_default=True)
@click.option("--cities", default=200, show_default=True)
@click.option("--queries", default=300, show_default=True)
@click.option("--radius", default=5000.0, show_default=True, help="metres")
@click.option("--limit", default=50, show_default=True)
@click.option("--seed", default=7, show_default=True)
@click.option("--keep", is_flag=True, help="Keep the scratch database.")
def nearby_command(
    tasks: int, cities: int, queries: int, radius: float, limit: int, seed: int, keep: bool
) -> None:
    """Load tasks into a scratch database and time nearby queries (database part and HTTP)."""
    run(
        Settings(),
        tasks=tasks,
        cities=cities,
        queries=queries,
        radius=radius,
        limit=limit,
        seed=seed,
        keep=keep,
    )
