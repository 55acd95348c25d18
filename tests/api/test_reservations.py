from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlmodel import col, func, select, update

from fieldcheck.assignments.models import Assignment, AssignmentEvent
from fieldcheck.auth.models import Role
from fieldcheck.db import Database
from fieldcheck.jobs import enqueue
from fieldcheck.settings import Settings
from fieldcheck.tasks.models import Task
from tests.support import photos
from tests.support.factories import (
    make_account,
    make_campaign,
    make_store,
    nearby,
    problem,
    reserve,
    runtime_of,
    task_ids_of,
)
from tests.support.server import running
from tests.support.submissions import Field, checked, submit, upload


def one_task(client: Any, account: Any, **campaign: Any) -> str:
    store = make_store(client, account, lat=52.52, lon=13.405)
    created = make_campaign(client, account, [store["id"]], **campaign)
    return task_ids_of(client, created["id"])[0]


def slots_taken(client: Any, task_id: str) -> int:
    with runtime_of(client).db.transaction(read_only=True) as session:
        task = session.get(Task, uuid.UUID(task_id))
        assert task is not None
        return task.slots_taken


def test_reserve_cancel_and_the_history(app_client: Any, settings: Settings) -> None:
    settings.new_worker_max_reservations = settings.max_reservations_per_worker
    runtime = runtime_of(app_client)
    client, worker = make_account(runtime, Role.client), make_account(runtime, Role.worker)
    task_id = one_task(app_client, client, slots_per_store=2, reservation_minutes=30)
    before = datetime.now(UTC)
    answer = reserve(app_client, worker, task_id)
    assert answer.status_code == 201, answer.text
    assignment = answer.json()
    assert assignment["status"] == "reserved"
    expires = datetime.fromisoformat(assignment["expires_at"])
    assert before + timedelta(minutes=30) <= expires <= datetime.now(UTC) + timedelta(minutes=30)
    assert assignment["store"]["lat"] == 52.52
    assert nearby(app_client, make_account(runtime, Role.worker), 52.52, 13.405)[0]["slots_left"] == 1

    problem(reserve(app_client, worker, task_id), 409, "already_reserved")
    cancelled = app_client.delete(f"/api/v1/assignments/{assignment['id']}", headers=worker.headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert slots_taken(app_client, task_id) == 0
    problem(
        app_client.delete(f"/api/v1/assignments/{assignment['id']}", headers=worker.headers),
        409,
        "not_cancellable",
    )

    history = app_client.get(f"/api/v1/assignments/{assignment['id']}", headers=worker.headers).json()[
        "history"
    ]
    assert [(h["from_status"], h["to_status"], h["by"]) for h in history] == [
        (None, "reserved", "worker"),
        ("reserved", "cancelled", "worker"),
    ]
    assert all(h["reason"] for h in history)
    # A cancelled attempt does not block a new one.
    assert reserve(app_client, worker, task_id).status_code == 201


def test_other_workers_assignments_are_not_found(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    client = make_account(runtime, Role.client)
    owner, stranger = make_account(runtime, Role.worker), make_account(runtime, Role.worker)
    assignment = reserve(app_client, owner, one_task(app_client, client)).json()
    for call in (app_client.get, app_client.delete):
        problem(
            call(f"/api/v1/assignments/{assignment['id']}", headers=stranger.headers),
            404,
            "assignment_not_found",
        )
    problem(app_client.get(f"/api/v1/assignments/{assignment['id']}", headers=client.headers), 403)
    assert app_client.get("/api/v1/me/assignments", headers=stranger.headers).json()["items"] == []


def test_no_slot_left_and_unavailable_tasks(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    client = make_account(runtime, Role.client)
    first, second = make_account(runtime, Role.worker), make_account(runtime, Role.worker)
    task_id = one_task(app_client, client, slots_per_store=1)
    assert reserve(app_client, first, task_id).status_code == 201
    problem(reserve(app_client, second, task_id), 409, "no_slot_left")
    problem(reserve(app_client, second, str(uuid.uuid4())), 404, "task_not_found")
    store = make_store(app_client, client)
    paused = make_campaign(app_client, client, [store["id"]])
    app_client.post(f"/api/v1/campaigns/{paused['id']}/pause", headers=client.headers)
    problem(reserve(app_client, second, task_ids_of(app_client, paused["id"])[0]), 409, "task_not_available")
    draft = make_campaign(app_client, client, [store["id"]], activate=False)
    problem(reserve(app_client, second, task_ids_of(app_client, draft["id"])[0]), 409, "task_not_available")


def test_a_worker_holds_one_reservation_until_a_first_approved_visit_then_the_cap(
    app_client: Any, settings: Settings
) -> None:
    field = Field(app_client, stores=settings.max_reservations_per_worker + 2)
    worker = field.worker()
    first = field.reserve(worker, 0)
    body = problem(reserve(app_client, worker, field.tasks[1]), 409, "reservation_limit_reached")
    assert body["limit"] == settings.new_worker_max_reservations == 1
    assert "first visit" in body["detail"]

    # A first visit, approved by the checks: the normal cap applies from then on.
    photo = photos.jpeg(photos.scene(seed=5))
    answer = submit(app_client, worker, first, [upload(app_client, worker, first, photo)])
    assert answer.status_code == 202, answer.text
    assert checked(app_client, worker, first)["status"] == "approved"
    for task in range(1, settings.max_reservations_per_worker + 1):
        field.reserve(worker, task)
    body = problem(reserve(app_client, worker, field.tasks[-1]), 409, "reservation_limit_reached")
    assert body["limit"] == settings.max_reservations_per_worker == 3
    assert "first visit" not in body["detail"]
    mine = app_client.get(
        "/api/v1/me/assignments", params={"status": "reserved"}, headers=worker.headers
    ).json()
    assert len(mine["items"]) == 3


def _age(client: Any, assignment_id: str) -> None:
    with runtime_of(client).db.transaction() as session:
        session.exec(
            update(Assignment)
            .where(col(Assignment.id) == uuid.UUID(assignment_id))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )


def test_expired_reservations_free_their_slot_through_the_sweep_job(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    client, worker, late = (
        make_account(runtime, Role.client),
        make_account(runtime, Role.worker),
        make_account(runtime, Role.worker),
    )
    task_id = one_task(app_client, client, slots_per_store=1)
    assignment = reserve(app_client, worker, task_id).json()
    _age(app_client, assignment["id"])
    with runtime.db.transaction() as session:
        enqueue(session, "assignments.expire_reservations")
    runtime.jobs.join()
    expired = app_client.get(f"/api/v1/assignments/{assignment['id']}", headers=worker.headers).json()
    assert expired["status"] == "expired"
    assert expired["history"][-1]["by"] == "system"
    assert "ran out" in expired["history"][-1]["reason"]
    assert slots_taken(app_client, task_id) == 0
    assert reserve(app_client, late, task_id).status_code == 201


def test_a_reservation_frees_overdue_ones_of_the_same_task_at_once(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    client, worker, late = (
        make_account(runtime, Role.client),
        make_account(runtime, Role.worker),
        make_account(runtime, Role.worker),
    )
    task_id = one_task(app_client, client, slots_per_store=1)
    assignment = reserve(app_client, worker, task_id).json()
    _age(app_client, assignment["id"])
    assert reserve(app_client, late, task_id).status_code == 201
    assert (
        app_client.get(f"/api/v1/assignments/{assignment['id']}", headers=worker.headers).json()["status"]
        == "expired"
    )
    assert slots_taken(app_client, task_id) == 1


def test_my_assignments_page_by_page(app_client: Any, settings: Settings) -> None:
    settings.new_worker_max_reservations = settings.max_reservations_per_worker
    runtime = runtime_of(app_client)
    client, worker = make_account(runtime, Role.client), make_account(runtime, Role.worker)
    stores = [make_store(app_client, client)["id"] for _ in range(3)]
    tasks = task_ids_of(app_client, make_campaign(app_client, client, stores)["id"])
    made = [reserve(app_client, worker, t).json()["id"] for t in tasks]
    page1 = app_client.get("/api/v1/me/assignments", params={"limit": 2}, headers=worker.headers).json()
    page2 = app_client.get(
        "/api/v1/me/assignments", params={"limit": 2, "cursor": page1["next_cursor"]}, headers=worker.headers
    ).json()
    assert [a["id"] for a in page1["items"] + page2["items"]] == list(reversed(made))
    assert page2["next_cursor"] is None
    problem(app_client.get("/api/v1/me/assignments", params={"status": "lost"}, headers=worker.headers), 400)


# Concurrency: real HTTP requests against uvicorn, many at once ----------------------------------
def test_never_more_reservations_than_slots(live_server: str, settings: Settings) -> None:
    from fieldcheck.runtime import Runtime

    runtime = Runtime(settings)
    client = make_account(runtime, Role.client)
    with httpx.Client(base_url=live_server, timeout=60) as http:
        store = http.post(
            "/api/v1/stores", json={"name": "Hot", "lat": 1.0, "lon": 1.0}, headers=client.headers
        ).json()
        campaign = http.post(
            "/api/v1/campaigns",
            json={
                "title": "Rush",
                "instructions": "Go",
                "reward_cents": 500,
                "currency": "EUR",
                "estimated_minutes": 15,
                "slots_per_store": 5,
                "store_ids": [store["id"]],
            },
            headers=client.headers,
        ).json()
        http.post(
            "/api/v1/organizations/me/deposits",
            json={"amount_cents": 100_000, "currency": "EUR"},
            headers={**client.headers, "Idempotency-Key": "fund-rush"},
        )
        activated = http.post(f"/api/v1/campaigns/{campaign['id']}/activate", headers=client.headers)
        assert activated.status_code == 200, activated.text
    with runtime.db.transaction(read_only=True) as session:
        task_id = session.exec(select(Task.id).where(Task.campaign_id == uuid.UUID(campaign["id"]))).one()
    workers = [make_account(runtime, Role.worker) for _ in range(60)]

    def attempt(worker: Any) -> tuple[int, str | None]:
        with httpx.Client(base_url=live_server, timeout=120) as http:
            answer = http.post(f"/api/v1/tasks/{task_id}/reservations", headers=worker.headers)
            return answer.status_code, answer.json().get("code")

    with ThreadPoolExecutor(max_workers=30) as pool:
        results = list(pool.map(attempt, workers))
    assert sorted(results).count((201, None)) == 5, results
    assert all(result == (409, "no_slot_left") for result in results if result[0] != 201), results
    _assert_slots_match(runtime.db, task_id, 5)
    runtime.close()


def test_one_worker_racing_themselves(settings: Settings) -> None:
    from fieldcheck.runtime import Runtime

    settings.new_worker_max_reservations = settings.max_reservations_per_worker
    with running(settings) as live_server:
        _race_for_reservations(live_server, settings, Runtime(settings))


def _race_for_reservations(live_server: str, settings: Settings, runtime: Any) -> None:
    client, worker = make_account(runtime, Role.client), make_account(runtime, Role.worker)
    with httpx.Client(base_url=live_server, timeout=60) as http:
        stores = [
            http.post(
                "/api/v1/stores",
                json={"name": f"S{i}", "lat": 2.0, "lon": 2.0 + i / 1000},
                headers=client.headers,
            ).json()["id"]
            for i in range(8)
        ]
        campaign = http.post(
            "/api/v1/campaigns",
            json={
                "title": "Many",
                "instructions": "Go",
                "reward_cents": 500,
                "currency": "EUR",
                "estimated_minutes": 15,
                "slots_per_store": 3,
                "store_ids": stores,
            },
            headers=client.headers,
        ).json()
        http.post(
            "/api/v1/organizations/me/deposits",
            json={"amount_cents": 100_000, "currency": "EUR"},
            headers={**client.headers, "Idempotency-Key": "fund-many"},
        )
        assert (
            http.post(f"/api/v1/campaigns/{campaign['id']}/activate", headers=client.headers).status_code
            == 200
        )
    with runtime.db.transaction(read_only=True) as session:
        tasks = [
            str(t)
            for t in session.exec(select(Task.id).where(Task.campaign_id == uuid.UUID(campaign["id"]))).all()
        ]

    def attempt(task_id: str) -> int:
        with httpx.Client(base_url=live_server, timeout=120) as http:
            return http.post(f"/api/v1/tasks/{task_id}/reservations", headers=worker.headers).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        # Every task twice: one live reservation per task, three at most in all.
        codes = list(pool.map(attempt, tasks + tasks))
    assert codes.count(201) == settings.max_reservations_per_worker
    with runtime.db.transaction(read_only=True) as session:
        live = session.exec(
            select(func.count())
            .select_from(Assignment)
            .where(Assignment.worker_id == worker.id, Assignment.status == "reserved")
        ).one()
        assert live == settings.max_reservations_per_worker
        assert (
            session.exec(
                select(func.sum(Task.slots_taken)).where(col(Task.id).in_([uuid.UUID(t) for t in tasks]))
            ).one()
            == live
        )
    runtime.close()


def _assert_slots_match(db: Database, task_id: uuid.UUID, expected: int) -> None:
    with db.transaction(read_only=True) as session:
        task = session.get(Task, task_id)
        assert task is not None
        live = session.exec(
            select(func.count())
            .select_from(Assignment)
            .where(Assignment.task_id == task_id, Assignment.status == "reserved")
        ).one()
        events = session.exec(select(func.count()).select_from(AssignmentEvent)).one()
    assert task.slots_taken == live == expected
    assert events == expected
