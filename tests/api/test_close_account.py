"""A worker closes their account: pseudonymised, signed out at once, reservations given back,
the money owed paid out, the ledger untouched."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import select

from fieldcheck.assignments.models import Assignment
from fieldcheck.auth.models import Role, User
from fieldcheck.ledger.models import Payout, PayoutDetails
from fieldcheck.money import verify_money
from tests.api.test_review import claim, decide
from tests.support import photos
from tests.support.factories import make_account, problem, runtime_of
from tests.support.submissions import Field, checked, submit, upload

IBAN = "FR7630006000011234567890189"


def approved_visit(client: Any, field: Field, worker: Any) -> None:
    assignment_id = field.reserve(worker)
    photo_id = upload(client, worker, assignment_id, photos.jpeg(photos.scene(seed=901)))
    assert submit(client, worker, assignment_id, [photo_id]).status_code == 202
    if checked(client, worker, assignment_id)["status"] == "in_review":  # a new worker's first visit
        reviewer = make_account(runtime_of(client), Role.reviewer)
        assert claim(client, reviewer, assignment_id).status_code == 200
        assert decide(client, reviewer, assignment_id, "approve").status_code == 200
    assert checked(client, worker, assignment_id)["status"] == "approved"


def test_a_worker_closes_their_account(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    field = Field(app_client, stores=2, reward_cents=1200)
    worker = make_account(runtime, Role.worker)
    approved_visit(app_client, field, worker)  # 12.00 EUR earned
    details = app_client.put(
        "/api/v1/me/payout-details",
        json={"account_holder": "Ana Worker", "iban": IBAN},
        headers=worker.headers,
    )
    assert details.status_code == 200, details.text
    held = field.reserve(worker, task=1)

    wrong = app_client.request("DELETE", "/api/v1/me", json={"password": "not it"}, headers=worker.headers)
    problem(wrong, 422, "wrong_password")
    assert app_client.get("/api/v1/me", headers=worker.headers).status_code == 200  # nothing changed
    problem(app_client.request("DELETE", "/api/v1/me", json={}, headers=worker.headers), 400)

    closed = app_client.request(
        "DELETE", "/api/v1/me", json={"password": worker.password}, headers=worker.headers
    )
    assert closed.status_code == 204, closed.text
    # The token stops at once; the sign-in is gone.
    problem(app_client.get("/api/v1/me", headers=worker.headers), 401)
    signin = app_client.post("/api/v1/auth/token", json={"email": worker.email, "password": worker.password})
    assert signin.status_code == 401
    with runtime.db.transaction(read_only=True) as session:
        user = session.get(User, worker.id)
        assert user is not None and user.closed_at is not None and not user.is_active
        assert (
            user.email == f"closed-{worker.id.hex}@closed.invalid" and user.display_name == "Closed account"
        )
        assert user.password_hash == ""
        assert session.get(PayoutDetails, worker.id) is None  # bank details forgotten
        payouts = session.exec(select(Payout).where(Payout.worker_id == worker.id)).all()
        assert [(p.amount_cents, p.currency, p.iban) for p in payouts] == [(1200, "EUR", IBAN)]
        report = verify_money(session)
        assert report.ok, report.problems
    # The reservation held was given back (its slot returns to the task).
    with runtime.db.transaction(read_only=True) as session:
        assignment = session.get(Assignment, uuid.UUID(held))
        assert assignment is not None and assignment.status == "cancelled"
    # An admin cannot bring it back; its e-mail address is free for a new account.
    admin = make_account(runtime, Role.admin)
    again = app_client.post(f"/api/v1/admin/users/{worker.id}/reactivate", headers=admin.headers)
    problem(again, 409, "account_closed")
    fresh = app_client.post(
        "/api/v1/auth/register",
        json={"email": worker.email, "password": "a new and long passphrase 42", "display_name": "Ana again"},
    )
    assert fresh.status_code == 202, fresh.text
    token = app_client.post(
        "/api/v1/auth/token", json={"email": worker.email, "password": "a new and long passphrase 42"}
    )
    assert token.status_code == 200, token.text


def test_only_a_worker_closes_an_account_here(app_client: Any) -> None:
    client = make_account(runtime_of(app_client), Role.client)
    answer = app_client.request(
        "DELETE", "/api/v1/me", json={"password": client.password}, headers=client.headers
    )
    problem(answer, 403)
    assert app_client.get("/api/v1/me", headers=client.headers).status_code == 200
