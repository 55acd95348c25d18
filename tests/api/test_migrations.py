from __future__ import annotations

import uuid
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

import fieldcheck.models  # noqa: F401
from fieldcheck import migrations
from fieldcheck.db import Database, metadata
from fieldcheck.discovery.spatial import include_in_comparison
from fieldcheck.settings import Settings

DATABASES = [
    pytest.param("embedded", id="sqlite"),
    pytest.param("services", id="postgres", marks=pytest.mark.services),
]


def _differences(db: Database) -> list[Any]:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": include_in_comparison}
        )
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
        # PostGIS's own table stays with the extension (the migration drops only its column and index).
        assert set(inspect(db.engine).get_table_names()) <= {"alembic_version", "spatial_ref_sys"}
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


def _row(table: Any, sqlite: bool, **given: Any) -> dict[str, Any]:
    """A row of a reflected table: the given values, and a plain one for every other required
    column. SQLite reflects ids as 32 hex characters: they are given so."""
    from datetime import UTC, datetime

    from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, String, Uuid

    def ident(value: uuid.UUID) -> Any:
        return value.hex if sqlite else value

    plain: list[tuple[type, Any]] = [
        (Uuid, lambda: ident(uuid.uuid4())),
        (Boolean, lambda: False),
        (Integer, lambda: 1),
        (Float, lambda: 1.0),
        (DateTime, lambda: datetime.now(UTC).replace(tzinfo=None)),
        (JSON, lambda: {}),
        (String, lambda: "x"),
    ]
    row = {k: ident(v) if isinstance(v, uuid.UUID) else v for k, v in given.items()}
    for column in table.columns:
        if column.name in row or column.nullable or column.server_default is not None:
            continue
        if sqlite and column.name.endswith("id") and isinstance(column.type, String):
            row[column.name] = uuid.uuid4().hex
            continue
        row[column.name] = next(make() for kind, make in plain if isinstance(column.type, kind))
    return row


@pytest.mark.parametrize("backend", DATABASES)
def test_counted_slots_and_account_holders_are_filled_in_for_existing_data(
    backends: Any, backend: str
) -> None:
    """Migration 0010 on a database with work in it: each task counts its approved assignments,
    and escrow accounts belong to their campaign's organization."""
    from sqlalchemy import MetaData, select

    settings: Settings = backends.make(backend)
    sqlite = settings.is_sqlite
    migrations.downgrade(settings, "0009")
    db = Database(settings)
    try:
        tables = MetaData()
        tables.reflect(db.engine)
        t = tables.tables
        organization, worker, store, campaign, task = (uuid.uuid4() for _ in range(5))
        with db.engine.begin() as connection:

            def add(name: str, *rows: dict[str, Any]) -> None:
                connection.execute(t[name].insert(), [_row(t[name], sqlite, **row) for row in rows])

            add("organizations", {"id": organization})
            workers = [worker, uuid.uuid4(), uuid.uuid4()]
            add(
                "users",
                *({"id": w, "email": f"w{i}@example.com", "role": "worker", "organization_id": None}
                  for i, w in enumerate(workers)),
            )  # fmt: skip
            add(
                "stores",
                {"id": store, "organization_id": organization, "lat": 48.0, "lon": 2.0, "geofence_m": 150},
            )
            add(
                "campaigns",
                {"id": campaign, "organization_id": organization, "status": "active", "reward_cents": 500,
                 "estimated_minutes": 15, "slots_per_store": 3, "min_photos": 1, "max_photos": 2,
                 "audit_sample_percent": 0},
            )  # fmt: skip
            add(
                "tasks",
                {"id": task, "campaign_id": campaign, "store_id": store, "organization_id": organization,
                 "lat": 48.0, "lon": 2.0, "lat_band": 960, "slots_total": 3, "slots_taken": 3},
            )  # fmt: skip
            add(
                "assignments",
                *(
                    {"task_id": task, "campaign_id": campaign, "worker_id": who, "status": status,
                     "slot_freed": False, "audit_sampled": False}
                    for who, status in zip(workers, ("approved", "approved", "rejected"), strict=True)
                ),
            )  # fmt: skip
            add(
                "ledger_accounts",
                *(
                    {"kind": kind, "owner_id": owner, "currency": "EUR", "non_negative": True, "balance": 0}
                    for kind, owner in (
                        ("client_escrow", campaign),
                        ("client_available", organization),
                        ("worker_earned", worker),
                    )
                ),
            )
    finally:
        db.dispose()
    migrations.upgrade(settings)
    db = Database(settings)
    try:
        tables = MetaData()
        tables.reflect(db.engine)
        t = tables.tables
        with db.engine.connect() as connection:
            counted = connection.execute(select(t["tasks"].c.slots_approved)).scalar_one()
            accounts = t["ledger_accounts"]
            holders = dict(connection.execute(select(accounts.c.kind, accounts.c.holder_id)).all())
        expected = organization.hex if sqlite else organization
        assert counted == 2
        assert holders == {"client_escrow": expected, "client_available": expected, "worker_earned": None}
        assert _differences(db) == []
    finally:
        db.dispose()
