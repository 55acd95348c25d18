"""Which spatial search discovery uses on a database, and the PostGIS index it needs.

- `postgis`: PostgreSQL with the PostGIS extension. Tasks have a `geog` column (geography,
  generated from lat and lon by the database itself, so every write of a task keeps it in step)
  under a partial GiST index on open tasks; the search is `ST_DWithin` for the radius and KNN
  ordering (`<->`) for the page, which walks the index nearest first and stops after the page.
- `nearest-first` (SQLite, the embedded default): the band index `(lat_band, lon, lat)` on open
  tasks read in growing boxes around the worker, smallest first, until the page is known to be
  complete: a dense city reads a few hundred metres around the worker, not the whole radius.
- `portable` (a PostgreSQL without PostGIS, or `FIELDCHECK_NEARBY_SEARCH=portable`): the whole
  search box read through the band index in one statement.

All three give the same page: the database picks candidates, and the same exact geodesic ranking
(with the task id to break ties) orders them.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any, Literal

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

log = logging.getLogger("fieldcheck.discovery")

SearchKind = Literal["postgis", "nearest-first", "portable"]

GEOG_COLUMN = (
    "ALTER TABLE tasks ADD COLUMN IF NOT EXISTS geog geography(Point, 4326) "
    "GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geography) STORED"
)
GEOG_INDEX = "CREATE INDEX IF NOT EXISTS ix_tasks_open_geog ON tasks USING gist (geog) WHERE is_open"
WHAT_TO_DO = (
    "discovery uses the portable query (it reads every open task inside the search box). For "
    "nearest-first search with a GiST index, install PostGIS for this server (Debian and Ubuntu: "
    "apt-get install postgresql-<version>-postgis-3; managed PostgreSQL: allow the `postgis` "
    "extension), then run `fieldcheck db enable-postgis` once (or CREATE EXTENSION postgis as a "
    "superuser first, if fieldcheck's role may not)."
)


def enable_postgis(connection: Connection) -> str | None:
    """Create the extension (when it may), the generated column and its index; None when done,
    or why not. Idempotent; a failure leaves the transaction as it was (a savepoint)."""
    try:
        with connection.begin_nested():
            connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
            connection.exec_driver_sql(GEOG_COLUMN)
            connection.exec_driver_sql(GEOG_INDEX)
    except Exception as exc:  # not installed, or no right to create it: the reason is the answer
        return str(exc).splitlines()[0]
    return None


def disable_postgis(connection: Connection) -> None:
    """The index and column only: the extension may serve other tables."""
    connection.exec_driver_sql("DROP INDEX IF EXISTS ix_tasks_open_geog")
    connection.exec_driver_sql("ALTER TABLE tasks DROP COLUMN IF EXISTS geog")


def has_postgis_column(connection: Connection) -> bool:
    found = connection.execute(
        text(
            "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('tasks') AND attname = 'geog' "
            "AND NOT attisdropped"
        )
    ).first()
    return found is not None


# By connection pool: an engine and the engines derived from it with other execution options (a
# Database's reading engine) share their pool, and so their database.
_KINDS: weakref.WeakKeyDictionary[Any, SearchKind] = weakref.WeakKeyDictionary()


def search_kind(engine: Engine, setting: str = "auto") -> SearchKind:
    """The search this database allows (read once per engine: `fieldcheck enable-postgis` and
    migrations run before the processes that search start)."""
    if setting == "portable":
        return "portable"
    if engine.dialect.name == "sqlite":
        return "nearest-first"
    known = _KINDS.get(engine.pool)
    if known is None:
        with engine.connect() as connection:
            known = "postgis" if has_postgis_column(connection) else "portable"
        if known == "portable":
            log.warning("PostGIS is not set up on this database: %s", WHAT_TO_DO)
        _KINDS[engine.pool] = known
    return known


def forget(engine: Any) -> None:
    """Read the database's capability again at the next search (after enabling PostGIS)."""
    _KINDS.pop(engine.pool, None)


# What PostGIS adds that the models do not describe: migrations' comparisons leave it alone.
POSTGIS_OBJECTS = {("table", "spatial_ref_sys"), ("column", "geog"), ("index", "ix_tasks_open_geog")}


def include_in_comparison(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic's include_object: the PostGIS column, index and table are not the models' to drop."""
    return not (reflected and compare_to is None and (type_, name) in POSTGIS_OBJECTS)
