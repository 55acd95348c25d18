"""Keyset pagination behind opaque cursors: stable under inserts, no OFFSET scans.

Every list of the API is ordered by (a time, an id) and its cursor is where the last page ended,
encoded here and nowhere else.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, TypeVarTuple, overload

from sqlalchemy import tuple_
from sqlmodel import Session
from sqlmodel.sql.expression import Select, SelectOfScalar

from fieldcheck.errors import Unprocessable, field_error
from fieldcheck.i18n import _, text

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


@dataclass(frozen=True)
class Position:
    """Where a page ended: the (time, id) of its last row."""

    at: datetime
    id: uuid.UUID


def encode_cursor(position: Position) -> str:
    raw = json.dumps({"t": position.at.isoformat(), "i": str(position.id)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str | None) -> Position | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return Position(datetime.fromisoformat(str(value["t"])), uuid.UUID(str(value["i"])))
    except (binascii.Error, ValueError, UnicodeDecodeError, TypeError, KeyError):
        # Well-formed text, but not a cursor this API gave out: a rule no schema can state (422).
        raise Unprocessable(
            text(_("the cursor is not one this API gave out")),
            code="invalid_cursor",
            errors=[field_error("cursor", text(_("not a cursor of this list")), "query")],
        ) from None


@overload
def paginate(
    session: Session,
    query: SelectOfScalar[T],
    *,
    time_column: Any,
    id_column: Any,
    limit: int,
    cursor: str | None,
    newest_first: bool = False,
) -> tuple[list[T], str | None]: ...


@overload
def paginate(
    session: Session,
    query: Select[*Ts],
    *,
    time_column: Any,
    id_column: Any,
    limit: int,
    cursor: str | None,
    newest_first: bool = False,
    position_of: Callable[[tuple[*Ts]], Position],
) -> tuple[list[tuple[*Ts]], str | None]: ...


def paginate(
    session: Session,
    query: Any,
    *,
    time_column: Any,
    id_column: Any,
    limit: int,
    cursor: str | None,
    newest_first: bool = False,
    position_of: Callable[[Any], Position] | None = None,
) -> tuple[list[Any], str | None]:
    """One page of `query` ordered by (time, id), and the cursor of the next page (or None).

    `position_of` reads the (time, id) of a row when the rows are not the table model itself (a
    query of several entities).
    """
    after = decode_cursor(cursor)
    key = tuple_(time_column, id_column)
    if after is not None:
        bound = tuple_(after.at, after.id)
        query = query.where(key < bound if newest_first else key > bound)
    order = (time_column.desc(), id_column.desc()) if newest_first else (time_column, id_column)
    rows = list(session.exec(query.order_by(*order).limit(limit + 1)).all())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    if position_of is None:
        position = Position(getattr(last, time_column.key), getattr(last, id_column.key))
    else:
        position = position_of(last)
    return rows, encode_cursor(position)
