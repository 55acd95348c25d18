"""The backends a test runs against: the embedded default, and the services when the test
command gives their URLs (PostgreSQL, RabbitMQ or Redis, moto's S3 server on loopback)."""

from __future__ import annotations

import os
import secrets
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from fieldcheck.ratelimit import BUCKETS
from fieldcheck.settings import Settings
from fieldcheck.tools.services import delete_queues
from fieldcheck.tools.services import free_port as free_port  # for the tests, as before
from fieldcheck.tools.services import wait_for_port as wait_for_port

POSTGRES_URL = os.environ.get("FIELDCHECK_TEST_POSTGRES_URL")
RABBITMQ_URL = os.environ.get("FIELDCHECK_TEST_RABBITMQ_URL")
REDIS_URL = os.environ.get("FIELDCHECK_TEST_REDIS_URL")
SERVICES_GIVEN = bool(POSTGRES_URL or RABBITMQ_URL or REDIS_URL)
TEST_BASE_URL = "http://testserver.local"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = ROOT / "test-artifacts"

FAST_HASHING: dict[str, Any] = {"argon2_time_cost": 1, "argon2_memory_kib": 8192, "argon2_parallelism": 1}
# Stopping the job worker at the end of each test takes about one poll of its queues.
FAST_STOP: dict[str, Any] = {"worker_poll_ms": 10}
# Every test client calls from one address and some tests make many requests in a minute: the
# request limits are off unless a test turns them on (tests/api/test_rate_limits.py).
NO_REQUEST_LIMITS: dict[str, Any] = {
    "rate_limit_address_factor": 0,
    **{name: 0 for name, _ in BUCKETS.values()},
}


def psycopg_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@dataclass
class PostgresDatabase:
    url: str
    tables: list[str]

    def truncate(self) -> None:
        engine = create_engine(psycopg_url(self.url))
        with engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {', '.join(self.tables)} RESTART IDENTITY CASCADE"))
        engine.dispose()


def cleanup_queues(settings: Settings) -> None:
    delete_queues(settings.broker_url, settings.queue_prefix)


@dataclass
class BackendFactory:
    """Builds the settings of one backend for one test, and cleans up after it."""

    tmp_path: Path
    request: pytest.FixtureRequest

    def embedded(self, **overrides: Any) -> Settings:
        template: Path = self.request.getfixturevalue("sqlite_template")
        home = self.tmp_path / f"home-{secrets.token_hex(3)}"
        home.mkdir()
        shutil.copy(template, home / "fieldcheck.db")
        values: dict[str, Any] = {
            "home": home,
            "public_base_url": TEST_BASE_URL,
            "relay_interval_s": 0.5,
            **FAST_HASHING,
            **FAST_STOP,
            **NO_REQUEST_LIMITS,
        }
        values.update(overrides)
        return Settings(**values)

    def services(self, broker: str = "rabbitmq", **overrides: Any) -> Settings:
        database: PostgresDatabase = self.request.getfixturevalue("postgres_database")
        database.truncate()
        broker_url = self.request.getfixturevalue("rabbitmq_url" if broker == "rabbitmq" else "redis_url")
        endpoint: str = self.request.getfixturevalue("s3_endpoint")
        bucket = f"fc-{uuid.uuid4().hex[:12]}"
        values: dict[str, Any] = {
            "home": self.tmp_path / f"home-{secrets.token_hex(3)}",
            "database_url": database.url,
            "broker_url": broker_url,
            "queue_prefix": f"fct{secrets.token_hex(4)}",
            "inprocess_worker": True,
            "s3_bucket": bucket,
            "s3_endpoint_url": endpoint,
            "s3_access_key_id": "test",
            "s3_secret_access_key": "test",
            "s3_create_bucket": True,
            "public_base_url": TEST_BASE_URL,
            "relay_interval_s": 0.5,
            **FAST_HASHING,
            **FAST_STOP,
            **NO_REQUEST_LIMITS,
        }
        values.update(overrides)
        settings = Settings(**values)
        self.request.addfinalizer(lambda: cleanup_queues(settings))
        return settings

    def make(self, name: str, **overrides: Any) -> Settings:
        if name == "embedded":
            return self.embedded(**overrides)
        if name == "services":
            return self.services(**overrides)
        if name == "services-redis":
            return self.services(broker="redis", **overrides)
        raise ValueError(name)


# Every API test runs on each of these (the services only when the test command gives them).
BACKENDS = [
    pytest.param("embedded", id="embedded"),
    pytest.param("services", id="services", marks=pytest.mark.services),
]
