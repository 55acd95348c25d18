"""Request limits per account and per client address: 429 with Retry-After and words in the
caller's language; counters shared through Redis when configured (the services backend), in the
process otherwise (the embedded default); a correct retry (same Idempotency-Key) is never counted."""

from __future__ import annotations

import time
from typing import Any

import pytest

from fieldcheck.auth.models import Role
from fieldcheck.errors import TooManyRequests
from fieldcheck.ratelimit import LocalCounters, RedisCounters, Throttle, throttle_for
from fieldcheck.settings import Settings
from tests.conftest import BACKENDS
from tests.support import photos
from tests.support.backends import BackendFactory
from tests.support.factories import make_account, problem, runtime_of
from tests.support.submissions import STORE_LAT, STORE_LON, Field, submit, upload

LIMITS = {
    "rate_limit_nearby_per_minute": 3,
    "rate_limit_reservations_per_minute": 50,
    "rate_limit_photo_slots_per_minute": 50,
    "rate_limit_submissions_per_minute": 1,
    "rate_limit_exports_per_hour": 50,
    "rate_limit_address_factor": 0,
}


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, backends: BackendFactory) -> Settings:
    shared = (
        {"rate_limit_redis_url": request.getfixturevalue("redis_url")} if request.param == "services" else {}
    )
    return backends.make(request.param, **LIMITS, **shared)


def nearby(client: Any, account: Any, language: str = "en") -> Any:
    return client.get(
        "/api/v1/tasks/nearby",
        params={"lat": STORE_LAT, "lon": STORE_LON},
        headers={**account.headers, "Accept-Language": language},
    )


def test_an_account_over_its_limit_waits_and_is_told_how_long(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    expected = "redis" if runtime.settings.rate_limit_redis_url else "local"
    assert isinstance(runtime.throttle.counters, RedisCounters if expected == "redis" else LocalCounters)
    worker, other = make_account(runtime, Role.worker), make_account(runtime, Role.worker)
    if time.time() % 60 > 55:  # the three requests below stay in one window
        time.sleep(61 - time.time() % 60)
    for _ in range(3):
        assert nearby(app_client, worker).status_code == 200
    refused = nearby(app_client, worker, "fr")
    body = problem(refused, 429, "rate_limited")
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 60
    assert body["detail"] == f"trop de demandes de ce type ; réessayez dans {wait} secondes"
    assert nearby(app_client, other).status_code == 200  # another account is not held back


def test_a_retried_submission_is_never_counted(app_client: Any) -> None:
    field = Field(app_client, slots_per_store=5)
    worker = field.worker()
    first = field.reserve(worker)
    photo = upload(app_client, worker, first, photos.jpeg(photos.scene(seed=931)))
    at = "2026-12-06T10:00:00+01:00"
    sent = submit(app_client, worker, first, [photo], key="same-key", captured_at=at)
    assert sent.status_code == 202, sent.text
    again = submit(app_client, worker, first, [photo], key="same-key", captured_at=at)  # no answer heard
    assert again.status_code == 202 and again.json() == sent.json()
    second = Field(app_client).reserve(worker)
    other_photo = upload(app_client, worker, second, photos.jpeg(photos.scene(seed=932)))
    problem(submit(app_client, worker, second, [other_photo], key="other-key"), 429, "rate_limited")


def test_an_address_shares_a_wider_limit() -> None:
    settings = Settings(**{**LIMITS, "rate_limit_address_factor": 2})
    throttle = Throttle(settings, LocalCounters())
    now = 1_000_040.0  # 20 s into a window that ends at 1_000_080
    for n in range(6):  # six accounts behind one address: two each would be allowed, six in all
        throttle.check("nearby", account=f"a{n}", address="203.0.113.9", now=now)
    with pytest.raises(TooManyRequests) as refused:
        throttle.check("nearby", account="a7", address="203.0.113.9", now=now)
    assert refused.value.headers["Retry-After"] == "40"
    throttle.check("nearby", account="a7", address="198.51.100.1", now=now)  # another address
    throttle.check("nearby", account="a7", address="203.0.113.9", now=now + 60)  # the next window


@pytest.mark.services
def test_processes_sharing_redis_share_the_counts(redis_url: str) -> None:
    settings = Settings(**LIMITS, rate_limit_redis_url=redis_url, queue_prefix=f"rl{time.time_ns()}")
    first, second = throttle_for(settings), throttle_for(settings)  # two API processes
    now = time.time()
    first.check("nearby", account="shared", address=None, now=now)
    second.check("nearby", account="shared", address=None, now=now)
    first.check("nearby", account="shared", address=None, now=now)
    with pytest.raises(TooManyRequests):
        second.check("nearby", account="shared", address=None, now=now)
    alone = Throttle(settings, LocalCounters())  # without Redis, a process counts alone
    alone.check("nearby", account="shared", address=None, now=now)


LIMITED = [
    ("/api/v1/tasks/nearby", "get"),
    ("/api/v1/tasks/{task_id}/reservations", "post"),
    ("/api/v1/assignments/{assignment_id}/photos", "post"),
    ("/api/v1/assignments/{assignment_id}/submit", "post"),
    ("/api/v1/campaigns/{campaign_id}/exports", "post"),
    ("/api/v1/me/export", "post"),
]


def test_the_openapi_document_says_which_requests_are_limited(app_client: Any) -> None:
    paths = app_client.get("/schema/openapi.json").json()["paths"]
    for path, method in LIMITED:
        answer = paths[path][method]["responses"]["429"]
        assert "rate_limited" in answer["description"] and "Retry-After" in answer["headers"], (path, method)
    assert "429" not in paths["/api/v1/campaigns/{campaign_id}/exports"]["get"]["responses"]  # a list is free
