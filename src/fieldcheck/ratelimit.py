"""Rate limits shared by every process of a deployment: fixed-window counters in the database.

Each event adds one to the counter of its (bucket, key, window) row with a single
INSERT ... ON CONFLICT DO UPDATE ... RETURNING, so concurrent requests on any number of API
processes count exactly, without a read-then-write race and without another service. Counters
are written in their own short transaction: an attempt counts even when the request that made it
fails afterwards.
"""

from __future__ import annotations

import math
import threading
import time
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import BigInteger, Column, Index, Integer, String, delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel, col

from fieldcheck.db import Database, UTCDateTime, utcnow
from fieldcheck.errors import TooManyRequests
from fieldcheck.i18n import _, text
from fieldcheck.settings import Settings


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


# Request limits per account and per client address ----------------------------------------------
# The work a phone does, limited so one account (or one address, many phones behind a carrier's
# NAT) cannot flood the rest: fixed windows, counted in Redis when FIELDCHECK_RATE_LIMIT_REDIS_URL
# is given (every API process shares them), in the process otherwise.
BUCKETS = {
    "nearby": ("rate_limit_nearby_per_minute", 60),
    "reservations": ("rate_limit_reservations_per_minute", 60),
    "photo_slots": ("rate_limit_photo_slots_per_minute", 60),
    "submissions": ("rate_limit_submissions_per_minute", 60),
    "exports": ("rate_limit_exports_per_hour", 3600),
}


class Counters(Protocol):
    def incr(self, key: str, window_s: int, now: float) -> tuple[int, float]:
        """Count one event of `key` in its current window: (count so far, when the window ends)."""
        ...


class LocalCounters:
    """In this process only (the embedded default, or one API process)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def incr(self, key: str, window_s: int, now: float) -> tuple[int, float]:
        window = math.floor(now / window_s)
        with self._lock:
            if len(self._counts) > 100_000:  # forget windows that ended
                self._counts = {k: v for k, v in self._counts.items() if k[1] >= math.floor(now / 3600) - 1}
            count = self._counts.get((key, window), 0) + 1
            self._counts[(key, window)] = count
        return count, (window + 1) * window_s


class RedisCounters:
    """Shared by every process that uses the same Redis: INCR and EXPIRE in one round trip."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._prefix = prefix

    def incr(self, key: str, window_s: int, now: float) -> tuple[int, float]:
        window = math.floor(now / window_s)
        name = f"{self._prefix}:rl:{key}:{window}"
        pipe = self._redis.pipeline(transaction=True)
        pipe.incr(name)
        pipe.expire(name, window_s + 5)
        count, _ = pipe.execute()
        return int(count), (window + 1) * window_s


class Throttle:
    def __init__(self, settings: Settings, counters: Counters) -> None:
        self.settings = settings
        self.counters = counters

    def check(
        self, bucket: str, *, account: object | None, address: str | None, now: float | None = None
    ) -> None:
        """Count one request of `bucket` for the account and the address; 429 with Retry-After when
        either is over its limit (a limit of 0 means none)."""
        name, window_s = BUCKETS[bucket]
        limit = int(getattr(self.settings, name))
        if limit <= 0:
            return
        now = time.time() if now is None else now
        factor = self.settings.rate_limit_address_factor
        keys = [(f"{bucket}:a:{account}", limit)] if account else []
        if address and factor > 0:
            keys.append((f"{bucket}:ip:{address}", limit * factor))
        for key, most in keys:
            count, ends = self.counters.incr(key, window_s, now)
            if count > most:
                wait = max(1, math.ceil(ends - now))
                raise TooManyRequests(
                    text(_("too many requests of this kind; try again in {wait} seconds"), wait=wait),
                    code="rate_limited",
                    retry_after_s=wait,
                )


def throttle_for(settings: Settings) -> Throttle:
    if settings.rate_limit_redis_url:
        return Throttle(settings, RedisCounters(settings.rate_limit_redis_url, settings.queue_prefix))
    return Throttle(settings, LocalCounters())


def caller_address(request: Any) -> str | None:
    """The client's address (behind trusted proxies, the one they saw; see fieldcheck.proxies)."""
    return request.client.host if request.client else None
