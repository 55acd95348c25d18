from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fieldcheck.auth.models import Role
from tests.support.factories import (
    deposit,
    make_account,
    make_campaign,
    make_store,
    nearby,
    problem,
    runtime_of,
    task_ids_of,
)


@pytest.fixture
def client_account(app_client: Any) -> Any:
    return make_account(runtime_of(app_client), Role.client)


def test_a_campaign_is_a_draft_with_one_task_per_store(app_client: Any, client_account: Any) -> None:
    stores = [make_store(app_client, client_account)["id"] for _ in range(3)]
    campaign = make_campaign(
        app_client,
        client_account,
        stores + stores[:1],
        activate=False,
        slots_per_store=4,
        photo_rules={"min_photos": 2, "max_photos": 4, "min_short_side_px": 1200},
    )
    assert campaign["status"] == "draft"
    assert campaign["store_count"] == 3
    assert campaign["reservation_minutes"] == 120
    assert campaign["review_deadline_hours"] == 72
    assert campaign["photo_rules"] == {"min_photos": 2, "max_photos": 4, "min_short_side_px": 1200}
    assert campaign["hourly_rate_cents"] == 2000
    assert len(task_ids_of(app_client, campaign["id"])) == 3
    fetched = app_client.get(f"/api/v1/campaigns/{campaign['id']}", headers=client_account.headers).json()
    assert fetched == campaign
    listed = app_client.get("/api/v1/campaigns", headers=client_account.headers).json()["items"]
    assert [c["id"] for c in listed] == [campaign["id"]]
    drafts = app_client.get("/api/v1/campaigns", params={"status": "active"}, headers=client_account.headers)
    assert drafts.json()["items"] == []


def test_campaigns_only_use_and_show_the_organizations_own(app_client: Any, client_account: Any) -> None:
    other = make_account(runtime_of(app_client), Role.client)
    foreign_store = make_store(app_client, other)["id"]
    mine = make_store(app_client, client_account)["id"]
    body = problem(
        app_client.post(
            "/api/v1/campaigns",
            json={
                "title": "T",
                "instructions": "I",
                "reward_cents": 500,
                "currency": "EUR",
                "estimated_minutes": 15,
                "store_ids": [mine, foreign_store],
            },
            headers=client_account.headers,
        ),
        422,
        "unknown_stores",
    )
    assert body["unknown_store_ids"] == [foreign_store]
    theirs = make_campaign(app_client, other, [foreign_store], activate=False)
    for path in ("", "/activate", "/pause", "/close"):
        method = app_client.get if not path else app_client.post
        problem(
            method(f"/api/v1/campaigns/{theirs['id']}{path}", headers=client_account.headers),
            404,
            "campaign_not_found",
        )
    assert app_client.get("/api/v1/campaigns", headers=client_account.headers).json()["items"] == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"reward_cents": 0}, "reward_cents"),
        ({"currency": "euro"}, "currency"),
        ({"estimated_minutes": 0}, "estimated_minutes"),
        ({"store_ids": []}, "store_ids"),
        ({"store_ids": ["not-a-uuid"]}, "store_ids"),
        ({"starts_at": "2026-12-02T10:00:00"}, "starts_at"),
        ({"title": "   "}, "title"),
        ({"reward_cents": True}, "reward_cents"),
        ({"reward_cents": "500"}, "reward_cents"),
    ],
)
def test_campaign_validation(
    app_client: Any, client_account: Any, changes: dict[str, Any], field: str
) -> None:
    store = make_store(app_client, client_account)["id"]
    body = {
        "title": "T",
        "instructions": "I",
        "reward_cents": 500,
        "currency": "EUR",
        "estimated_minutes": 15,
        "store_ids": [store],
        **changes,
    }
    answer = problem(app_client.post("/api/v1/campaigns", json=body, headers=client_account.headers), 400)
    assert any(e["field"].startswith(field) for e in answer["errors"]), answer


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        (
            {"photo_rules": {"min_photos": 3, "max_photos": 2}},
            "invalid_photo_rules",
            "photo_rules.max_photos",
        ),
        (
            {"starts_at": "2026-12-02T10:00:00+01:00", "ends_at": "2026-12-01T10:00:00+01:00"},
            "invalid_schedule",
            "ends_at",
        ),
    ],
)
def test_rules_between_fields_are_422_problems(
    app_client: Any, client_account: Any, changes: dict[str, Any], code: str, field: str
) -> None:
    """No schema states them: the document lists them as 422 answers of the operation."""
    store = make_store(app_client, client_account)["id"]
    body = {
        "title": "T",
        "instructions": "I",
        "reward_cents": 500,
        "currency": "EUR",
        "estimated_minutes": 15,
        "store_ids": [store],
        **changes,
    }
    answer = problem(
        app_client.post("/api/v1/campaigns", json=body, headers=client_account.headers), 422, code
    )
    assert [e["field"] for e in answer["errors"]] == [field]


