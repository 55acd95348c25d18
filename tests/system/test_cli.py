from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from fieldcheck.tools.services import free_port

COMMANDS = [
    [],
    ["serve"],
    ["worker"],
    ["scheduler"],
    ["db"],
    ["db", "upgrade"],
    ["db", "enable-postgis"],
    ["storage"],
    ["storage", "init"],
    ["users"],
    ["users", "create"],
    ["ledger", "verify"],
    ["check-photos"],
    ["checks"],
    ["checks", "rehash"],
    ["checks", "refeature"],
    ["demo"],
    ["bench"],
    ["bench", "nearby"],
    ["bench", "photos"],
    ["bench", "exports"],
]
FIELDCHECK = Path(sys.executable).with_name("fieldcheck")


# Cheap password hashing for the accounts these tests make (the cost itself is tested elsewhere).
CHEAP_HASHING = {"FIELDCHECK_ARGON2_TIME_COST": "1", "FIELDCHECK_ARGON2_MEMORY_KIB": "8192"}


def _run(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FIELDCHECK_")}
    environment.update({"FIELDCHECK_HOME": str(home), **CHEAP_HASHING, **env})
    return subprocess.run(
        [sys.executable, "-m", "fieldcheck.cli", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "fieldcheck")
def test_every_command_has_help(command: list[str]) -> None:
    from click.testing import CliRunner

    from fieldcheck.cli import main

    answer = CliRunner().invoke(main, [*command, "--help"])
    assert answer.exit_code == 0, answer.output
    assert "Usage:" in answer.output


def test_the_installed_command_answers_quickly_without_loading_the_application() -> None:
    """`fieldcheck` as installed; its help loads neither OpenCV nor the web framework."""
    probe = (
        "import runpy, sys; sys.argv = ['fieldcheck', '--help']\n"
        "try:\n    runpy.run_module('fieldcheck.cli', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in ('cv2', 'litestar', 'sqlalchemy') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert loaded.stdout.strip().splitlines()[-1] == "[]", loaded.stdout
    answer = subprocess.run(
        [str(FIELDCHECK), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert answer.returncode == 0, answer.stderr
    assert "Usage: fieldcheck" in answer.stdout


def test_users_create_makes_the_first_admin_and_a_client(tmp_path: Path) -> None:
    """The operator's first steps as real processes: the schema, then the first admin."""
    assert _run("db", "upgrade", home=tmp_path).returncode == 0
    admin = _run(
        "users", "create", "--email", "root@example.com", "--password", "tall-tree-river-7", "--role", "admin",
        home=tmp_path,
    )  # fmt: skip
    assert admin.returncode == 0, admin.stderr
    assert json.loads(admin.stdout)["role"] == "admin"
    refeature = _run("checks", "refeature", home=tmp_path)
    assert refeature.returncode == 0, refeature.stderr
    assert refeature.stdout.strip() == "0 stored features looked at, 0 recomputed"

    # The same command in this process (it reads the same settings): a client and its new
    # organization, then what it refuses, with exit code 2 and the reason.
    from click.testing import CliRunner

    from fieldcheck.cli import main

    environment = {"FIELDCHECK_HOME": str(tmp_path), **CHEAP_HASHING}
    runner = CliRunner()
    client = runner.invoke(
        main,
        ["users", "create", "--email", "buyer@example.com", "--password", "tall-tree-river-7",
         "--role", "client", "--organization", "Yoghurt Co"],
        env=environment,
    )  # fmt: skip
    assert client.exit_code == 0, client.output
    assert json.loads(client.stdout)["organization_id"]
    again = runner.invoke(
        main,
        ["users", "create", "--email", "ROOT@example.com", "--password", "tall-tree-river-7", "--role", "admin"],
        env=environment,
    )  # fmt: skip
    assert again.exit_code == 2
    assert "already exists" in again.stderr
    weak = runner.invoke(
        main,
        ["users", "create", "--email", "w@example.com", "--password", "short", "--role", "worker"],
        env=environment,
    )
    assert weak.exit_code == 2
    assert "too weak" in weak.stderr


def test_serve_runs_the_embedded_default_from_nothing(tmp_path: Path) -> None:
    """A new data folder: schema made, secret generated, ready, sign-up and sign-in work."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FIELDCHECK_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "fieldcheck.cli", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                ready = httpx.get(f"{base}/health/ready", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve did not come up"
                assert process.poll() is None, "serve exited"
                time.sleep(0.3)
        assert ready.status_code == 200, ready.text
        registered = httpx.post(
            f"{base}/api/v1/auth/register",
            json={"email": "w@example.com", "password": "tall-tree-river-7", "display_name": "W"},
        )
        assert registered.status_code == 202, registered.text
        worker = httpx.post(
            f"{base}/api/v1/auth/token", json={"email": "w@example.com", "password": "tall-tree-river-7"}
        )
        assert worker.status_code == 200, worker.text
        # The CLI shares the data folder with the running server (SQLite WAL, busy timeout).
        made = _run(
            "users",
            "create",
            "--email",
            "admin@example.com",
            "--password",
            "tall-tree-river-7",
            "--role",
            "admin",
            home=tmp_path / "var",
        )
        assert made.returncode == 0, made.stderr
        token = httpx.post(
            f"{base}/api/v1/auth/token", json={"email": "admin@example.com", "password": "tall-tree-river-7"}
        )
        assert token.status_code == 200
        assert token.json()["role"] == "admin"
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert (tmp_path / "var" / "fieldcheck.db").exists()
    secret = tmp_path / "var" / "secret.key"
    assert secret.exists()
    assert oct(secret.stat().st_mode & 0o777) == "0o600"
    assert b"Traceback" not in output


def test_demo_seeds_every_case_once(tmp_path: Path) -> None:
    import sqlite3

    first = _run("demo", home=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "demo data ready" in first.stdout and "reviewer.demo@example.com" in first.stdout
    assert "admin.demo@example.com" in first.stdout
    with sqlite3.connect(tmp_path / "fieldcheck.db") as db:
        statuses = dict(db.execute("SELECT status, count(*) FROM assignments GROUP BY status").fetchall())
        exports = db.execute("SELECT status FROM exports").fetchall()
        stores = db.execute("SELECT count(*) FROM stores").fetchone()[0]
    assert statuses == {"approved": 5, "in_review": 3, "rejected": 1, "appealed": 1}
    assert exports == [("done",)] and stores == 12
    assert "worker.demo@example.com" in first.stdout and "/app/" in first.stdout
    assert "API only" not in first.stdout
    _assert_fresh_demo_worker(tmp_path)
    again = _run("demo", home=tmp_path)
    assert again.returncode == 0 and "already there" in again.stdout
    with sqlite3.connect(tmp_path / "fieldcheck.db") as db:
        assert db.execute("SELECT count(*) FROM assignments").fetchone()[0] == 10
    # A data folder seeded before the demo had the fresh worker: a new run adds it, nothing else.
    with sqlite3.connect(tmp_path / "fieldcheck.db") as db:
        db.execute("DELETE FROM users WHERE email = 'worker.demo@example.com'")
    older = _run("demo", home=tmp_path)
    assert older.returncode == 0, older.stderr
    assert "already there" in older.stdout and "worker.demo@example.com" in older.stdout
    _assert_fresh_demo_worker(tmp_path)
    with sqlite3.connect(tmp_path / "fieldcheck.db") as db:
        assert db.execute("SELECT count(*) FROM assignments").fetchone()[0] == 10
        demo_accounts = db.execute("SELECT count(*) FROM users WHERE email LIKE '%.demo@example.com'")
        assert demo_accounts.fetchone()[0] == 15  # client, 2 reviewers, 10 workers, the fresh worker, admin


def _assert_fresh_demo_worker(home: Path) -> None:
    """The demo's worker for the phone app: a worker who can sign in and has no work yet."""
    from litestar.testing import TestClient

    from fieldcheck.app import create_app
    from fieldcheck.settings import Settings
    from fieldcheck.tools.demo import DEMO_PASSWORD

    settings = Settings(home=home, argon2_time_cost=1, argon2_memory_kib=8192)
    with TestClient(create_app(settings), base_url=settings.base_url) as api:
        token = api.post(
            "/api/v1/auth/token", json={"email": "worker.demo@example.com", "password": DEMO_PASSWORD}
        )
        assert token.status_code == 200, token.text
        assert token.json()["role"] == "worker"
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
        me = api.get("/api/v1/me", headers=auth)
        assert me.status_code == 200, me.text
        assert me.json()["display_name"] == "Wanda Worker"
        work = api.get("/api/v1/me/assignments", headers=auth)
        assert work.status_code == 200, work.text
        assert work.json()["items"] == []


def test_storage_init_makes_the_bucket_once_with_its_browser_rule(tmp_path: Path, s3_endpoint: str) -> None:
    """What compose's `storage-init` runs before the API starts: the bucket, and the CORS rule the
    worker app's direct uploads need; a second run (or a second process) changes nothing."""
    import boto3

    bucket = f"init-{os.getpid()}-{time.monotonic_ns()}"
    env = {
        "FIELDCHECK_S3_BUCKET": bucket,
        "FIELDCHECK_S3_ENDPOINT_URL": s3_endpoint,
        "FIELDCHECK_S3_ACCESS_KEY_ID": "test",
        "FIELDCHECK_S3_SECRET_ACCESS_KEY": "test",
        "FIELDCHECK_PUBLIC_BASE_URL": "https://app.fieldcheck.example",
    }
    first = _run("storage", "init", home=tmp_path, **env)
    assert first.returncode == 0, first.stderr
    assert f"bucket {bucket}: created" in first.stdout
    again = _run("storage", "init", home=tmp_path, **env)
    assert again.returncode == 0, again.stderr
    assert f"bucket {bucket}: already there" in again.stdout
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    (rule,) = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert rule["AllowedOrigins"] == ["https://app.fieldcheck.example"] and "PUT" in rule["AllowedMethods"]
    local = _run("storage", "init", home=tmp_path)
    assert local.returncode == 0 and "local storage" in local.stdout


def test_enable_postgis_sets_discovery_on_its_index_again(backends: Any, tmp_path: Path) -> None:
    from fieldcheck.db import Database
    from fieldcheck.discovery import spatial

    settings = backends.make("services")
    db = Database(settings)
    try:
        with db.engine.begin() as connection:
            spatial.disable_postgis(connection)
            assert not spatial.has_postgis_column(connection)
        done = _run("db", "enable-postgis", home=tmp_path, FIELDCHECK_DATABASE_URL=settings.database_url)
        assert done.returncode == 0, done.stderr
        assert "PostGIS is set up" in done.stdout
        with db.engine.connect() as connection:
            assert spatial.has_postgis_column(connection)
        again = _run("db", "enable-postgis", home=tmp_path, FIELDCHECK_DATABASE_URL=settings.database_url)
        assert again.returncode == 0, again.stderr  # idempotent
    finally:
        with db.engine.begin() as connection:
            spatial.enable_postgis(connection)
        db.dispose()
    refused = _run("db", "enable-postgis", home=tmp_path)  # the embedded default: SQLite
    assert refused.returncode != 0 and "PostGIS is for PostgreSQL" in refused.stderr
