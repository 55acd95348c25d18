"""The job system across real processes: a worker and two schedulers on RabbitMQ or Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import col, func, select

from fieldcheck.auth.models import LoginFailure
from fieldcheck.jobs import PERIODIC, JobExecution, ScheduleSlot
from fieldcheck.runtime import Runtime
from fieldcheck.settings import Settings
from tests.support.backends import free_port


@pytest.mark.services
@pytest.mark.parametrize("broker", ["services", "services-redis"], ids=["rabbitmq", "redis"])
def test_worker_and_two_scheduler_processes(backends: Any, broker: str) -> None:
    """Real processes: two schedulers enqueue each periodic job once; a worker process runs them."""
    settings: Settings = backends.make(broker)
    env = _cli_env(settings)
    runtime = Runtime(settings)
    stale = datetime.now(UTC) - timedelta(days=2)
    with runtime.db.transaction() as session:
        session.add(LoginFailure(email="old@example.com", address="10.0.0.1", at=stale))
    metrics_port = free_port()
    processes = [_fieldcheck("worker", "--threads", "2", "--metrics-port", str(metrics_port), env=env)]
    processes += [_fieldcheck("scheduler", env=env) for _ in range(2)]
    outputs: list[str] = []
    try:

        def purged() -> bool:
            with runtime.db.transaction(read_only=True) as session:
                done = session.exec(
                    select(JobExecution.job_name).where(
                        col(JobExecution.job_name).in_(["auth.purge_login_failures", "jobs.purge"])
                    )
                ).all()
                left = session.exec(select(func.count()).select_from(LoginFailure)).one()
            return set(done) == {"auth.purge_login_failures", "jobs.purge"} and left == 0

        _wait_until(purged)
        # The worker's own metrics, on its port: the periodic jobs it ran, counted by actor.
        scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
        assert scraped.status_code == 200, scraped.text
        assert 'fieldcheck_jobs_finished_total{actor="jobs.purge",result="succeeded"}' in scraped.text
        time.sleep(1.5)  # several more ticks of both schedulers: still one run per period
        with runtime.db.transaction(read_only=True) as session:
            runs = session.exec(select(JobExecution.job_name)).all()
            slots = session.exec(select(ScheduleSlot.name)).all()
        # One run per claimed period (a test that straddles an hour boundary claims two).
        assert sorted(runs) == sorted(slots)
        assert set(runs) == set(PERIODIC)
    finally:
        outputs = [_stop(p) for p in processes]
        runtime.close()
    assert all("Traceback" not in out for out in outputs), outputs


def _cli_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDCHECK_")}
    env.update(
        {
            "FIELDCHECK_HOME": str(settings.home),
            "FIELDCHECK_DATABASE_URL": settings.effective_database_url,
            "FIELDCHECK_BROKER_URL": settings.broker_url,
            "FIELDCHECK_QUEUE_PREFIX": settings.queue_prefix,
            "FIELDCHECK_SCHEDULER_TICK_S": "0.5",
            "FIELDCHECK_RELAY_INTERVAL_S": "0.5",
            "FIELDCHECK_S3_BUCKET": settings.s3_bucket or "",
            "FIELDCHECK_S3_ENDPOINT_URL": settings.s3_endpoint_url or "",
            "FIELDCHECK_S3_ACCESS_KEY_ID": "test",
            "FIELDCHECK_S3_SECRET_ACCESS_KEY": "test",
        }
    )
    return env


def _fieldcheck(*args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "fieldcheck.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _wait_until(condition: Any, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def _stop(process: subprocess.Popen[bytes]) -> str:
    process.terminate()
    output, _ = process.communicate(timeout=60)
    return output.decode(errors="replace")
