"""Idempotency keys: a retried POST (same key, same body) gets the first answer and has no new effect.

The key is claimed by an INSERT in the request's own transaction. A concurrent retry of the same
key waits on that row (PostgreSQL) or on the write lock (SQLite) until the first request commits,
then reads its stored answer; if the first request failed, its claim was rolled back with it and
the retry runs as if it were the first.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, Integer, String, UniqueConstraint, Uuid
from sqlmodel import Field, Session, SQLModel, col, delete, select, update

from fieldcheck.db import JSONType, UTCDateTime, insert_ignore, new_id, utcnow
from fieldcheck.errors import BadRequest, Conflict
from fieldcheck.i18n import _, text
from fieldcheck.jobs import JobContext, job

HEADER = "Idempotency-Key"
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
RETENTION = timedelta(days=7)


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("owner_id", "key"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    owner_id: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False))
    key: str = Field(sa_column=Column(String(255), nullable=False))
    request_hash: str = Field(sa_column=Column(String(64), nullable=False))
    status_code: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    response_body: Any = Field(default=None, sa_column=Column(JSONType, nullable=True))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True)
    )


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: Any


def require_key(value: str | None) -> str:
    if value is None:
        raise BadRequest(
            text(
                _(
                    "this request changes money or work: send an Idempotency-Key header (any unique string, "
                    "reused on retries)"
                )
            ),
            code="idempotency_key_required",
        )
    if not KEY_PATTERN.fullmatch(value):
        raise BadRequest(
            text(_("Idempotency-Key must be 1 to 255 printable ASCII characters")),
            code="invalid_idempotency_key",
        )
    return value


def fingerprint(method: str, path: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def claim(session: Session, *, owner_id: uuid.UUID, key: str, request_hash: str) -> Replay | None:
    """None: go ahead (and call `record` before the transaction ends). A Replay: answer with it."""
    if insert_ignore(
        session,
        IdempotencyRecord,
        id=new_id(),
        owner_id=owner_id,
        key=key,
        request_hash=request_hash,
        created_at=utcnow(),
    ):
        return None
    existing = session.exec(
        select(IdempotencyRecord).where(IdempotencyRecord.owner_id == owner_id, IdempotencyRecord.key == key)
    ).one()
    if existing.request_hash != request_hash:
        raise Conflict(
            text(
                _(
                    "this Idempotency-Key was already used for another request; use a new key for a new request"
                )
            ),
            code="idempotency_key_reused",
        )
    if existing.status_code is None:
        raise Conflict(
            text(_("the first request with this key is still being handled; retry shortly")),
            code="request_in_progress",
        )
    return Replay(existing.status_code, existing.response_body)


def record(session: Session, *, owner_id: uuid.UUID, key: str, status_code: int, body: Any) -> None:
    session.exec(
        update(IdempotencyRecord)
        .where(col(IdempotencyRecord.owner_id) == owner_id, col(IdempotencyRecord.key) == key)
        .values(status_code=status_code, response_body=body)
    )


def purge(session: Session) -> None:
    session.exec(delete(IdempotencyRecord).where(col(IdempotencyRecord.created_at) < utcnow() - RETENTION))


@job("idempotency.purge", every=timedelta(hours=6))
def purge_old_keys(ctx: JobContext) -> None:
    purge(ctx.session)
