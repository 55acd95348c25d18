"""Pay measured against the floor: a campaign whose visits show a median real rate below the floor
stops taking reservations (held ones go on), tells its client (webhook, reason in its answer) and
takes reservations again once the client raises the reward, escrow topped up for what is owed."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import col, update

from fieldcheck.assignments.models import Assignment
from fieldcheck.auth.models import Role
from fieldcheck.ledger import service as ledger
from fieldcheck.money import verify_money
from fieldcheck.settings import Settings
from tests.api.test_money import balance, worker_balance
from tests.api.test_review import claim, decide
from tests.api.test_webhooks import WEBHOOK_SETTINGS, Receiver
from tests.support import photos
from tests.support.backends import BackendFactory
from tests.support.factories import deposit, make_account, problem, runtime_of
from tests.support.submissions import STORE_LAT, STORE_LON, Field, checked, submit, upload

MIN_VISITS = 3


@pytest.fixture(
    params=[
        pytest.param("embedded", id="embedded"),
        pytest.param("services", id="services", marks=pytest.mark.services),
    ]
)
def settings(request: pytest.FixtureRequest, backends: BackendFactory) -> Settings:
    return backends.make(request.param, pay_floor_min_visits=MIN_VISITS, **WEBHOOK_SETTINGS)


def reserved_since(client: Any, field: Field, minutes: int) -> tuple[Any, str]:
    worker = field.worker()
    assignment_id = field.reserve(worker)
    with runtime_of(client).db.transaction() as session:
        session.exec(
            update(Assignment)
            .where(col(Assignment.id) == uuid.UUID(assignment_id))
            .values(created_at=datetime.now(UTC) - timedelta(minutes=minutes))
        )
    return worker, assignment_id


def deliver(client: Any, worker: Any, assignment_id: str, seed: int) -> None:
    photo_id = upload(client, worker, assignment_id, photos.jpeg(photos.scene(seed=seed)))
    answer = submit(client, worker, assignment_id, [photo_id])
    assert answer.status_code == 202, answer.text


def nearby_count(client: Any, field: Field) -> int:
    answer = client.get(
        "/api/v1/tasks/nearby", params={"lat": STORE_LAT, "lon": STORE_LON}, headers=field.worker().headers
    )
    assert answer.status_code == 200, answer.text
    return len(answer.json()["items"])


def money_holds(client: Any) -> None:
    with runtime_of(client).db.transaction(read_only=True) as session:
        report = verify_money(session)
    assert report.ok, report.problems


def test_measured_pay_below_the_floor_pauses_until_the_reward_is_raised(app_client: Any) -> None:
    receiver = Receiver()
    try:
        # 5.00 EUR for an estimated 15 minutes: 20.00 per hour, above the 12.02 floor.
        field = Field(app_client, slots_per_store=10)
        owner, campaign_url = field.owner, f"/api/v1/campaigns/{field.campaign['id']}"
        hook = app_client.post(
            "/api/v1/webhooks",
            json={"url": receiver.url, "events": ["campaign.pay_below_floor"]},
            headers=owner.headers,
        )
        assert hook.status_code == 201, hook.text
        receiver.secret = hook.json()["secret"]
        # Visits really take 40 minutes: 7.50 per hour. Two are not enough to judge on.
        for seed in (801, 802):
            deliver(app_client, *reserved_since(app_client, field, 40), seed=seed)
        assert app_client.get(campaign_url, headers=owner.headers).json()["status"] == "active"
        held_worker, held = reserved_since(app_client, field, 40)  # reserved before the pause
        deliver(app_client, *reserved_since(app_client, field, 40), seed=803)

        paused = app_client.get(campaign_url, headers=owner.headers).json()
        assert paused["status"] == "paused" and paused["pause_reason"] == "pay_below_floor"
        assert paused["effective_hourly_rate_cents"] == 750
        assert "median of 40 minutes over 3 visits" in paused["pause_detail"], paused["pause_detail"]
        assert "7.50 EUR per hour" in paused["pause_detail"] and "12.02" in paused["pause_detail"]
        french = app_client.get(campaign_url, headers={**owner.headers, "Accept-Language": "fr"}).json()
        assert "médiane de 40 minutes" in french["pause_detail"] and "7,50 EUR" in french["pause_detail"], (
            french
        )
        assert nearby_count(app_client, field) == 0  # no new reservation is offered

        # The reservation held goes on; a later submission does not tell the client again.
        deliver(app_client, held_worker, held, seed=804)
        deadline = time.monotonic() + 30
        while receiver.count() < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        runtime_of(app_client).jobs.join()
        time.sleep(0.5)
        assert receiver.count() == 1
        told = receiver.requests[0]
        assert told.signature_ok and told.payload["type"] == "campaign.pay_below_floor"
        data = told.payload["data"]
        assert data["campaign_id"] == field.campaign["id"] and data["measured_visits"] == 3
        assert data["effective_hourly_rate_cents"] == 750 and data["floor_cents_per_hour"] == 1202

        # Activating again is the same rule: still below the floor on measured time.
        refused = problem(
            app_client.post(f"{campaign_url}/activate", headers=owner.headers), 422, "pay_below_floor"
        )
        assert refused["basis"] == "measured"
        # A longer estimate alone does not pay more; a lower reward is never taken once activated.
        problem(
            app_client.patch(campaign_url, json={"estimated_minutes": 40}, headers=owner.headers),
            422,
            "pay_below_floor",
        )
        lower = app_client.patch(campaign_url, json={"reward_cents": 400}, headers=owner.headers)
        problem(lower, 409, "reward_cannot_decrease")
        assert app_client.get(campaign_url, headers=owner.headers).json()["status"] == "paused"

        # Raised to 9.00 for 40 minutes (13.50 per hour): escrow takes 4.40 more per slot still owed.
        before = balance(app_client, owner)["EUR"]["available_cents"]
        raised = app_client.patch(
            campaign_url, json={"reward_cents": 900, "estimated_minutes": 40}, headers=owner.headers
        )
        assert raised.status_code == 200, raised.text
        body = raised.json()
        assert body["status"] == "active" and body["pause_reason"] is None and body["pause_detail"] is None
        assert body["reward_cents"] == 900 and body["effective_hourly_rate_cents"] == 1350
        taken = before - balance(app_client, owner)["EUR"]["available_cents"]
        runtime_of(app_client).jobs.join()
        with runtime_of(app_client).db.transaction(read_only=True) as session:
            releases = ledger.escrow_position(session, uuid.UUID(field.campaign["id"]), "EUR").releases
        assert taken == (10 - releases) * (400 + 40)  # per slot still owed: 4.00 more reward, its 10 % fee
        assert nearby_count(app_client, field) == 1
        money_holds(app_client)

        # Work approved after the raise is paid the new reward.
        worker, assignment_id = reserved_since(app_client, field, 20)
        earned_before = worker_balance(app_client, worker)["earned_cents"]
        deliver(app_client, worker, assignment_id, seed=805)
        if checked(app_client, worker, assignment_id)["status"] == "in_review":  # a new worker's visit
            reviewer = make_account(runtime_of(app_client), Role.reviewer)
            assert claim(app_client, reviewer, assignment_id).status_code == 200
            assert decide(app_client, reviewer, assignment_id, "approve").status_code == 200
        assert checked(app_client, worker, assignment_id)["status"] == "approved"
        assert worker_balance(app_client, worker)["earned_cents"] - earned_before == 900
        money_holds(app_client)
    finally:
        receiver.close()


def test_a_raise_the_organization_cannot_fund_changes_nothing(app_client: Any) -> None:
    field = Field(
        app_client, slots_per_store=4, fund=4 * 550
    )  # just the activation's escrow (5.00 + 10 % fee)
    campaign_url = f"/api/v1/campaigns/{field.campaign['id']}"
    owner = field.owner
    answer = app_client.patch(campaign_url, json={"reward_cents": 800}, headers=owner.headers)
    body = problem(answer, 409, "insufficient_funds")
    assert body["required_cents"] > body["available_cents"]
    after = app_client.get(campaign_url, headers=owner.headers).json()
    assert after["reward_cents"] == 500 and after["status"] == "active"
    money_holds(app_client)
    deposit(app_client, owner, 10_000)
    assert (
        app_client.patch(campaign_url, json={"reward_cents": 800}, headers=owner.headers).status_code == 200
    )
    money_holds(app_client)


def test_what_a_pay_change_accepts(app_client: Any) -> None:
    field = Field(app_client)
    owner = field.owner
    campaign_url = f"/api/v1/campaigns/{field.campaign['id']}"
    unchanged = app_client.patch(campaign_url, json={"reward_cents": None}, headers=owner.headers)
    assert unchanged.status_code == 200 and unchanged.json()["reward_cents"] == 500  # null: left as it is
    problem(app_client.patch(campaign_url, json={"reward_cents": 0}, headers=owner.headers), 400)
    problem(app_client.patch(campaign_url, json={"reward": 600}, headers=owner.headers), 400)
    # The estimate is judged by the same floor as at activation: 5.00 for 30 minutes is 10.00 an hour.
    body = problem(
        app_client.patch(campaign_url, json={"estimated_minutes": 30}, headers=owner.headers),
        422,
        "pay_below_floor",
    )
    assert body["basis"] == "estimate"
    shorter = app_client.patch(campaign_url, json={"estimated_minutes": 10}, headers=owner.headers)
    assert shorter.status_code == 200 and shorter.json()["hourly_rate_cents"] == 3000
    other = Field(app_client)
    problem(
        app_client.patch(campaign_url, json={"reward_cents": 900}, headers=other.owner.headers),
        404,
        "campaign_not_found",
    )
    # A draft takes any values: the floor is checked when it is activated.
    draft = app_client.post(
        "/api/v1/campaigns",
        json={
            "title": "Draft",
            "instructions": "Photograph the shelf.",
            "reward_cents": 500,
            "currency": "EUR",
            "estimated_minutes": 15,
            "store_ids": field.stores,
        },
        headers=owner.headers,
    ).json()
    cheap = app_client.patch(
        f"/api/v1/campaigns/{draft['id']}", json={"reward_cents": 100}, headers=owner.headers
    )
    assert cheap.status_code == 200 and cheap.json()["reward_cents"] == 100
    problem(
        app_client.post(f"/api/v1/campaigns/{draft['id']}/activate", headers=owner.headers),
        422,
        "pay_below_floor",
    )
    assert app_client.post(f"{campaign_url}/close", headers=owner.headers).status_code == 200
    problem(
        app_client.patch(campaign_url, json={"reward_cents": 900}, headers=owner.headers),
        409,
        "campaign_closed",
    )
