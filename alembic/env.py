"""Alembic environment: the only way fieldcheck's schema is made, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

import fieldcheck.models  # noqa: F401  (registers every table)
from fieldcheck.db import create_db_engine, metadata
from fieldcheck.discovery.spatial import include_in_comparison
from fieldcheck.settings import Settings

# Any two processes migrating PostgreSQL at once queue on this lock instead of racing.
MIGRATION_LOCK_KEY = 727_100_001

config = context.config
settings: Settings = config.attributes.get("settings") or Settings(
    database_url=config.get_main_option("sqlalchemy.url")
)


def run_migrations_online() -> None:
    engine = create_db_engine(settings)
    is_sqlite = engine.dialect.name == "sqlite"
    try:
        with engine.connect() as connection:
            if is_sqlite:
                # Batch migrations copy tables; foreign keys are checked again once they are done.
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
            context.configure(
                connection=connection,
                target_metadata=metadata,
                render_as_batch=is_sqlite,
                compare_type=True,
                compare_server_default=False,
                include_object=include_in_comparison,
            )
            with context.begin_transaction():
                if not is_sqlite:
                    connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"))
                context.run_migrations()
            if is_sqlite:
                problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                connection.commit()
                if problems:
                    raise RuntimeError(f"foreign keys broken by a migration: {problems[:5]}")
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("fieldcheck migrations run online only: use `fieldcheck db upgrade`")
run_migrations_online()
