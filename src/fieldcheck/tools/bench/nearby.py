"""`fieldcheck bench nearby`: discovery at platform scale.

Loads tasks spread around city centres into a scratch database on the configured server (a new
PostgreSQL database, or a temporary SQLite file), then runs nearby queries from random positions
near those cities and prints the median and p99 of the database part of `service.nearby` for each
search kind the database allows (PostgreSQL: `postgis` and `portable`; SQLite: `nearest-first` and
`portable`), of the exact ranking, and of the whole HTTP request (default kind). On PostgreSQL with
PostGIS, PostGIS's own KNN query on the migration's `geog` column runs in the same run, as the
reference (twice: reading the page and 20 more, and the page alone). Every search and reference
query runs on a session of its own, as each request does. Several sizes (`--tasks 1000000,10000000`) load incrementally into the same database
and print the growth of the medians from the first size to the last.
"""

from __future__ import annotations

import contextlib
import http.client
import math
import secrets
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlencode

import click
import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError

from fieldcheck import migrations
from fieldcheck.db import Database, normalize_database_url, utcnow
from fieldcheck.discovery import service, spatial
from fieldcheck.discovery.service import RANKING_MARGIN, NearbyQuery
from fieldcheck.geo import BAND_PER_DEGREE
from fieldcheck.settings import Settings

CAMPAIGNS = 5  # tasks = stores x campaigns
CITY_SIGMA_DEG = 0.08  # about 9 km: stores cluster around each centre
QUERY_SIGMA_DEG = 0.05
CHUNK_ROWS = 500_000  # rows generated (numpy) and sent per COPY chunk
LOAD_MAINTENANCE_WORK_MEM = "1GB"
INDEX_BUILDERS = 2  # index builds at once, one connection each: one per core here


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
    home = Path(tempfile.mkdtemp(prefix="fieldcheck-bench-"))
    try:
        yield Settings(
            home=home,
            database_url=url.set(database=name).render_as_string(hide_password=False),
            token_secret="bench-" + secrets.token_hex(16),
        )
    finally:
        if not keep:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            shutil.rmtree(home, ignore_errors=True)
        admin.dispose()


def city_centres(count: int, rng: np.random.Generator) -> np.ndarray:
    # Inhabited latitudes, all longitudes (some cities close to the antimeridian too).
    return np.column_stack([rng.uniform(-45, 62, count), rng.uniform(-180, 180, count)])


def _wrap_lon(lon: np.ndarray) -> np.ndarray:
    return ((lon + 180.0) % 360.0) - 180.0


