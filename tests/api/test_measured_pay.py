"""Pay measured, not assumed: the real working time of a campaign's visits, its effective hourly
rate, and what workers are told of it when they look for tasks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlmodel import col, update

from fieldcheck.assignments.models import Assignment
from tests.support import photos
from tests.support.factories import runtime_of
from tests.support.submissions import STORE_LAT, STORE_LON, Field, submit, upload


def visit_taking(client: Any, field: Field, minutes: int, seed: int) -> None:
    worker = field.worker()
    assignment_id = field.reserve(worker)
    with runtime_of(client).db.transaction() as session:  # reserved that long ago
        session.exec(
            update(Assignment)
            .where(col(Assignment.id) == uuid.UUID(assignment_id))
            .values(created_at=datetime.now(UTC) - timedelta(minutes=minutes))
        )
    photo_id = upload(client, worker, assignment_id, photos.jpeg(photos.scene(seed=seed)))
    assert submit(client, worker, assignment_id, [photo_id]).status_code == 202


def test_a_campaign_shows_the_time_its_visits_really_took_and_the_rate_that_makes(app_client: Any) -> None:
    field = Field(app_client)
    campaign_url = f"/api/v1/campaigns/{field.campaign['id']}"
    before = app_client.get(campaign_url, headers=field.owner.headers).json()
    assert before["measured_minutes_median"] is None and before["effective_hourly_rate_cents"] is None
    assert before["hourly_rate_cents"] == 2000  # 5.00 EUR for an estimated 15 minutes
    visit_taking(app_client, field, 20, seed=501)
    visit_taking(app_client, field, 40, seed=502)
    after = app_client.get(campaign_url, headers=field.owner.headers).json()
    assert after["measured_visits"] == 2
    assert after["measured_minutes_median"] == 30.0 and after["measured_minutes_p75"] == 35.0
    assert after["effective_hourly_rate_cents"] == 1000  # half the estimated rate: the client is told
    newcomer = field.worker()
    nearby = app_client.get(
        "/api/v1/tasks/nearby", params={"lat": STORE_LAT, "lon": STORE_LON}, headers=newcomer.headers
    ).json()
    assert nearby["items"][0]["measured_minutes_median"] == 30.0


def visit_arriving(client: Any, field: Field, minutes: int, arrived_after: int | None, seed: int) -> str:
    """A visit reserved `minutes` ago whose phone says it reached the store `arrived_after` minutes
    after the reservation (None: the phone does not say)."""
    worker = field.worker()
    assignment_id = field.reserve(worker)
    reserved = datetime.now(UTC) - timedelta(minutes=minutes)
    with runtime_of(client).db.transaction() as session:
        session.exec(
            update(Assignment)
            .where(col(Assignment.id) == uuid.UUID(assignment_id))
            .values(created_at=reserved)
        )
    photo_id = upload(client, worker, assignment_id, photos.jpeg(photos.scene(seed=seed)))
    body: dict[str, Any] = {
        "photo_ids": [photo_id],
        "location": {"lat": STORE_LAT, "lon": STORE_LON, "accuracy_m": 10.0, "is_mock": False},
        "captured_at": datetime.now(UTC).isoformat(),
        "device_id": "phone-travel",
    }
    if arrived_after is not None:  # in the phone's own time zone, as the app sends it
        paris = timezone(timedelta(hours=1))
        body["arrived_at"] = (reserved + timedelta(minutes=arrived_after)).astimezone(paris).isoformat()
    answer = client.post(
        f"/api/v1/assignments/{assignment_id}/submit",
        json=body,
        headers={**worker.headers, "Idempotency-Key": f"travel-{seed}"},
    )
    assert answer.status_code == 202, answer.text
    return assignment_id


def test_the_time_to_reach_the_store_is_measured_when_the_phone_reports_it(app_client: Any) -> None:
    field = Field(app_client, slots_per_store=10)
    campaign_url = f"/api/v1/campaigns/{field.campaign['id']}"
    first = visit_arriving(app_client, field, 30, None, seed=511)
    answer = app_client.get(campaign_url, headers=field.owner.headers).json()
    assert answer["measured_travel_minutes_median"] is None and answer["measured_travel_visits"] == 0
    visit_arriving(app_client, field, 40, 10, seed=512)
    visit_arriving(app_client, field, 50, 30, seed=513)
    edge = visit_arriving(app_client, field, 20, -1, seed=514)  # a clock a minute off: at the reservation
    early = visit_arriving(app_client, field, 25, -60, seed=515)  # an hour before the reservation: unknown
    late = visit_arriving(app_client, field, 25, 90, seed=516)  # long after the submission: unknown
    answer = app_client.get(campaign_url, headers=field.owner.headers).json()
    assert answer["measured_visits"] == 6 and answer["measured_travel_visits"] == 3
    assert answer["measured_travel_minutes_median"] == 10.0  # of 0, 10 and 30 minutes
    assert answer["measured_minutes_median"] == 27.5  # the working time still runs to the submission
    with runtime_of(app_client).db.transaction(read_only=True) as session:
        kept = {a: session.get(Assignment, uuid.UUID(a)) for a in (first, edge, early, late)}
        assert all(row is not None for row in kept.values())
        assert [kept[a].arrived_at for a in (first, early, late)] == [None, None, None]  # type: ignore[union-attr]
        row = kept[edge]
        assert row is not None and row.arrived_at == row.created_at


def test_an_arrival_without_its_time_zone_is_refused(app_client: Any) -> None:
    field = Field(app_client)
    worker = field.worker()
    assignment_id = field.reserve(worker)
    photo_id = upload(app_client, worker, assignment_id, photos.jpeg(photos.scene(seed=521)))
    body = {
        "photo_ids": [photo_id],
        "location": {"lat": STORE_LAT, "lon": STORE_LON, "accuracy_m": 10.0},
        "captured_at": datetime.now(UTC).isoformat(),
        "device_id": "phone-travel",
        "arrived_at": "2026-12-06T10:00:00",
    }
    answer = app_client.post(
        f"/api/v1/assignments/{assignment_id}/submit",
        json=body,
        headers={**worker.headers, "Idempotency-Key": "travel-naive"},
    )
    assert answer.status_code == 400, answer.text
    assert "arrived_at" in {e["field"] for e in answer.json()["errors"]}
