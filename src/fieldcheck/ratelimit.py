"""Rate limits shared by every process of a deployment: fixed-window counters in the database.

Each event adds one to the counter of its (bucket, key, window) row with a single
INSERT ... ON CONFLICT DO UPDATE ... RETURNING, so concurrent requests on any number of API
processes count exactly, without a read-then-write race and without another service. Counters
are written in their own short transaction: an attempt counts even when the request that made it
fails afterwards.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, Index, Integer, String, delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel, col

from fieldcheck.db import Database, UTCDateTime, utcnow


class RateCounter(SQLModel, table=True):
    __tablename__ = "rate_counters"
    __table_args__ = (Index("ix_rate_counters_expires_at", "expires_at"),)

    bucket: str = Field(sa_column=Column(String(40), primary_key=True))
    key: str = Field(sa_column=Column(String(100), primary_key=True))
    # floor(epoch seconds / window length): which window of the bucket this row counts.
    window: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    count: int = Field(sa_column=Column(Integer, nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class RateLimits:
    def __init__(self, database: Database) -> None:
        self._database = database

    def hit(
        self, bucket: str, key: str, *, limit: int, window_s: int, now: float | None = None
    ) -> int | None:
        """Count one event of `key`; None when within `limit` per window, else seconds to wait."""
        now = time.time() if now is None else now
        window = math.floor(now / window_s)
        ends = (window + 1) * window_s
        table = RateCounter.__table__  # type: ignore[attr-defined]
        dialect_insert = pg_insert if self._database.is_postgres else sqlite_insert
        statement = (
            dialect_insert(table)
            .values(
                bucket=bucket,
                key=key[:100],
                window=window,
                count=1,
                expires_at=datetime.fromtimestamp(ends, UTC),
            )
            .on_conflict_do_update(
                index_elements=["bucket", "key", "window"], set_={"count": table.c.count + 1}
            )
            .returning(table.c.count)
        )
        with self._database.transaction() as session:
            count = int(session.connection().execute(statement).scalar_one())
        if count <= limit:
            return None
        return max(1, math.ceil(ends - now))


def purge_finished_windows(session: Session) -> int:
    result = session.exec(delete(RateCounter).where(col(RateCounter.expires_at) < utcnow()))
    return int(result.rowcount or 0)