def _uuids(count: int, rng: np.random.Generator) -> np.ndarray:
    """Random version-4 UUIDs as a (count, 16) byte array."""
    raw = rng.integers(0, 256, (count, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    return raw


@dataclass
class Platform:
    """What is loaded so far: the worker, the campaigns, the stores (positions and ids)."""

    worker_id: uuid.UUID
    organization: bytes
    campaigns: np.ndarray  # (campaigns, 16) uuid bytes
    store_ids: np.ndarray = field(default_factory=lambda: np.empty((0, 16), np.uint8))
    lats: np.ndarray = field(default_factory=lambda: np.empty(0))
    lons: np.ndarray = field(default_factory=lambda: np.empty(0))
    tasks: int = 0


@dataclass
class LoadTimes:
    rows_s: float = 0.0
    geog_s: float = 0.0
    indexes_s: float = 0.0
    vacuum_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def total_s(self) -> float:
        return self.rows_s + self.geog_s + self.indexes_s + self.vacuum_s


def start_platform(db: Database, rng: np.random.Generator) -> Platform:
    """An organization, a worker and the active campaigns (no stores, no tasks yet)."""
    from fieldcheck.auth.models import Role
    from fieldcheck.auth.security import Passwords
    from fieldcheck.auth.service import create_user

    organization = uuid.UUID(bytes=_uuids(1, rng)[0].tobytes())
    campaigns = _uuids(CAMPAIGNS, rng)
    now = utcnow()
    with db.transaction() as session:
        cheap = Passwords(Settings(argon2_time_cost=1, argon2_memory_kib=8192, argon2_parallelism=1))
        session.execute(
            text("INSERT INTO organizations (id, name, created_at) VALUES (:id, 'Bench Retail', :now)"),
            {"id": _uuid_param(db, organization), "now": _time_param(db, now)},
        )
        worker = create_user(
            session,
            cheap,
            email=f"bench-{secrets.token_hex(4)}@example.com",
            password="bench-worker-password-1",  # noqa: S106
            role=Role.worker,
        )
        worker_id = worker.id
    campaign_rows = (
        (
            _uuid_param(db, uuid.UUID(bytes=campaigns[c].tobytes())),
            _uuid_param(db, organization),
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
        for c in range(CAMPAIGNS)
    )
    _bulk(db, "campaigns", CAMPAIGN_COLUMNS, campaign_rows)
    return Platform(worker_id=worker_id, organization=organization.bytes, campaigns=campaigns)


CAMPAIGN_COLUMNS = (
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
)
STORE_COLUMNS = (
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
)
TASK_COLUMNS = (
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
)


def grow(
    db: Database, platform: Platform, *, tasks: int, cities: np.ndarray, rng: np.random.Generator, geog: str
) -> LoadTimes:
    """New stores around the cities and their tasks, up to `tasks` in all; campaign by campaign,
    as campaigns create them. On PostgreSQL the indexes of stores and tasks are dropped for the load
    and built after it."""
    times = LoadTimes()
    first = len(platform.store_ids)
    added = math.ceil((tasks - platform.tasks) / CAMPAIGNS)
    centre = rng.integers(0, len(cities), added)
    lats = np.clip(cities[centre, 0] + rng.normal(0, CITY_SIGMA_DEG, added), -89.9, 89.9)
    lons = _wrap_lon(cities[centre, 1] + rng.normal(0, CITY_SIGMA_DEG, added))
    store_ids = _uuids(added, rng)
    platform.store_ids = np.concatenate([platform.store_ids, store_ids])
    platform.lats = np.concatenate([platform.lats, lats])
    platform.lons = np.concatenate([platform.lons, lons])
    counts = [min(added, max(0, tasks - platform.tasks - c * added)) for c in range(CAMPAIGNS)]
    if db.is_postgres:
        _grow_postgres(db, platform, first, counts, rng, geog, times)
    else:
        started = time.perf_counter()
        _bulk(db, "stores", STORE_COLUMNS, _store_rows(db, platform, first))
        for c, count in enumerate(counts):
            for start in range(0, count, CHUNK_ROWS):
                rows = _task_rows_sqlite(
                    db, platform, c, first + start, first + min(count, start + CHUNK_ROWS), rng
                )
                _bulk(db, "tasks", TASK_COLUMNS, rows)
        times.rows_s = time.perf_counter() - started
        started = time.perf_counter()
        with db.engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
            connection.commit()
        times.vacuum_s = time.perf_counter() - started
    platform.tasks += sum(counts)
    return times


def _store_rows(db: Database, platform: Platform, first: int) -> Iterator[tuple[Any, ...]]:
    now = _time_param(db, utcnow())
    organization = _uuid_param(db, uuid.UUID(bytes=platform.organization))
    for i in range(first, len(platform.store_ids)):
        yield (
            _uuid_param(db, uuid.UUID(bytes=platform.store_ids[i].tobytes())),
            organization,
            f"B{i}",
            f"Store {i}",
            f"{i} Bench Street",
            float(platform.lats[i]),
            float(platform.lons[i]),
            150,
            now,
            now,
        )


def _task_rows_sqlite(
    db: Database, platform: Platform, c: int, start: int, stop: int, rng: np.random.Generator
) -> Iterator[tuple[Any, ...]]:
    now = _time_param(db, utcnow())
    organization = platform.organization.hex()
    campaign = platform.campaigns[c].tobytes().hex()
    ids = _uuids(stop - start, rng)
    for k, i in enumerate(range(start, stop)):
        lat = float(platform.lats[i])
        yield (
            ids[k].tobytes().hex(),
            campaign,
            platform.store_ids[i].tobytes().hex(),
            organization,
            lat,
            float(platform.lons[i]),
            math.floor(lat * BAND_PER_DEGREE),
            2,
            int(i % 7 == 0),
            0,
            1,
            now,
        )


# Binary COPY: per row a field count, then each field's length and big-endian value.
_TASK_ROW = np.dtype(
    [
        ("fields", ">i2"),
        *[
            item
            for name, kind in (
                ("id", "V16"),
                ("campaign_id", "V16"),
                ("store_id", "V16"),
                ("organization_id", "V16"),
                ("lat", ">f8"),
                ("lon", ">f8"),
                ("lat_band", ">i2"),
                ("slots_total", ">i4"),
                ("slots_taken", ">i4"),
                ("slots_approved", ">i4"),
                ("is_open", "u1"),
                ("created_at", ">i8"),
            )
            for item in ((f"{name}_len", ">i4"), (name, kind))
        ],
    ]
)
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _task_chunk(platform: Platform, c: int, start: int, stop: int, rng: np.random.Generator) -> bytes:
    rows = np.zeros(stop - start, _TASK_ROW)
    rows["fields"] = len(TASK_COLUMNS)
    for name in TASK_COLUMNS:
        rows[f"{name}_len"] = _TASK_ROW[name].itemsize
    stores = np.arange(start, stop)
    rows["id"] = _uuids(stop - start, rng).view("V16").ravel()
    rows["campaign_id"] = platform.campaigns[c].view("V16")[0]
    rows["store_id"] = platform.store_ids[start:stop].view("V16").ravel()
    rows["organization_id"] = np.frombuffer(platform.organization, np.uint8).view("V16")[0]
    rows["lat"] = platform.lats[start:stop]
    rows["lon"] = platform.lons[start:stop]
    rows["lat_band"] = np.floor(platform.lats[start:stop] * BAND_PER_DEGREE)
    rows["slots_total"] = 2
    rows["slots_taken"] = stores % 7 == 0
    rows["is_open"] = 1
    rows["created_at"] = (utcnow() - _PG_EPOCH) // timedelta(microseconds=1)
    return rows.tobytes()


def _grow_postgres(
    db: Database,
    platform: Platform,
    first: int,
    counts: list[int],
    rng: np.random.Generator,
    geog: str,
    times: LoadTimes,
) -> None:
    started = time.perf_counter()
    with db.engine.begin() as connection:
        rebuild = [*_drop_indexes(connection, "stores"), *_drop_indexes(connection, "tasks")]
        postgis = spatial.has_postgis_column(connection)
        if postgis and geog == "after":
            spatial.disable_postgis(connection)
    times.indexes_s += time.perf_counter() - started
    started = time.perf_counter()
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        # Load-only settings: no wait for the WAL flush at commit, and the foreign keys of the
        # generated rows (consistent by construction) not checked row by row, as pg_restore
        # --disable-triggers does.
        cursor.execute("SET synchronous_commit = off")
        cursor.execute("SET session_replication_role = replica")
        with cursor.copy(f"COPY stores ({', '.join(STORE_COLUMNS)}) FROM STDIN") as copy:
            lines = []
            for row in _store_rows(db, platform, first):
                lines.append("\t".join(map(str, row)) + "\n")  # text rows: no escaping needed
                if len(lines) == CHUNK_ROWS // 5:
                    copy.write("".join(lines))
                    lines.clear()
            copy.write("".join(lines))
        with cursor.copy(f"COPY tasks ({', '.join(TASK_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(b"PGCOPY\n\xff\r\n\x00" + bytes(8))
            for c, count in enumerate(counts):
                for start in range(0, count, CHUNK_ROWS):
                    copy.write(
                        _task_chunk(platform, c, first + start, first + min(count, start + CHUNK_ROWS), rng)
                    )
            copy.write(b"\xff\xff")
        raw.commit()
    finally:
        raw.close()
    times.rows_s = time.perf_counter() - started
    times.notes.append("foreign keys of the loaded rows not checked (session_replication_role=replica)")
    times.notes.append("synchronous_commit=off")
    if postgis and geog == "after":
        started = time.perf_counter()
        with db.engine.begin() as connection:
            connection.exec_driver_sql(f"SET maintenance_work_mem = '{LOAD_MAINTENANCE_WORK_MEM}'")
            connection.exec_driver_sql(spatial.GEOG_COLUMN)  # rewrites the table
        times.geog_s = time.perf_counter() - started
    started = time.perf_counter()
    _build_indexes(db, rebuild)
    times.indexes_s += time.perf_counter() - started
    times.notes.append(
        f"indexes built after the load, {INDEX_BUILDERS} at once, maintenance_work_mem={LOAD_MAINTENANCE_WORK_MEM}"
    )
    started = time.perf_counter()
    with db.engine.connect() as connection:
        autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
        autocommit.exec_driver_sql("VACUUM (ANALYZE) stores")
        autocommit.exec_driver_sql("VACUUM (ANALYZE) tasks")
        # The loaded pages written out now, not by the checkpointer during the measurement.
        try:
            autocommit.exec_driver_sql("CHECKPOINT")
        except DBAPIError as exc:
            times.notes.append(f"no CHECKPOINT after the load ({str(exc.orig).splitlines()[0]})")
    times.vacuum_s = time.perf_counter() - started


@dataclass
class Rebuild:
    """One index to build again, then what rests on it (its constraint, foreign keys to it)."""

    table: str
    index: str
    create: str
    after: list[str]


def _drop_indexes(connection: Connection, table: str) -> list[Rebuild]:
    """Every index of the table, with its constraint and the foreign keys that lean on it."""
    found = connection.execute(
        text(
            """
            SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), c.conname,
                   pg_get_constraintdef(c.oid), c.contype
            FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
            WHERE i.indrelid = CAST(:table AS regclass)
            """
        ),
        {"table": table},
    ).all()
    rebuilds = []
    for index, create, constraint, definition, kind in found:
        after = []
        if constraint is not None:
            leaning = connection.execute(
                text(
                    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE contype = 'f' AND conindid = CAST(:index AS regclass)"
                ),
                {"index": index},
            ).all()
            for other, name, fk in leaning:
                connection.exec_driver_sql(f'ALTER TABLE {other} DROP CONSTRAINT "{name}"')
                after.append(f'ALTER TABLE {other} ADD CONSTRAINT "{name}" {fk}')
            connection.exec_driver_sql(f'ALTER TABLE {table} DROP CONSTRAINT "{constraint}"')
            using = "PRIMARY KEY" if kind == "p" else "UNIQUE"
            after.insert(
                0, f'ALTER TABLE {table} ADD CONSTRAINT "{constraint}" {using} USING INDEX "{index}"'
            )
            assert definition.startswith(using), definition
        else:
            connection.exec_driver_sql(f'DROP INDEX "{index}"')
        rebuilds.append(Rebuild(table, index, create, after))
    return rebuilds


def _build_indexes(db: Database, rebuilds: list[Rebuild]) -> None:
    def build(rebuild: Rebuild) -> None:
        with db.engine.begin() as connection:
            connection.exec_driver_sql(f"SET maintenance_work_mem = '{LOAD_MAINTENANCE_WORK_MEM}'")
            connection.exec_driver_sql("SET max_parallel_maintenance_workers = 0")  # one build per core
            connection.exec_driver_sql(rebuild.create)

    # The GiST index first: the longest build, so that the others share the second core meanwhile.
    ordered = sorted(rebuilds, key=lambda r: ("USING gist" not in r.create, r.table != "tasks"))
    with ThreadPoolExecutor(INDEX_BUILDERS) as pool:
        list(pool.map(build, ordered))
    with db.engine.begin() as connection:
        for rebuild in rebuilds:
            for statement in rebuild.after:
                if "FOREIGN KEY" not in statement:
                    connection.exec_driver_sql(statement)
        for rebuild in rebuilds:
            for statement in rebuild.after:
                if "FOREIGN KEY" in statement:
                    connection.exec_driver_sql(statement)


def _uuid_param(db: Database, value: uuid.UUID) -> Any:
    return value if db.is_postgres else value.hex


def _time_param(db: Database, value: Any) -> Any:
    return value if db.is_postgres else value.replace(tzinfo=None).isoformat(sep=" ")


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


@dataclass
class Timed:
    database: list[float] = field(default_factory=list)
    ranking: list[float] = field(default_factory=list)
    candidates: list[int] = field(default_factory=list)
    second_statements: list[int] = field(default_factory=list)


def time_searches(
    db: Database,
    positions: list[tuple[float, float]],
    radius: float,
    limit: int,
    worker_id: uuid.UUID,
    searches: list[str],
    *,
    reference: bool,
    request: Callable[[float, float], float],
) -> tuple[dict[str, Timed], dict[str, list[float]]]:
    """Each search of `searches` (`service.nearby` as the API calls it, split where its exact
    ranking starts: the database part is everything before) and PostGIS's reference queries, on
    each position in turn, in a rotating order: the machine's noise and the caches fall on all of
    them alike. The whole HTTP request (`request`) takes its turn by blocks of positions (the
    searches of a block, then its requests): a request between two searches would leave each one
    the other's cold caches, which neither meets in a server that answers requests back to back."""
    timed = {search: Timed() for search in searches}
    now = utcnow()
    real_ranking = service.rank_exactly
    real_statement = service.postgis_statement
    seconds: list[bool] = []

    def counted_statement(*, ties: bool = False) -> Any:
        seconds.append(ties)
        return real_statement(ties=ties)

    marks: list[float] = []
    counts: list[int] = []

    def marked_ranking(query: NearbyQuery, rows: list[Any]) -> Any:
        marks.append(time.perf_counter())
        counts.append(len(rows))
        return real_ranking(query, rows)

    runs: list[str] = [*searches, *(REFERENCES if reference else [])]
    samples: dict[str, list[float]] = {name: [] for name in [*REFERENCES, "http"]}
    with (
        mock.patch.object(service, "rank_exactly", marked_ranking),
        mock.patch.object(service, "postgis_statement", counted_statement),
    ):
        # Each search, and each reference query, on a session of its own, as each request has: its
        # connection comes from the pool, in the API's mode for reads (autocommit on PostgreSQL).
        for n, (lat, lon) in enumerate(positions):
            if n % HTTP_BLOCK == 0 and n:
                samples["http"].extend(request(*position) for position in positions[n - HTTP_BLOCK : n])
            for run in runs[n % len(runs) :] + runs[: n % len(runs)]:
                with db.session(read_only=True) as session:
                    if run in REFERENCES:
                        params = {
                            "lat": lat,
                            "lon": lon,
                            "radius": radius,
                            "limit": REFERENCES[run](limit),
                            "worker": worker_id,
                            "now": now,
                        }
                        started = time.perf_counter()
                        session.connection().execute(POSTGIS_QUERY, params).all()
                        samples[run].append(time.perf_counter() - started)
                        continue
                    seconds.clear()
                    started = time.perf_counter()
                    service.nearby(
                        session,
                        NearbyQuery(lat, lon, radius, limit),
                        worker_id=worker_id,
                        now=now,
                        search=run,
                    )
                    ended = time.perf_counter()
                timed[run].database.append(marks[-1] - started)
                timed[run].ranking.append(ended - marks[-1])
                timed[run].candidates.append(counts[-1])
                timed[run].second_statements.append(int(True in seconds))
        last_block = (len(positions) - 1) // HTTP_BLOCK * HTTP_BLOCK
        samples["http"].extend(request(*position) for position in positions[last_block:])
    return timed, samples


HTTP_BLOCK = 25


# PostGIS's own KNN query, as a PostGIS user writes it, with two LIMITs: `reference` reads the
# page and RANKING_MARGIN more (the rows the portable search ranks exactly; the reference of issue
# 18), `reference, page only` reads just the page, as an application content with the sphere's
# order and no tie-break would.
REFERENCES: dict[str, Callable[[int], int]] = {
    "reference": lambda limit: limit + RANKING_MARGIN,
    "reference, page only": lambda limit: limit,
}

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


class _IdleClosed(Exception):
    """The server closed the keep-alive connection while it was idle (uvicorn does after 5 s)."""


def _read_response(connection: Any) -> int:
    """Read one whole response (fieldcheck's answers carry a Content-Length); its status."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            if not data:
                raise _IdleClosed
            raise RuntimeError("the server closed the connection in the middle of a response")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    lengths = [int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length:")]
    if not lengths:
        raise RuntimeError(f"a response without Content-Length: {lines[0]!r}")
    while len(body) < lengths[0]:
        chunk = connection.recv(65536)
        if not chunk:
            raise RuntimeError("the server closed the connection in the middle of a response")
        body += chunk
    return int(lines[0].split()[1])


@contextlib.contextmanager
def serving(
    settings: Settings, radius: float, limit: int, worker_id: uuid.UUID
) -> Iterator[Callable[[float, float], float]]:
    """`fieldcheck serve` in its own process; yields a function that times one whole nearby request
    to it, over loopback, on one keep-alive HTTP/1.1 connection written and read by hand: the
    figure is the server's (http.client's own parsing added 0.13 ms a request to /health/live's
    0.16 ms on this machine)."""
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
        # One account asks hundreds of times a minute here: the request limit would answer 429.
        FIELDCHECK_RATE_LIMIT_NEARBY_PER_MINUTE="0",
    )
    server = subprocess.Popen(  # noqa: S603 - our own command line
        [sys.executable, "-m", "fieldcheck.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    token = Tokens(settings).issue(user_id=worker_id, role=Role.worker.value, organization_id=None)
    try:
        _wait_until_live(port)
        connections: list[socket.socket] = []

        def connect() -> socket.socket:
            connection = socket.create_connection(("127.0.0.1", port), timeout=30)
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connections.append(connection)
            return connection

        connection = connect()

        def request(lat: float, lon: float) -> float:
            nonlocal connection
            query = urlencode({"lat": lat, "lon": lon, "radius_m": radius, "limit": limit})
            sent = (
                f"GET /api/v1/tasks/nearby?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {token}\r\n\r\n"
            ).encode()
            for attempt in range(2):
                started = time.perf_counter()
                try:
                    connection.sendall(sent)
                    status = _read_response(connection)
                except (_IdleClosed, BrokenPipeError, ConnectionResetError):
                    if attempt:
                        raise
                    connection = connect()  # closed while idle between blocks: not timed
                    continue
                elapsed = time.perf_counter() - started
                if status != 200:
                    raise RuntimeError(f"nearby answered {status}")
                return elapsed
            raise AssertionError("unreachable")

        try:
            yield request
        finally:
            for each in connections:
                each.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def measure(
    db: Database,
    scratch: Settings,
    positions: list[tuple[float, float]],
    *,
    radius: float,
    limit: int,
    worker_id: uuid.UUID,
) -> dict[str, Any]:
    """Every figure at the size loaded now: each search kind, the reference, the HTTP request."""
    result: dict[str, Any] = {"kinds": {}}
    medians: dict[str, float] = {}
    default = spatial.search_kind(db.engine, "auto")
    reference = db.is_postgres and default == "postgis"
    searches = ["auto", "portable"]
    with serving(scratch, radius, limit, worker_id) as request:
        # Once to warm the caches (every search, and the server, reads the pages of every
        # position), then measured.
        for _ in range(2):
            timed, samples = time_searches(
                db, positions, radius, limit, worker_id, searches, reference=reference, request=request
            )
    for search in searches:
        kind = spatial.search_kind(db.engine, search)
        result["kinds"][kind] = (Figures.of(timed[search].database), Figures.of(timed[search].ranking))
        medians[kind] = statistics.median(timed[search].database)
        if kind == default:
            result["candidates"] = statistics.median(timed[search].candidates)
    if reference:
        result["references"] = {name: Figures.of(samples[name]) for name in REFERENCES}
        medians.update({name: statistics.median(samples[name]) for name in REFERENCES})
    elif db.is_postgres:
        result["postgis_skipped"] = "the migration could not set PostGIS up on this server"
    result["second_statements"] = sum(timed[searches[0]].second_statements)
    result["http"] = Figures.of(samples["http"])
    result["default"] = default
    result["ratio_http"] = statistics.median(samples["http"]) / medians[default]
    result["medians"] = medians
    return result


def report(result: dict[str, Any], *, tasks: int, queries: int, radius: float, limit: int, echo: Any) -> None:
    echo(
        f"{tasks:,} tasks: {queries} nearby queries, radius {radius:.0f} m, limit {limit} "
        f"({result['candidates']:.0f} candidate rows median)"
    )
    for kind, (database, _) in result["kinds"].items():
        default = " (default)" if kind == result["default"] else ""
        echo(f"  {'database part, ours: ' + kind + default:<50} {database}")
    if "references" in result:
        for name, figures in result["references"].items():
            echo(f"  {'database part, PostGIS KNN ' + name:<50} {figures}")
        for name in result["references"]:
            reference = result["medians"][name]
            ratios = ", ".join(
                f"{kind} {result['medians'][kind] / reference:.2f}" for kind in result["kinds"]
            )
            echo(f"  ratio ours / PostGIS {name} (medians): {ratios}")
    elif "postgis_skipped" in result:
        echo(f"  PostGIS not compared: {result['postgis_skipped']}")
    if result["default"] == "postgis":
        echo(
            f"  a second, bounded statement (a page not provably complete): "
            f"{result['second_statements']} of {queries} searches"
        )
    ranking = result["kinds"][result["default"]][1]
    echo(f"  {'exact ranking (Python, after the database)':<50} {ranking}")
    echo(f"  {'whole HTTP request (' + result['default'] + ')':<50} {result['http']}")
    echo(f"  ratio request / database part (medians): {result['ratio_http']:.2f}")


def run(
    settings: Settings,
    *,
    tasks: list[int],
    cities: int,
    queries: int,
    radius: float,
    limit: int,
    seed: int,
    keep: bool,
    geog: str = "copy",
    echo: Callable[[str], Any] = click.echo,
) -> dict[int, dict[str, Any]]:
    """Load each size in turn (the next size adds to the last) and measure it; the growth of the
    medians from the first size to the last comes from this one run."""
    rng = np.random.default_rng(seed)
    centres = city_centres(cities, rng)
    positions = query_positions(centres, queries, rng)
    results: dict[int, dict[str, Any]] = {}
    with scratch_settings(settings, keep) as scratch:
        migrations.upgrade(scratch)
        db = Database(scratch)
        try:
            name = "PostgreSQL" if db.is_postgres else "SQLite"
            platform = start_platform(db, rng)
            loading = 0.0
            for size in sorted(tasks):
                echo(
                    f"loading up to {size:,} tasks around {cities} cities into a scratch {name} database ..."
                )
                times = grow(db, platform, tasks=size, cities=centres, rng=rng, geog=geog)
                loading += times.rows_s
                parts = f"rows {times.rows_s:.1f} s, indexes {times.indexes_s:.1f} s, "
                if times.geog_s:
                    parts += f"geog column after the load {times.geog_s:.1f} s, "
                parts += f"{'VACUUM ' if db.is_postgres else ''}ANALYZE"
                parts += f"{' + CHECKPOINT' if db.is_postgres else ''} {times.vacuum_s:.1f} s"
                echo(
                    f"  {platform.tasks - max(results, default=0):,} tasks added in {times.total_s:.1f} s ({parts})"
                )
                if results:
                    echo(
                        f"  {platform.tasks:,} tasks in all: {loading + times.total_s - times.rows_s:.1f} s "
                        f"(the rows of every step, the indexes, "
                        f"{'VACUUM and CHECKPOINT' if db.is_postgres else 'ANALYZE'} of this one)"
                    )
                if times.notes:
                    echo(f"  load only, not as in production: {'; '.join(times.notes)}")
                results[platform.tasks] = measure(
                    db, scratch, positions, radius=radius, limit=limit, worker_id=platform.worker_id
                )
                report(
                    results[platform.tasks],
                    tasks=platform.tasks,
                    queries=queries,
                    radius=radius,
                    limit=limit,
                    echo=echo,
                )
        finally:
            db.dispose()
    if len(results) > 1:
        smallest, largest = min(results), max(results)
        growth = ", ".join(
            f"{kind} {results[largest]['medians'][kind] / results[smallest]['medians'][kind]:.2f}x"
            for kind in results[largest]["medians"]
        )
        echo(f"growth {smallest:,} -> {largest:,} tasks (ratio of medians, database part): {growth}")
    return results


def _sizes(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in value.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter("a number of tasks, or several separated by commas") from None
    if not sizes or min(sizes) < CAMPAIGNS:
        raise click.BadParameter(f"at least {CAMPAIGNS} tasks")
    return sizes


@click.command("nearby")
@click.option(
    "--tasks",
    default="1000000",
    show_default=True,
    callback=_sizes,
    help="Tasks to load; several sizes separated by commas (1000000,10000000) load one after the other "
    "into the same database and print the growth of the medians.",
)
@click.option("--cities", default=200, show_default=True)
@click.option("--queries", default=300, show_default=True)
@click.option("--radius", default=5000.0, show_default=True, help="metres")
@click.option("--limit", default=50, show_default=True)
@click.option("--seed", default=7, show_default=True)
@click.option(
    "--geog",
    type=click.Choice(["copy", "after"]),
    default="copy",
    show_default=True,
    help="PostgreSQL: compute the generated geog column during COPY, or drop it for the load and add it after.",
)
@click.option("--keep", is_flag=True, help="Keep the scratch database.")
def nearby_command(
    tasks: list[int], cities: int, queries: int, radius: float, limit: int, seed: int, geog: str, keep: bool
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
        geog=geog,
    )
