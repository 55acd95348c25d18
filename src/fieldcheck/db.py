"""Engine, sessions and the column types every model shares.

SQLite (embedded default) runs in WAL mode with a busy timeout, and every write transaction starts
with BEGIN IMMEDIATE so that concurrent writers queue up instead of failing half-way. PostgreSQL
runs through psycopg 3.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import JSON, DateTime, Engine, Integer, MetaData, String, case, cast, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.orm import sessionmaker
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, SQLModel

from fieldcheck.settings import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata: MetaData = SQLModel.metadata
metadata.naming_convention = NAMING_CONVENTION

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY_OPTION = "fieldcheck_read_only"


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


AFTER_COMMIT = "fieldcheck_after_commit"


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Do `action` once this session's transaction is committed, never if it rolls back (what is
    counted, such as metrics, counts only what happened)."""
    session.info.setdefault(AFTER_COMMIT, []).append(action)


def _forget_after_commit(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(AFTER_COMMIT, None)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite forgets offsets)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")

E = TypeVar("E", bound=StrEnum)


class EnumText(TypeDecorator[E]):
    """A vocabulary stored as its plain value (a CHECK constraint lists the values) and read back
    as the enum member, so code compares members, never bare strings."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[E], length: int) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self.enum(value)


def normalize_database_url(url: str) -> str:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create_db_engine(settings: Settings) -> Engine:
    url = normalize_database_url(settings.effective_database_url)
    if url.startswith("sqlite"):
        settings.home.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            pool_size=8,
            max_overflow=8,
        )
        _configure_sqlite(engine)
        return engine
    engine = create_engine(url, pool_size=10, max_overflow=20, pool_recycle=1800)
    _ping_idle_connections(engine)
    return engine


IDLE_BEFORE_PING_S = 10.0


def _ping_idle_connections(engine: Engine) -> None:
    """Pessimistic disconnect handling, paid only by connections that sat idle in the pool.

    A connection checked in moments ago is alive; one idle for a while (a database restart, a
    load balancer's idle timeout) is pinged first and replaced when the ping fails.
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("checked_in_at")
        if idle_since is not None and time.monotonic() - idle_since < IDLE_BEFORE_PING_S:
            return
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            if not dbapi_connection.autocommit:
                dbapi_connection.rollback()
        except Exception as exc:
            raise DisconnectionError(f"the pooled connection is gone: {exc}") from exc


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN itself (pysqlite's own is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY_OPTION, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def insert_ignore(session: Session, model: type[SQLModel], **values: Any) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when this call inserted the row.

    Claims made this way are race-safe: a concurrent insert of the same key waits for the other
    transaction and then does nothing.
    """
    table = model.__table__  # type: ignore[attr-defined]
    dialect_insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    # RETURNING, not rowcount: drivers do not all report a row count for INSERT ... ON CONFLICT.
    statement = dialect_insert(table).values(**values).on_conflict_do_nothing().returning(*table.primary_key)
    return session.connection().execute(statement).first() is not None


def sql_floor(value: Any) -> Any:
    """floor() that SQLite (without its math extension) and PostgreSQL both understand."""
    truncated = cast(value, Integer)
    return case((value < truncated, truncated - 1), else_=truncated)


_pause = time.sleep  # (tests replace it)


class Database:
    """The engine and two session factories: read-write (default) and read-only.

    On SQLite a read-only session begins a deferred transaction, so GET requests never queue behind
    writers; on PostgreSQL both behave alike.
    """

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine or create_db_engine(settings)
        self.dialect = self.engine.dialect.name
        self._write = sessionmaker(self.engine, class_=Session, expire_on_commit=False)
        read_options: dict[str, Any] = {READ_ONLY_OPTION: True}
        if self.dialect == "postgresql":
            # Under READ COMMITTED every statement takes its own snapshot anyway, so a read-only
            # session loses nothing without BEGIN/COMMIT, and saves two round trips a request.
            read_options["isolation_level"] = "AUTOCOMMIT"
        self._read = sessionmaker(
            self.engine.execution_options(**read_options),
            class_=Session,
            expire_on_commit=False,
        )
        self.after_commit_hooks: list[Callable[[Session], None]] = []
        for factory in (self._write, self._read):
            event.listen(factory, "after_commit", self._after_commit)
            event.listen(factory, "after_rollback", _forget_after_commit)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    def session(self, *, read_only: bool = False) -> Session:
        return (self._read if read_only else self._write)()

    @contextmanager
    def transaction(self, *, read_only: bool = False) -> Iterator[Session]:
        """One unit of work for a job or a command: commit at the end, roll back on error."""
        session = self.session(read_only=read_only)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def write_through_outages(self, work: Callable[[Session], None], *, within_s: float = 60.0) -> None:
        """Run `work` in its own transaction, again and again while the database cannot be reached
        (1, 2, 4... s apart, for up to `within_s`): for the record of a failure, which must be
        written whatever failed (a job that cannot say it failed would look alive for minutes)."""
        wait, deadline = 1.0, time.monotonic() + within_s
        while True:
            try:
                with self.transaction() as session:
                    work(session)
                return
            except OperationalError:
                if time.monotonic() + wait > deadline:
                    raise
                _pause(wait)
                wait *= 2

    def _after_commit(self, session: Session) -> None:
        # SQLAlchemy also says "after commit" when a SAVEPOINT is released: the data is committed
        # only once the outermost transaction is (the hooks send jobs that must see it).
        if session.in_nested_transaction():
            return
        for hook in self.after_commit_hooks:
            hook(session)
        for action in session.info.pop(AFTER_COMMIT, []):
            action()

    def dispose(self) -> None:
        self.engine.dispose()
