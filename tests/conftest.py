"""Test fixtures: real parts only.

Every API test runs on the embedded default (SQLite, in-process broker, local storage) and, when
the test command gives their URLs, on the services (PostgreSQL, RabbitMQ, moto's S3 server). A
service whose URL is given but does not answer makes the tests fail, never skip.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from fieldcheck import migrations
from fieldcheck.settings import Settings
from tests.support.backends import (
    ARTIFACTS_DIR,
    BACKENDS,
    POSTGRES_URL,
    RABBITMQ_URL,
    REDIS_URL,
    SERVICES_GIVEN,
    TEST_BASE_URL,
    BackendFactory,
    PostgresDatabase,
    free_port,
    psycopg_url,
    wait_for_port,
)
from tests.support.browser import chromium
from tests.support.server import running


def pytest_report_header(config: pytest.Config) -> list[str]:
    given = {
        "postgres": POSTGRES_URL,
        "rabbitmq": RABBITMQ_URL,
        "redis": REDIS_URL,
    }
    described = ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in given.items())
    return [f"fieldcheck services: {described}; S3: moto server started by the tests"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without service URLs, tests that need a service are deselected (and the header says so)."""
    if SERVICES_GIVEN:
        missing = [
            n
            for n, v in (("postgres", POSTGRES_URL), ("rabbitmq", RABBITMQ_URL), ("redis", REDIS_URL))
            if not v
        ]
        if missing:
            raise pytest.UsageError(
                f"some service URLs are given but not {', '.join(missing)}: give all of them or none"
            )
        return
    kept, dropped = [], []
    for item in items:
        (dropped if item.get_closest_marker("services") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


__all__ = ["chromium"]  # the browser fixture, declared once for every test module


# Services --------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's standalone S3 server, as its own process on loopback."""
    port = free_port()
    executable = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which(
        "moto_server"
    )
    command = [executable] if executable else [sys.executable, "-m", "moto.server"]
    process = subprocess.Popen(
        [*command, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    if not POSTGRES_URL:
        pytest.fail("FIELDCHECK_TEST_POSTGRES_URL is not set")
    engine = create_engine(psycopg_url(POSTGRES_URL))
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        pytest.fail(f"PostgreSQL at {POSTGRES_URL} does not answer: {exc}")
    finally:
        engine.dispose()
    return POSTGRES_URL


@pytest.fixture(scope="session")
def postgres_database(postgres_admin_url: str) -> Iterator[PostgresDatabase]:
    """A database of its own for this test run, migrated once; tests truncate it."""
    name = f"fieldcheck_test_{secrets.token_hex(4)}"
    admin = create_engine(psycopg_url(postgres_admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"
    migrations.upgrade(Settings(database_url=url))
    engine = create_engine(psycopg_url(url))
    with engine.connect() as connection:
        tables = [
            row[0]
            for row in connection.execute(
                text(
                    # PostGIS's table of reference systems is the extension's, not data of a test.
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename NOT IN ('alembic_version', 'spatial_ref_sys')"
                )
            )
        ]
    engine.dispose()
    try:
        yield PostgresDatabase(url=url, tables=tables)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    if not RABBITMQ_URL:
        pytest.fail("FIELDCHECK_TEST_RABBITMQ_URL is not set")
    import pika

    try:
        pika.BlockingConnection(pika.URLParameters(RABBITMQ_URL)).close()
    except Exception as exc:
        pytest.fail(f"RabbitMQ at {RABBITMQ_URL} does not answer: {exc}")
    return RABBITMQ_URL


@pytest.fixture(scope="session")
def redis_url() -> str:
    if not REDIS_URL:
        pytest.fail("FIELDCHECK_TEST_REDIS_URL is not set")
    import redis

    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except Exception as exc:
        pytest.fail(f"Redis at {REDIS_URL} does not answer: {exc}")
    return REDIS_URL


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test instead of migrating again."""
    home = tmp_path_factory.mktemp("sqlite-template")
    migrations.upgrade(Settings(home=home))
    return home / "fieldcheck.db"


# Settings per backend -----------------------------------------------------------------------
@pytest.fixture
def backends(tmp_path: Path, request: pytest.FixtureRequest) -> BackendFactory:
    return BackendFactory(tmp_path=tmp_path, request=request)


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, backends: BackendFactory) -> Settings:
    """Settings of one backend; tests using it run once per backend."""
    return backends.make(request.param)


@pytest.fixture
def embedded_settings(backends: BackendFactory) -> Settings:
    return backends.embedded()


@pytest.fixture
def app_client(settings: Settings, request: pytest.FixtureRequest) -> Iterator[Any]:
    from litestar.testing import TestClient

    from fieldcheck.app import create_app

    with TestClient(create_app(settings), base_url=TEST_BASE_URL) as client:
        yield client
        if request.node.get_closest_marker("corrupts_ledger"):
            return
        # Whatever the test did, the money must still add up: `fieldcheck ledger verify` after each.
        from fieldcheck.money import verify_money

        runtime = client.app.state.runtime
        runtime.jobs.join()
        with runtime.db.transaction(read_only=True) as session:
            report = verify_money(session)
        assert report.ok, report.problems


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    return ARTIFACTS_DIR


@pytest.fixture
def live_server(settings: Settings) -> Iterator[str]:
    """The app under uvicorn on a loopback port, for tests that need real concurrent HTTP.

    It shares the database with `app_client`'s runtime; its relay loop stays idle so that jobs
    the test's own requests commit run in the test's worker, which `jobs.join` waits for (the
    server still relays what its own requests commit)."""
    with running(settings.model_copy(update={"relay_interval_s": 3600.0})) as url:
        yield url
