from __future__ import annotations

from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

import fieldcheck.models  # noqa: F401
from fieldcheck import migrations
from fieldcheck.db import Database, metadata
from fieldcheck.settings import Settings

DATABASES = [
    pytest.param("embedded", id="sqlite"),
    pytest.param("services", id="postgres", marks=pytest.mark.services),
]


def _differences(db: Database) -> list[Any]:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


@pytest.mark.parametrize("backend", DATABASES)
def test_models_and_migrations_agree(backends: Any, backend: str) -> None:
    settings: Settings = backends.make(backend)
    db = Database(settings)
    try:
        assert migrations.current_revision(db) == migrations.head_revision(settings)
        assert _differences(db) == []
    finally:
        db.dispose()


@pytest.mark.parametrize("backend", DATABASES)
def test_migrations_go_down_and_up_again(backends: Any, backend: str) -> None:
    settings: Settings = backends.make(backend)
    migrations.downgrade(settings, "base")
    db = Database(settings)
    try:
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
        migrations.upgrade(settings)
        assert _differences(db) == []
    finally:
        db.dispose()
        migrations.upgrade(settings)


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(embedded_settings: Settings) -> None:
    db = Database(embedded_settings)
    try:
        with db.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        db.dispose()
