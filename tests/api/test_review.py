"""Human review: queue, leases, decisions with reasons, appeals, the deadline, audits, reversals."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import col, select, update

from fieldcheck.assignments.models import Assignment
from fieldcheck.auth.models import Role
from fieldcheck.jobs import enqueue
from fieldcheck.ledger.models import LedgerTransaction
from fieldcheck.money import verify_money
from fieldcheck.reviews.models import ReviewClaim
from fieldcheck.runtime import Runtime
from fieldcheck.settings import Settings
from tests.support import photos
from tests.support.factories import make_account, problem, runtime_of
from tests.support.submissions import Field, checked, submit, upload

SEEDS = iter(range(500, 10_000))


def flagged(client: Any, field: Field, **submission: Any) -> tuple[Any, str]:
    """A submission the checks were not sure about (an imprecise position): in review."""
    worker = field.worker()
    assignment_id = field.reserve(worker)
    photo = upload(client, worker, assignment_id, photos.jpeg(photos.scene(seed=next(SEEDS))))
    assert (
        submit(client, worker, assignment_id, [photo], **({"accuracy_m": 400.0} | submission)).status_code
        == 202
    )
    assert checked(client, worker, assignment_id)["status"] in ("in_review", "rejected", "approved")
    return worker, assignment_id


def decide(
    client: Any,
    reviewer: Any,
    assignment_id: str,
    decision: str,
    reasons: list[str] | None = None,
    comment: str = "",
) -> Any:
    return client.post(
        f"/api/v1/review/{assignment_id}/decision",
        json={"decision": decision, "reasons": reasons or [], "comment": comment},
        headers=reviewer.headers,
    )


def claim(client: Any, reviewer: Any, assignment_id: str) -> Any:
    return client.post(f"/api/v1/review/{assignment_id}/claim", headers=reviewer.headers)


def ledger_ok(client: Any) -> None:
    runtime = runtime_of(client)
    with runtime.db.transaction(read_only=True) as session:
        report = verify_money(session)
    assert report.ok, report.problems


@pytest.fixture
def reviewers(app_client: Any) -> tuple[Any, Any]:
    runtime = runtime_of(app_client)
    return make_account(runtime, Role.reviewer), make_account(runtime, Role.reviewer)


def test_queue_claim_lease_and_an_approval_that_pays(app_client: Any, reviewers: tuple[Any, Any]) -> None:
    ana, bob = reviewers
    field = Field(app_client)
    first_worker, first = flagged(app_client, field)
    _, second = flagged(app_client, field)
    queue = app_client.get("/api/v1/review/queue", headers=ana.headers).json()
    assert [i["assignment_id"] for i in queue["items"]] == [first, second]  # oldest first
    assert queue["counts"] == {"flagged": 2, "sampled": 0, "appeal": 0}
    assert all(i["reason"] == "flagged" for i in queue["items"])

    lease = claim(app_client, ana, first)
    assert lease.status_code == 200, lease.text
    expires = datetime.fromisoformat(lease.json()["lease_expires_at"])
    assert timedelta(minutes=14) < expires - datetime.now(UTC) <= timedelta(minutes=15)
    problem(claim(app_client, bob, first), 409, "claimed_by_another")
    assert [
        i["assignment_id"]
        for i in app_client.get("/api/v1/review/queue", headers=bob.headers).json()["items"]
    ] == [second]
    problem(decide(app_client, bob, first, "approve"), 409, "not_claimed")

    item = app_client.get(f"/api/v1/review/{first}", headers=ana.headers).json()
    assert item["reason"] == "flagged"
    assert item["photos"][0]["url"]
    assert item["photos"][0]["thumbnail_url"]
    assert item["store_position"] and item["device_position"]
    assert item["distance_m"] is not None
    assert item["worker_record"] == {"approved": 0, "rejected": 0, "pending": 1, "approval_rate": None}
    assert item["instructions"]
    assert any(c["name"] == "location_accuracy" and c["outcome"] == "warn" for c in item["checks"])
    assert item["lease_expires_at"]

    decided = decide(app_client, ana, first, "approve", comment="fine shelf")
    assert decided.status_code == 200, decided.text
    result = app_client.get(f"/api/v1/assignments/{first}", headers=first_worker.headers).json()
    assert result["status"] == "approved"
    assert result["decision"]["decided_by"] == "reviewer"
    assert result["payment"]["status"] == "released"
    assert "Reviewer's comment: fine shelf" in result["decision"]["reasons"]
    assert str(ana.id) not in str(result)  # the worker never learns who the reviewer was
    ledger_ok(app_client)


def test_an_expired_lease_can_be_taken_and_the_late_reviewer_is_told(
    app_client: Any, reviewers: tuple[Any, Any]
) -> None:
    ana, bob = reviewers
    _, item = flagged(app_client, Field(app_client))
    assert claim(app_client, ana, item).status_code == 200
    with runtime_of(app_client).db.transaction() as session:
        session.exec(update(ReviewClaim).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    problem(decide(app_client, ana, item, "approve"), 409, "lease_expired")
    assert claim(app_client, bob, item).status_code == 200
    problem(decide(app_client, ana, item, "approve"), 409, "not_claimed")
    assert decide(app_client, bob, item, "approve").status_code == 200


def test_reject_with_reasons_then_appeal_to_another_reviewer(
    app_client: Any, reviewers: tuple[Any, Any]
) -> None:
    ana, bob = reviewers
    field = Field(app_client)
    worker, item = flagged(app_client, field)
    claim(app_client, ana, item)
    problem(decide(app_client, ana, item, "reject"), 422, "reason_required")
    problem(decide(app_client, ana, item, "reject", ["sloppy"]), 400, "validation_error")
    assert (
        decide(app_client, ana, item, "reject", ["wrong_shelf", "incomplete"], "dairy is aisle 4").status_code
        == 200
    )
    seen = app_client.get(f"/api/v1/assignments/{item}", headers=worker.headers).json()
    assert seen["status"] == "rejected"
    assert seen["decision"]["reasons"] == [
        "The photos do not show the shelf the instructions ask for.",
        "Part of what the instructions ask for is missing.",
        "Reviewer's comment: dairy is aisle 4",
    ]
    assert "appeal" in seen["history"][-1]["reason"]

    appealed = app_client.post(
        f"/api/v1/assignments/{item}/appeal",
        json={"message": "It is the right shelf, see photo 1"},
        headers=worker.headers,
    )
    assert appealed.status_code == 201, appealed.text
    problem(
        app_client.post(
            f"/api/v1/assignments/{item}/appeal", json={"message": "again"}, headers=worker.headers
        ),
        409,
        "not_rejected",
    )
    # The reviewer who rejected does not get the appeal.
    assert (
        app_client.get("/api/v1/review/queue", params={"reason": "appeal"}, headers=ana.headers).json()[
            "items"
        ]
        == []
    )
    problem(claim(app_client, ana, item), 409, "own_decision")
    queue = app_client.get("/api/v1/review/queue", params={"reason": "appeal"}, headers=bob.headers).json()
    assert [i["assignment_id"] for i in queue["items"]] == [item]
    assert (
        app_client.get(f"/api/v1/review/{item}", headers=bob.headers)
        .json()["appeal_message"]
        .startswith("It is")
    )
    claim(app_client, bob, item)
    assert decide(app_client, bob, item, "approve").status_code == 200
    final = app_client.get(f"/api/v1/assignments/{item}", headers=worker.headers).json()
    assert final["status"] == "approved"
    assert final["payment"]["status"] == "released"
    assert [h["to_status"] for h in final["history"]][-3:] == ["rejected", "appealed", "approved"]
    ledger_ok(app_client)


def test_a_rejected_appeal_is_final_and_frees_the_slot(app_client: Any, reviewers: tuple[Any, Any]) -> None:
    ana, bob = reviewers
    field = Field(app_client, slots_per_store=1)
    worker, item = flagged(app_client, field)
    claim(app_client, ana, item)
    decide(app_client, ana, item, "reject", ["blurry"])
    app_client.post(
        f"/api/v1/assignments/{item}/appeal", json={"message": "please look again"}, headers=worker.headers
    )
    claim(app_client, bob, item)
    assert decide(app_client, bob, item, "reject", ["not_in_store"]).status_code == 200
    seen = app_client.get(f"/api/v1/assignments/{item}", headers=worker.headers).json()
    assert seen["status"] == "rejected"
    assert "final" in seen["history"][-1]["reason"]
    problem(
        app_client.post(f"/api/v1/assignments/{item}/appeal", json={"message": "x"}, headers=worker.headers),
        409,
        "already_appealed",
    )
    another = field.worker()  # the slot went back to the task
    assert field.reserve(another)
    ledger_ok(app_client)


def test_nobody_reviews_their_own_work(app_client: Any, reviewers: tuple[Any, Any]) -> None:
    ana, _ = reviewers
    _, item = flagged(app_client, Field(app_client))
    with runtime_of(app_client).db.transaction() as session:
        session.exec(update(Assignment).where(col(Assignment.id) == uuid.UUID(item)).values(worker_id=ana.id))
    assert app_client.get("/api/v1/review/queue", headers=ana.headers).json()["items"] == []
    problem(claim(app_client, ana, item), 409, "own_work")


def test_the_deadline_approves_and_pays_what_nobody_reviewed(app_client: Any) -> None:
    field = Field(app_client, review_deadline_hours=1)
    worker, item = flagged(app_client, field)
    runtime = runtime_of(app_client)
    with runtime.db.transaction() as session:
        session.exec(
            update(Assignment)
            .where(col(Assignment.id) == uuid.UUID(item))
            .values(review_due_at=datetime.now(UTC) - timedelta(minutes=1))
        )
        enqueue(session, "reviews.approve_overdue")
    runtime.jobs.join()
    result = app_client.get(f"/api/v1/assignments/{item}", headers=worker.headers).json()
    assert result["status"] == "approved"
    assert result["decision"]["decided_by"] == "system"
    assert "1 hours" in result["history"][-1]["reason"]
    assert result["payment"]["status"] == "released"
    ledger_ok(app_client)


def test_audits_of_approved_work_keep_the_payment(app_client: Any, reviewers: tuple[Any, Any]) -> None:
    ana, _ = reviewers
    field = Field(app_client, audit_sample_percent=100)
    worker = field.worker()
    assignment_id = field.reserve(worker)
    photo = upload(app_client, worker, assignment_id, photos.jpeg(photos.scene(seed=next(SEEDS))))
    submit(app_client, worker, assignment_id, [photo])
    assert checked(app_client, worker, assignment_id)["status"] == "approved"
    queue = app_client.get("/api/v1/review/queue", params={"reason": "sampled"}, headers=ana.headers).json()
    assert [i["assignment_id"] for i in queue["items"]] == [assignment_id]
    claim(app_client, ana, assignment_id)
    assert decide(app_client, ana, assignment_id, "reject", ["wrong_shelf"]).status_code == 200
    result = app_client.get(f"/api/v1/assignments/{assignment_id}", headers=worker.headers).json()
    assert result["status"] == "approved"
    assert result["payment"]["status"] == "released"
    assert "payment stands" in result["history"][-1]["reason"]
    assert (
        app_client.get("/api/v1/review/queue", params={"reason": "sampled"}, headers=ana.headers).json()[
            "items"
        ]
        == []
    )
    ledger_ok(app_client)


def test_an_admin_reverses_a_wrong_rejection(app_client: Any) -> None:
    admin = make_account(runtime_of(app_client), Role.admin)
    field = Field(app_client)
    worker, item = flagged(app_client, field, is_mock=True)  # rejected by the checks
    assert (
        app_client.get(f"/api/v1/assignments/{item}", headers=worker.headers).json()["status"] == "rejected"
    )
    reversed_ = app_client.post(
        f"/api/v1/admin/assignments/{item}/reverse-rejection",
        json={"reason": "the mock-location flag was a phone bug"},
        headers=admin.headers,
    )
    assert reversed_.status_code == 200, reversed_.text
    result = app_client.get(f"/api/v1/assignments/{item}", headers=worker.headers).json()
    assert result["status"] == "approved"
    assert result["payment"]["status"] == "released"
    assert "phone bug" in result["decision"]["reasons"][0]
    problem(
        app_client.post(
            f"/api/v1/admin/assignments/{item}/reverse-rejection",
            json={"reason": "again"},
            headers=admin.headers,
        ),
        409,
        "not_rejected",
    )
    ledger_ok(app_client)


def test_roles(app_client: Any) -> None:
    worker = make_account(runtime_of(app_client), Role.worker)
    client = make_account(runtime_of(app_client), Role.client)
    for account in (worker, client):
        problem(app_client.get("/api/v1/review/queue", headers=account.headers), 403, "wrong_role")


# Races: one payment whatever happens at once ----------------------------------------------------
RACES = [
    pytest.param("embedded", id="sqlite"),
    pytest.param("services", id="postgres", marks=pytest.mark.services),
]


def _race(
    runtime: Runtime, settings: Settings, reviewer_id: uuid.UUID, item_id: uuid.UUID
) -> list[BaseException]:
    """A reviewer's approval, the deadline job and a stray automatic approval, released together."""
    from fieldcheck.assignments.models import ActorType, AssignmentStatus
    from fieldcheck.assignments.transitions import transition
    from fieldcheck.reviews import service as reviews

    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def by_reviewer() -> None:
        with runtime.db.transaction() as session:
            reviews.decide(
                session,
                reviewer_id=reviewer_id,
                assignment_id=item_id,
                approve=True,
                reasons=[],
                comment="",
            )

    def by_deadline() -> None:
        with runtime.db.transaction() as session:
            reviews.approve_overdue(session, runtime.settings)

    def by_system() -> None:
        with runtime.db.transaction() as session:
            transition(
                session,
                item_id,
                from_statuses=[AssignmentStatus.in_review],
                to=AssignmentStatus.approved,
                actor_type=ActorType.system,
                actor_id=None,
                reason="stray automatic approval",
            )

    def run(action: Any) -> None:
        barrier.wait()
        try:
            action()
        except Exception as exc:  # the losers may be told the item changed
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(a,)) for a in (by_reviewer, by_deadline, by_system)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.parametrize("backend", RACES)
def test_reviewer_deadline_and_system_race_on_one_assignment(backends: Any, backend: str) -> None:
    """An item in review: a reviewer approves, the deadline job fires, and a stray automatic
    approval runs, all at once. Exactly one of them approves, and the worker is paid once."""
    from litestar.testing import TestClient

    from fieldcheck.app import create_app
    from fieldcheck.reviews import service as reviews

    settings: Settings = backends.make(backend)
    with TestClient(create_app(settings), base_url="http://testserver.local") as client:
        reviewer = make_account(runtime_of(client), Role.reviewer)
        for _ in range(3):
            _, item = flagged(client, Field(client, review_deadline_hours=1))
            item_id = uuid.UUID(item)
            runtime: Runtime = runtime_of(client)
            with runtime.db.transaction() as session:
                reviews.claim(session, settings, reviewer_id=reviewer.id, assignment_id=item_id)
                session.exec(
                    update(Assignment)
                    .where(col(Assignment.id) == item_id)
                    .values(review_due_at=datetime.now(UTC) - timedelta(minutes=1))
                )
            errors = _race(runtime, settings, reviewer.id, item_id)
            assert all("changed" in str(e) or "review" in str(e) for e in errors), errors
            with runtime.db.transaction(read_only=True) as session:
                releases = session.exec(
                    select(LedgerTransaction).where(LedgerTransaction.reference == f"assignment:{item_id}")
                ).all()
                assert [t.movement for t in releases] == ["release"]
                assert session.get(Assignment, item_id).status == "approved"  # type: ignore[union-attr]
                assert verify_money(session).ok
