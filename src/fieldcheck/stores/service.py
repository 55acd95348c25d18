"""Stores of an organization: one at a time, or many from a CSV file (all or nothing)."""

from __future__ import annotations

import csv
import io
import math
import uuid
from dataclasses import dataclass
from typing import IO, Any

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from fieldcheck.db import utcnow
from fieldcheck.errors import Conflict, Unprocessable
from fieldcheck.pagination import paginate
from fieldcheck.stores.models import DEFAULT_GEOFENCE_M, Store
from fieldcheck.stores.schemas import MAX_GEOFENCE_M, ImportLineError, StoreCreate
from fieldcheck.tasks import service as tasks

REQUIRED_COLUMNS = ("external_ref", "name", "address", "lat", "lon")
OPTIONAL_COLUMNS = ("geofence_m",)
UPSERT_BATCH = 1000
MAX_FIELD_LENGTH = {"external_ref": 100, "name": 200, "address": 500}


def create_store(session: Session, organization_id: uuid.UUID, data: StoreCreate) -> Store:
    store = Store(organization_id=organization_id, **data.model_dump())
    session.add(store)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(
            f"a store with external_ref {data.external_ref!r} already exists", code="external_ref_taken"
        ) from None
    return store


def list_stores(
    session: Session, organization_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[list[Store], str | None]:
    query = select(Store).where(Store.organization_id == organization_id)
    return paginate(
        session, query, time_column=col(Store.created_at), id_column=col(Store.id), limit=limit, cursor=cursor
    )


# CSV import ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StoreRow:
    external_ref: str
    name: str
    address: str | None
    lat: float
    lon: float
    geofence_m: int | None


def parse_store_csv(binary: IO[bytes], *, max_rows: int) -> tuple[list[StoreRow], list[ImportLineError]]:
    """Every valid row, and every problem with its line number (line 1 is the header)."""
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    errors: list[ImportLineError] = []
    rows: list[StoreRow] = []
    try:
        header_line = text.readline()
    except UnicodeDecodeError:
        return [], [ImportLineError(line=1, field=None, message="the file is not UTF-8 text")]
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    if not header_line.strip():
        return [], [ImportLineError(line=1, field=None, message="the file is empty")]
    header = [h.strip().lower() for h in next(csv.reader([header_line], delimiter=delimiter), [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if missing or unknown or duplicated:
        parts = []
        if missing:
            parts.append(f"missing column(s): {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown column(s): {', '.join(unknown)}")
        if duplicated:
            parts.append(f"repeated column(s): {', '.join(duplicated)}")
        expected = ",".join(REQUIRED_COLUMNS) + "[,geofence_m]"
        message = "; ".join(parts) + f" (expected header: {expected})"
        return [], [ImportLineError(line=1, field=None, message=message)]

    index = {name: header.index(name) for name in header}
    seen: dict[str, int] = {}
    reader = csv.reader(text, delimiter=delimiter, strict=True)
    line = 1
    try:
        for record in reader:
            line = reader.line_num + 1  # + the header line read before the reader started
            if not any(field.strip() for field in record):
                continue
            if len(rows) + len(errors) >= max_rows:
                errors.append(ImportLineError(line=line, field=None, message=f"more than {max_rows} rows"))
                break
            row, problems = _parse_record(record, index, line)
            if row is not None and not problems:
                first = seen.get(row.external_ref)
                if first is not None:
                    problems.append(
                        ImportLineError(
                            line=line,
                            field="external_ref",
                            message=f"external_ref {row.external_ref!r} already appears on line {first}",
                        )
                    )
                else:
                    seen[row.external_ref] = line
            if problems:
                errors.extend(problems)
            elif row is not None:
                rows.append(row)
    except UnicodeDecodeError:
        errors.append(ImportLineError(line=line + 1, field=None, message="this line is not UTF-8 text"))
    except csv.Error as exc:
        errors.append(ImportLineError(line=line + 1, field=None, message=f"malformed CSV: {exc}"))
    finally:
        text.detach()
    return rows, errors


def _parse_record(
    record: list[str], index: dict[str, int], line: int
) -> tuple[StoreRow | None, list[ImportLineError]]:
    problems: list[ImportLineError] = []
    if len(record) != len(index):
        return None, [
            ImportLineError(
                line=line, field=None, message=f"{len(record)} fields where the header has {len(index)}"
            )
        ]
    values = {name: record[position].strip() for name, position in index.items()}
    for name in ("external_ref", "name"):
        if not values[name]:
            problems.append(ImportLineError(line=line, field=name, message=f"{name} is missing"))
    for name, longest in MAX_FIELD_LENGTH.items():
        if len(values[name]) > longest:
            problems.append(
                ImportLineError(line=line, field=name, message=f"longer than {longest} characters")
            )
    lat = _coordinate(values["lat"], "lat", 90, line, problems)
    lon = _coordinate(values["lon"], "lon", 180, line, problems)
    geofence: int | None = None
    raw_geofence = values.get("geofence_m", "")
    if raw_geofence:
        try:
            geofence = int(raw_geofence)
            if not 0 < geofence <= MAX_GEOFENCE_M:
                raise ValueError
        except ValueError:
            problems.append(
                ImportLineError(
                    line=line,
                    field="geofence_m",
                    message=f"{raw_geofence!r} is not a whole number of metres in 1..{MAX_GEOFENCE_M}",
                )
            )
    if problems or lat is None or lon is None:
        return None, problems
    return (
        StoreRow(values["external_ref"], values["name"], values["address"] or None, lat, lon, geofence),
        problems,
    )


def _coordinate(raw: str, field: str, bound: int, line: int, problems: list[ImportLineError]) -> float | None:
    if not raw:
        problems.append(ImportLineError(line=line, field=field, message=f"{field} is missing"))
        return None
    try:
        value = float(raw)
    except ValueError:
        problems.append(ImportLineError(line=line, field=field, message=f"{raw!r} is not a number"))
        return None
    if not math.isfinite(value) or not -bound <= value <= bound:
        problems.append(
            ImportLineError(line=line, field=field, message=f"{raw} is outside -{bound}..{bound}")
        )
        return None
    return value


def import_stores(
    session: Session, organization_id: uuid.UUID, binary: IO[bytes], *, max_rows: int
) -> tuple[int, int]:
    """Create or update (by external_ref) every store of the file, or none; (created, updated)."""
    rows, errors = parse_store_csv(binary, max_rows=max_rows)
    if errors:
        raise Unprocessable(
            f"{len(errors)} problem(s) in the file; nothing was imported",
            code="invalid_store_file",
            errors=[e.model_dump() for e in errors],
        )
    if not rows:
        raise Unprocessable("the file has a header but no stores", code="invalid_store_file", errors=[])
    count = select(func.count()).select_from(Store).where(Store.organization_id == organization_id)
    before = session.exec(count).one()
    now = utcnow()
    # Rows without geofence_m keep the geofence a store already has (new stores get the default).
    with_geofence = [row for row in rows if row.geofence_m is not None]
    without_geofence = [row for row in rows if row.geofence_m is None]
    for group, update_geofence in ((with_geofence, True), (without_geofence, False)):
        for start in range(0, len(group), UPSERT_BATCH):
            _upsert(
                session,
                organization_id,
                group[start : start + UPSERT_BATCH],
                now,
                update_geofence=update_geofence,
            )
    created = session.exec(count).one() - before
    positions = select(Store.id, Store.organization_id, Store.lat, Store.lon).where(
        Store.organization_id == organization_id
    )
    tasks.follow_store_positions(session, organization_id, positions.subquery("moved_store"))
    return created, len(rows) - created


def _upsert(
    session: Session, organization_id: uuid.UUID, rows: list[StoreRow], now: Any, *, update_geofence: bool
) -> None:
    values = [
        {
            "id": uuid.uuid4(),
            "organization_id": organization_id,
            "external_ref": row.external_ref,
            "name": row.name,
            "address": row.address,
            "lat": row.lat,
            "lon": row.lon,
            "geofence_m": row.geofence_m or DEFAULT_GEOFENCE_M,
            "created_at": now,
            "updated_at": now,
        }
        for row in rows
    ]
    table = Store.__table__  # type: ignore[attr-defined]
    dialect_insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = dialect_insert(table)
    changes: dict[str, Any] = {
        name: statement.excluded[name] for name in ("name", "address", "lat", "lon", "updated_at")
    }
    if update_geofence:
        changes["geofence_m"] = statement.excluded.geofence_m
    # One compiled statement, many parameter sets: the driver batches them.
    session.connection().execute(
        statement.on_conflict_do_update(index_elements=["organization_id", "external_ref"], set_=changes),
        values,
    )
