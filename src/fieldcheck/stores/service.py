"""Stores of an organization: one at a time, or many from a CSV file (all or nothing)."""

from __future__ import annotations

import csv
import io
import math
import uuid
from dataclasses import dataclass
from typing import IO, Any

from sqlalchemy import func, or_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from fieldcheck.db import utcnow
from fieldcheck.errors import Conflict, Unprocessable
from fieldcheck.i18n import Text, _, text
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
            text(
                _("a store with external_ref {external_ref} already exists"),
                external_ref=repr(data.external_ref),
            ),
            code="external_ref_taken",
        ) from None
    return store


def _matching(organization_id: uuid.UUID, search: str | None) -> Any:
    """The organization's stores whose name, reference or address contains `search` (any case)."""
    query = select(Store).where(Store.organization_id == organization_id)
    words = (search or "").strip()
    if words:
        query = query.where(
            or_(
                col(Store.name).icontains(words, autoescape=True),
                col(Store.external_ref).icontains(words, autoescape=True),
                col(Store.address).icontains(words, autoescape=True),
            )
        )
    return query


def list_stores(
    session: Session,
    organization_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
    search: str | None = None,
) -> tuple[list[Store], str | None]:
    query = _matching(organization_id, search)
    return paginate(
        session, query, time_column=col(Store.created_at), id_column=col(Store.id), limit=limit, cursor=cursor
    )


def count_stores(session: Session, organization_id: uuid.UUID, search: str | None = None) -> int:
    query = _matching(organization_id, search).subquery()
    return int(session.exec(select(func.count()).select_from(query)).one())


def store_ids(session: Session, organization_id: uuid.UUID, search: str | None = None) -> list[uuid.UUID]:
    """Every matching store's id (all of them without `search`), oldest first."""
    found = _matching(organization_id, search).subquery()
    return list(session.exec(select(found.c.id).order_by(found.c.created_at, found.c.id)).all())


def ids_by_reference(
    session: Session, organization_id: uuid.UUID, references: list[str]
) -> tuple[list[uuid.UUID], list[str]]:
    """The stores with these external references, in the given order, and the references unknown."""
    wanted = list(dict.fromkeys(r.strip() for r in references if r.strip()))
    known: dict[str, uuid.UUID] = {}
    for start in range(0, len(wanted), UPSERT_BATCH):
        chunk = wanted[start : start + UPSERT_BATCH]
        known.update(
            (ref, store_id)
            for ref, store_id in session.exec(
                select(Store.external_ref, Store.id).where(
                    Store.organization_id == organization_id, col(Store.external_ref).in_(chunk)
                )
            ).all()
            if ref is not None
        )
    return [known[r] for r in wanted if r in known], [r for r in wanted if r not in known]


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
    lines = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
    errors: list[ImportLineError] = []
    rows: list[StoreRow] = []
    try:
        header_line = lines.readline()
    except UnicodeDecodeError:
        return [], [_line_error(1, None, text(_("the file is not UTF-8 text")))]
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    if not header_line.strip():
        return [], [_line_error(1, None, text(_("the file is empty")))]
    header = [h.strip().lower() for h in next(csv.reader([header_line], delimiter=delimiter), [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if missing or unknown or duplicated:
        parts: list[Text] = []
        if missing:
            parts.append(text(_("missing column(s): {columns}"), columns=", ".join(missing)))
        if unknown:
            parts.append(text(_("unknown column(s): {columns}"), columns=", ".join(unknown)))
        if duplicated:
            parts.append(text(_("repeated column(s): {columns}"), columns=", ".join(duplicated)))
        expected = ",".join(REQUIRED_COLUMNS) + "[,geofence_m]"
        listed = "; ".join(part.render() for part in parts)
        message = text(_("{problems} (expected header: {expected})"), problems=listed, expected=expected)
        return [], [_line_error(1, None, message)]

    index = {name: header.index(name) for name in header}
    seen: dict[str, int] = {}
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    line = 1
    try:
        for record in reader:
            line = reader.line_num + 1  # + the header line read before the reader started
            if not any(field.strip() for field in record):
                continue
            if len(rows) + len(errors) >= max_rows:
                errors.append(_line_error(line, None, text(_("more than {limit} rows"), limit=max_rows)))
                break
            row, problems = _parse_record(record, index, line)
            if row is not None and not problems:
                first = seen.get(row.external_ref)
                if first is not None:
                    problems.append(
                        _line_error(
                            line,
                            "external_ref",
                            text(
                                _("external_ref {external_ref} already appears on line {first}"),
                                external_ref=repr(row.external_ref),
                                first=first,
                            ),
                        )
                    )
                else:
                    seen[row.external_ref] = line
            if problems:
                errors.extend(problems)
            elif row is not None:
                rows.append(row)
    except UnicodeDecodeError:
        errors.append(_line_error(line + 1, None, text(_("this line is not UTF-8 text"))))
    except csv.Error as exc:
        errors.append(_line_error(line + 1, None, text(_("malformed CSV: {error}"), error=str(exc))))
    finally:
        lines.detach()
    return rows, errors


def _parse_record(
    record: list[str], index: dict[str, int], line: int
) -> tuple[StoreRow | None, list[ImportLineError]]:
    problems: list[ImportLineError] = []
    if len(record) != len(index):
        return None, [
            _line_error(
                line,
                None,
                text(
                    _("{count} fields where the header has {expected}"),
                    count=len(record),
                    expected=len(index),
                ),
            )
        ]
    values = {name: record[position].strip() for name, position in index.items()}
    for name in ("external_ref", "name"):
        if not values[name]:
            problems.append(_line_error(line, name, text(_("{field} is missing"), field=name)))
    for name, longest in MAX_FIELD_LENGTH.items():
        if len(values[name]) > longest:
            problems.append(_line_error(line, name, text(_("longer than {limit} characters"), limit=longest)))
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
                _line_error(
                    line,
                    "geofence_m",
                    text(
                        _("{value} is not a whole number of metres in 1..{limit}"),
                        value=repr(raw_geofence),
                        limit=MAX_GEOFENCE_M,
                    ),
                )
            )
    if problems or lat is None or lon is None:
        return None, problems
    return (
        StoreRow(values["external_ref"], values["name"], values["address"] or None, lat, lon, geofence),
        problems,
    )


def _line_error(line: int, field: str | None, message: Text) -> ImportLineError:
    """A problem of the file, written in the language of the request being served."""
    return ImportLineError(line=line, field=field, message=message.render())


def _coordinate(raw: str, field: str, bound: int, line: int, problems: list[ImportLineError]) -> float | None:
    if not raw:
        problems.append(_line_error(line, field, text(_("{field} is missing"), field=field)))
        return None
    try:
        value = float(raw)
    except ValueError:
        problems.append(_line_error(line, field, text(_("{value} is not a number"), value=repr(raw))))
        return None
    if not math.isfinite(value) or not -bound <= value <= bound:
        problems.append(
            _line_error(line, field, text(_("{value} is outside -{bound}..{bound}"), value=raw, bound=bound))
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
            text(_("{count} problem(s) in the file; nothing was imported"), count=len(errors)),
            code="invalid_store_file",
            errors=[e.model_dump() for e in errors],
        )
    if not rows:
        raise Unprocessable(
            text(_("the file has a header but no stores")), code="invalid_store_file", errors=[]
        )
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
