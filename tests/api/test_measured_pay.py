"""Pay measured, not assumed: the real working time of a campaign's visits, its effective hourly
rate, and what workers are told of it when they look for tasks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
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