def test_unsupported_currency(app_client: Any, client_account: Any) -> None:
    store = make_store(app_client, client_account)["id"]
    body = {
        "title": "T",
        "instructions": "I",
        "reward_cents": 500,
        "currency": "JPY",
        "estimated_minutes": 15,
        "store_ids": [store],
    }
    problem(
        app_client.post("/api/v1/campaigns", json=body, headers=client_account.headers),
        422,
        "unsupported_currency",
    )


def test_activation_refuses_pay_below_the_floor(app_client: Any, client_account: Any) -> None:
    store = make_store(app_client, client_account)["id"]
    # 12.01 EUR for an hour of estimated work: one cent under the 12.02 EUR floor.
    low = make_campaign(
        app_client, client_account, [store], activate=False, reward_cents=1201, estimated_minutes=60
    )
    body = problem(
        app_client.post(f"/api/v1/campaigns/{low['id']}/activate", headers=client_account.headers),
        422,
        "pay_below_floor",
    )
    assert body["hourly_rate_cents"] == 1201
    assert body["floor_cents_per_hour"] == 1202
    assert "12.01 EUR" in body["detail"]
    assert (
        app_client.get(f"/api/v1/campaigns/{low['id']}", headers=client_account.headers).json()["status"]
        == "draft"
    )
    # 3.01 EUR for 15 minutes is 12.04 EUR per hour: accepted.
    fair = make_campaign(
        app_client, client_account, [store], activate=True, reward_cents=301, estimated_minutes=15
    )
    assert fair["status"] == "active"
    assert fair["activated_at"] is not None


def test_lifecycle_and_listing(app_client: Any, client_account: Any) -> None:
    runtime = runtime_of(app_client)
    worker = make_account(runtime, Role.worker)
    store = make_store(app_client, client_account, lat=45.0, lon=5.0)["id"]
    campaign = make_campaign(app_client, client_account, [store], activate=False)
    deposit(app_client, client_account, 10_000)
    path = f"/api/v1/campaigns/{campaign['id']}"
    assert nearby(app_client, worker, 45.0, 5.0) == []
    assert app_client.post(f"{path}/activate", headers=client_account.headers).json()["status"] == "active"
    assert len(nearby(app_client, worker, 45.0, 5.0)) == 1
    problem(
        app_client.post(f"{path}/activate", headers=client_account.headers),
        409,
        "invalid_campaign_transition",
    )
    assert app_client.post(f"{path}/pause", headers=client_account.headers).json()["status"] == "paused"
    assert nearby(app_client, worker, 45.0, 5.0) == []
    problem(
        app_client.post(f"{path}/pause", headers=client_account.headers), 409, "invalid_campaign_transition"
    )
    first_activation = app_client.get(path, headers=client_account.headers).json()["activated_at"]
    again = app_client.post(f"{path}/activate", headers=client_account.headers).json()
    assert again["activated_at"] == first_activation
    assert len(nearby(app_client, worker, 45.0, 5.0)) == 1
    closed = app_client.post(f"{path}/close", headers=client_account.headers).json()
    assert closed["status"] == "closed"
    assert closed["closed_at"] is not None
    assert nearby(app_client, worker, 45.0, 5.0) == []
    for action in ("activate", "pause", "close"):
        problem(
            app_client.post(f"{path}/{action}", headers=client_account.headers),
            409,
            "invalid_campaign_transition",
        )


def test_schedule_limits_listing(app_client: Any, client_account: Any) -> None:
    worker = make_account(runtime_of(app_client), Role.worker)
    now = datetime.now(UTC)
    later = make_store(app_client, client_account, lat=40.0, lon=3.0)["id"]
    over = make_store(app_client, client_account, lat=40.0, lon=3.001)["id"]
    running = make_store(app_client, client_account, lat=40.0, lon=3.002)["id"]
    make_campaign(app_client, client_account, [later], starts_at=(now + timedelta(days=1)).isoformat())
    make_campaign(
        app_client,
        client_account,
        [over],
        starts_at=(now - timedelta(days=2)).isoformat(),
        ends_at=(now - timedelta(days=1)).isoformat(),
    )
    make_campaign(app_client, client_account, [running], ends_at=(now + timedelta(days=1)).isoformat())
    items = nearby(app_client, worker, 40.0, 3.0)
    assert [i["store"]["lon"] for i in items] == [3.002]
