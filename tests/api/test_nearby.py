from __future__ import annotations

from typing import Any

import pytest
from geopy.distance import geodesic

from fieldcheck.auth.models import Role
from tests.support.factories import (
    make_account,
    make_campaign,
    make_store,
    nearby,
    problem,
    reserve,
    runtime_of,
)


@pytest.fixture
def world(app_client: Any) -> Any:
    runtime = runtime_of(app_client)
    return make_account(runtime, Role.client), make_account(runtime, Role.worker)


def test_nearest_first_with_exact_distances(app_client: Any, world: Any) -> None:
    client, worker = world
    here = (48.8566, 2.3522)
    offsets = [(0.0, 0.002), (0.01, 0.0), (0.0005, 0.0), (0.03, 0.03), (0.2, 0.0)]
    stores = [
        make_store(app_client, client, lat=here[0] + dy, lon=here[1] + dx, name=f"S{i}")
        for i, (dy, dx) in enumerate(offsets)
    ]
    make_campaign(app_client, client, [s["id"] for s in stores], slots_per_store=3, reward_cents=450)
    items = nearby(app_client, worker, *here, radius_m=5000)
    assert [i["store"]["name"] for i in items] == ["S2", "S0", "S1", "S3"]  # S4 is 22 km away
    for item in items:
        expected = geodesic(here, (item["store"]["lat"], item["store"]["lon"])).meters
        assert item["distance_m"] == pytest.approx(expected, abs=0.06)
        assert item["slots_left"] == 3
        assert item["reward_cents"] == 450
        assert item["currency"] == "EUR"
        assert item["estimated_minutes"] == 15
    assert [i["store"]["name"] for i in nearby(app_client, worker, *here, radius_m=5000, limit=2)] == [
        "S2",
        "S0",
    ]
    assert len(nearby(app_client, worker, *here, radius_m=30_000)) == 5


def test_full_and_held_tasks_are_left_out(app_client: Any, world: Any) -> None:
    client, worker = world
    runtime = runtime_of(app_client)
    other = make_account(runtime, Role.worker)
    full = make_store(app_client, client, lat=10.0, lon=10.0, name="full")
    held = make_store(app_client, client, lat=10.0, lon=10.001, name="held")
    campaign = make_campaign(app_client, client, [full["id"], held["id"]], slots_per_store=1)
    by_name = {i["store"]["name"]: i for i in nearby(app_client, worker, 10.0, 10.0)}
    assert reserve(app_client, other, by_name["full"]["task_id"]).status_code == 201
    assert reserve(app_client, worker, by_name["held"]["task_id"]).status_code == 201
    assert nearby(app_client, worker, 10.0, 10.0) == []
    assert campaign["status"] == "active"


def test_across_the_antimeridian_and_at_the_poles(app_client: Any, world: Any) -> None:
    client, worker = world
    east = make_store(app_client, client, lat=-16.5, lon=179.99, name="east")
    west = make_store(app_client, client, lat=-16.5, lon=-179.995, name="west")
    polar = make_store(app_client, client, lat=89.995, lon=120.0, name="polar")
    south = make_store(app_client, client, lat=-89.99, lon=-45.0, name="south")
    make_campaign(app_client, client, [s["id"] for s in (east, west, polar, south)])
    items = nearby(app_client, worker, -16.5, 179.999, radius_m=5000)
    assert [i["store"]["name"] for i in items] == ["west", "east"]  # 0.006 degrees across, 0.009 this side
    assert items[0]["distance_m"] == pytest.approx(
        geodesic((-16.5, 179.999), (-16.5, -179.995)).meters, abs=0.06
    )
    assert [i["store"]["name"] for i in nearby(app_client, worker, 89.999, -60.0, radius_m=5000)] == ["polar"]
    assert [i["store"]["name"] for i in nearby(app_client, worker, -90.0, 0.0, radius_m=5000)] == ["south"]


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"lat": 91, "lon": 0}, 400, "validation_error"),
        ({"lat": 0, "lon": -180.5}, 400, "validation_error"),
        ({"lat": "nan", "lon": 0}, 400, "validation_error"),
        ({"lat": "abc", "lon": 0}, 400, "validation_error"),
        ({"lon": 0}, 400, "validation_error"),
        ({"lat": 0, "lon": 0, "radius_m": 0}, 400, "validation_error"),
        ({"lat": 0, "lon": 0, "radius_m": -5}, 400, "validation_error"),
        ({"lat": 0, "lon": 0, "radius_m": 50_001}, 422, "radius_too_large"),
        ({"lat": 0, "lon": 0, "limit": 0}, 400, "validation_error"),
        ({"lat": 0, "lon": 0, "limit": 100_000}, 422, "limit_too_large"),
    ],
)
def test_bad_positions_and_sizes(
    app_client: Any, world: Any, params: dict[str, Any], status: int, code: str
) -> None:
    _, worker = world
    problem(app_client.get("/api/v1/tasks/nearby", params=params, headers=worker.headers), status, code)


def test_only_workers_discover(app_client: Any, world: Any) -> None:
    client, _ = world
    problem(app_client.get("/api/v1/tasks/nearby", params={"lat": 0, "lon": 0}, headers=client.headers), 403)
