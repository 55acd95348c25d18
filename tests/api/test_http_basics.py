from __future__ import annotations

import logging
from typing import Any

import pytest

from fieldcheck.auth.models import Role
from tests.support.factories import make_account, problem, runtime_of


def test_live_and_ready(app_client: Any) -> None:
    assert app_client.get("/health/live").json() == {"status": "ok"}
    ready = app_client.get("/health/ready")
    assert ready.status_code == 200, ready.text
    components = ready.json()["components"]
    assert set(components) == {"database", "broker", "storage"}
    assert all(c["status"] == "up" for c in components.values())
    # The spatial search discovery uses: the band index nearest first on SQLite, PostGIS on the
    # PostgreSQL of the tests (the test command installs it).
    assert ready.json()["discovery"] == (
        "nearest-first" if runtime_of(app_client).settings.is_sqlite else "postgis"
    )


def test_ready_says_which_component_is_down(app_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise ConnectionError("bucket unreachable")

    monkeypatch.setattr(runtime_of(app_client).storage, "check", broken)
    ready = app_client.get("/health/ready")
    assert ready.status_code == 503
    body = ready.json()
    assert body["components"]["storage"]["status"] == "down"
    assert "bucket unreachable" in body["components"]["storage"]["detail"]
    assert body["components"]["database"]["status"] == "up"


def test_openapi_describes_the_api(app_client: Any) -> None:
    schema = app_client.get("/schema/openapi.json")
    assert schema.status_code == 200
    document = schema.json()
    paths = document["paths"]
    for path in (
        "/api/v1/auth/register",
        "/api/v1/auth/token",
        "/api/v1/me",
        "/api/v1/admin/organizations",
        "/api/v1/admin/users",
        "/health/ready",
    ):
        assert path in paths, path
    assert document["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"
    assert "security" not in paths["/api/v1/auth/register"]["post"]
    assert paths["/api/v1/me"]["get"]["security"] == [{"BearerToken": []}]


def test_unknown_routes_and_methods_are_problems(app_client: Any) -> None:
    problem(app_client.get("/api/v1/nothing-here"), 404, "not_found")
    problem(app_client.delete("/api/v1/auth/register"), 405, "method_not_allowed")


def test_request_ids_are_echoed_and_made_when_missing(app_client: Any) -> None:
    given = app_client.get("/health/live", headers={"X-Request-ID": "phone-abc-123"})
    assert given.headers["x-request-id"] == "phone-abc-123"
    made = app_client.get("/health/live", headers={"X-Request-ID": "bad id <script>"})
    assert made.headers["x-request-id"] != "bad id <script>"
    assert len(made.headers["x-request-id"]) == 16


def test_unexpected_errors_are_logged_with_the_request_id_and_answered_without_internals(
    app_client: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    worker = make_account(runtime_of(app_client), Role.worker)

    def explode(*_: Any, **__: Any) -> Any:
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr("fieldcheck.auth.service.get_user", explode)
    with caplog.at_level(logging.ERROR, logger="fieldcheck.errors"):
        answer = app_client.get("/api/v1/me", headers={**worker.headers, "X-Request-ID": "trace-me-1"})
    body = problem(answer, 500, "internal_error")
    assert "hunter2" not in answer.text
    assert "Traceback" not in answer.text
    assert body["request_id"] == "trace-me-1"
    record = next(r for r in caplog.records if "trace-me-1" in r.getMessage())
    assert record.exc_info is not None


def test_cors_only_for_configured_origins(backends: Any) -> None:
    from litestar.testing import TestClient

    from fieldcheck.app import create_app

    with TestClient(create_app(backends.embedded())) as closed:
        answer = closed.get("/health/live", headers={"Origin": "https://shop.example.com"})
        assert "access-control-allow-origin" not in answer.headers
    settings = backends.embedded(cors_origins=["https://console.example.com"])
    with TestClient(create_app(settings)) as open_to_one:
        allowed = open_to_one.get("/health/live", headers={"Origin": "https://console.example.com"})
        assert allowed.headers["access-control-allow-origin"] == "https://console.example.com"
        other = open_to_one.get("/health/live", headers={"Origin": "https://evil.example.com"})
        assert other.headers.get("access-control-allow-origin") != "https://evil.example.com"
