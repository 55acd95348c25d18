"""`fieldcheck bench fleet`, short: the multi-process deployment (two API processes behind the
bench's proxy, two workers, a scheduler) on PostgreSQL, RabbitMQ and moto's S3, driven by simulated
phones through a worker killed with -9, an API process killed with -9 and cuts of the database's
and the broker's connections. Only the invariants are asserted here (the figures are for the
README): nothing acknowledged lost or decided twice, nothing paid twice, the ledger clean, no job
stuck, the export complete, no 5xx outside the fault windows."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.support.backends import POSTGRES_URL, RABBITMQ_URL


@pytest.mark.services
@pytest.mark.fleet
@pytest.mark.timeout(900)  # beyond the run's own limit below, which ends it with SIGTERM (clean-up runs)
def test_a_short_fleet_run_keeps_every_invariant(s3_endpoint: str) -> None:
    assert POSTGRES_URL and RABBITMQ_URL, "the test command gives the services' URLs"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDCHECK_")}
    env.update(
        {
            "FIELDCHECK_DATABASE_URL": POSTGRES_URL,
            "FIELDCHECK_BROKER_URL": RABBITMQ_URL,
            "FIELDCHECK_S3_ENDPOINT_URL": s3_endpoint,
            "FIELDCHECK_S3_ACCESS_KEY_ID": "test",
            "FIELDCHECK_S3_SECRET_ACCESS_KEY": "test",
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "fieldcheck.cli", "bench", "fleet", "--phones", "4", "--duration", "45"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=720)
    except subprocess.TimeoutExpired:
        process.terminate()  # SIGTERM: the bench stops its processes and removes its scratch places
        stdout, stderr = process.communicate(timeout=120)
    run = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    output = run.stdout + run.stderr
    last = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert run.returncode == 0, output[-4000:]
    match = re.fullmatch(
        r"fleet: (\d+) visits, \d+ visits/min, \d+% of the check-bound limit, invariants OK", last
    )
    assert match, output[-4000:]
    assert int(match.group(1)) >= 10, output[-4000:]
    for fault in (
        "kill -9 worker-1",
        "kill -9 api-1",
        "PostgreSQL connections cut",
        "broker connections cut",
    ):
        assert fault in run.stdout, output[-4000:]
    assert run.stdout.count("invariant OK") == 8, output[-4000:]
