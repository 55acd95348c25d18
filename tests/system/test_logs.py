"""Logs an operator's tools can read: with FIELDCHECK_LOG_FORMAT=json every line `fieldcheck serve`
writes is one JSON object, each request is logged by its route template with status, duration and
role, jobs' lines say which job, and nothing names a person (no e-mail, token or position)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from fieldcheck.errors import job_var, request_id_var
from fieldcheck.logs import JsonFormatter
from fieldcheck.tools.services import free_port

EMAIL = "logged-worker@example.com"
PASSWORD = "tall-tree-river-7"


def test_serve_writes_json_lines_that_name_nobody(tmp_path: Path) -> None:
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FIELDCHECK_")}
    environment["FIELDCHECK_LOG_FORMAT"] = "json"
    process = subprocess.Popen(
        [sys.executable, "-m", "fieldcheck.cli", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                assert httpx.get(f"{base}/health/ready", timeout=2).status_code == 200
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None, "serve did not come up"
                time.sleep(0.3)
        registered = httpx.post(
            f"{base}/api/v1/auth/register", json={"email": EMAIL, "password": PASSWORD, "display_name": "Lou"}
        )
        assert registered.status_code == 202, registered.text
        token = httpx.post(f"{base}/api/v1/auth/token", json={"email": EMAIL, "password": PASSWORD}).json()[
            "access_token"
        ]
        headers = {"Authorization": f"Bearer {token}", "X-Request-ID": "trace-me-42"}
        nearby = httpx.get(
            f"{base}/api/v1/tasks/nearby", params={"lat": 48.861234, "lon": 2.337654}, headers=headers
        )
        assert nearby.status_code == 200, nearby.text
        missing = httpx.get(f"{base}/api/v1/assignments/{'0' * 8}-0000-0000-0000-{'0' * 12}", headers=headers)
        assert missing.status_code == 404
        assert httpx.get(f"{base}/ana@example.com/secret-path").status_code == 404  # never logged
        wrong = httpx.post(f"{base}/api/v1/auth/token", json={"email": EMAIL, "password": "not the one"})
        assert wrong.status_code == 401
        time.sleep(1.0)  # the last lines reach stderr
    finally:
        process.terminate()
        _, error = process.communicate(timeout=30)
    text = error.decode("utf-8")
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, text
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    for record in records:
        assert {"time", "level", "logger", "message", "request_id"} <= set(record), record
    access = [r for r in records if r["logger"] == "fieldcheck.access"]
    by_route = {(r["method"], r["route"], r["status"]): r for r in access}
    seen = by_route[("GET", "/api/v1/tasks/nearby", 200)]
    assert seen["role"] == "worker" and seen["request_id"] == "trace-me-42" and seen["duration_ms"] >= 0
    assert ("GET", "/api/v1/assignments/{assignment_id}", 404) in by_route
    assert ("POST", "/api/v1/auth/token", 401) in by_route
    assert by_route[("POST", "/api/v1/auth/register", 202)].get("role") is None  # nobody signed in yet
    # Nothing that names the worker: no e-mail, no token, no position, no query string.
    for needle in (EMAIL, token, "48.86", "2.337", "lat=", "Bearer ey", "secret-path", "ana@"):
        assert needle not in text, needle


def test_the_json_formatter_says_which_job_and_masks_what_names_a_person() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("fieldcheck.test_logs")
    logger.addHandler(handler)
    logger.propagate = False
    job = job_var.set(("7f0c", "exports.build"))
    request = request_id_var.set("req-1")
    try:
        try:
            raise ValueError("no account for ana@example.com")
        except ValueError:
            logger.exception("failed for %s with Bearer %s", "ana@example.com", "eyJhbGci.eyJzdWIi.c2ln")
    finally:
        job_var.reset(job)
        request_id_var.reset(request)
        logger.removeHandler(handler)
    record = json.loads(stream.getvalue())
    assert record["job_id"] == "7f0c" and record["actor"] == "exports.build" and record["level"] == "ERROR"
    assert record["message"] == "failed for <e-mail> with Bearer <token>"
    assert "ValueError: no account for <e-mail>" in record["exception"]
    assert "ana@" not in stream.getvalue() and "eyJ" not in stream.getvalue()
