"""Keyset pagination behind opaque cursors: stable under inserts, no OFFSET scans."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import tuple_
from sqlmodel import Session
from sqlmodel.sql.expression import SelectOfScalar

from fieldcheck.errors import BadRequest

T = TypeVar("T")


def encode_cursor(values: dict[str, Any]) -> str:
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise _invalid() from None
    if not isinstance(value, dict):
        raise _invalid()
    return value


def _invalid() -> BadRequest:
    return BadRequest("the cursor is not one this API gave out", code="invalid_cursor")


def paginate(
    session: Session,
    query: SelectOfScalar[T],
    *,
    time_column: Any,
    id_column: Any,
    limit: int,
    cursor: str | None,
    newest_first: bool = False,
) -> tuple[list[T], str | None]:
    """One page of `query` ordered by (time, id), and the cursor of the next page (or None)."""
    after = decode_cursor(cursor)
    key = tuple_(time_column, id_column)
    if after is not None:
        try:
            bound = tuple_(datetime.fromisoformat(str(after["t"])), uuid.UUID(str(after["i"])))
        except (KeyError, ValueError):
            raise _invalid() from None
        query = query.where(key < bound if newest_first else key > bound)
    order = (time_column.desc(), id_column.desc()) if newest_first else (time_column, id_column)
    rows = list(session.exec(query.order_by(*order).limit(limit + 1)).all())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, encode_cursor(
        {"t": getattr(last, time_column.key).isoformat(), "i": str(getattr(last, id_column.key))}
    )
