"""Payouts through the whole flow into SEPA credit-transfer files: what the bank receives holds the
official schema of the configured version, says what the ledger says, and a batch written again
after a crash is the same file, paid once. Payouts that cannot go into it fail with their money back."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import col, select, update

from fieldcheck.auth.models import Role
from fieldcheck.ledger import payouts
from fieldcheck.ledger.models import LedgerTransaction, Movement, Payout, PayoutStatus
from fieldcheck.ledger.providers import PayoutOrder, PayoutProvider, PayoutResult, batch_made_at
from fieldcheck.ledger.sepa import message_id
from fieldcheck.money import verify_money
from fieldcheck.settings import Settings
from fieldcheck.storage import LocalStorage, S3Storage
from tests.support import photos, sepa
from tests.support.backends import BACKENDS, BackendFactory
from tests.support.factories import (
    Account,
    deposit,
    make_account,
    make_campaign,
    make_store,
    reserve,
    runtime_of,
    task_of,
)
from tests.support.submissions import STORE_LAT, STORE_LON, checked, jobs_held, submit, upload

IBAN = "FR7630006000011234567890189"
DEBTOR = {
    "payout_debtor_name": "Plateforme Fieldcheck SAS \u2014 Trésorerie",
    "payout_debtor_iban": "fr14 2004 1010 0505 0001 3m02 606",
    "payout_debtor_bic": "PSSTFRPPLIL",
}
REWARD = 2_500


@pytest.fixture
def pain_version() -> str:
    return "pain.001.001.09"


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, backends: BackendFactory, pain_version: str) -> Settings:
    """Each backend, with the platform's account configured and Swiss francs accepted too."""
    return backends.make(
        request.param,
        payout_pain_version=pain_version,
        pay_floor_cents_per_hour={"EUR": 1202, "CHF": 1300},
        **DEBTOR,
    )


def earners(client: Any, count: int, *, currency: str = "EUR", seed: int = 700) -> list[Account]:
    """`count` workers, each paid REWARD for an approved visit (one store each, distinct photos)."""
    runtime = runtime_of(client)
    owner = make_account(runtime, Role.client)
    stores = [
        make_store(client, owner, lat=STORE_LAT + i * 0.01, lon=STORE_LON, geofence_m=150)["id"]
        for i in range(count)
    ]
    deposit(client, owner, 5_000_000, currency=currency)
    campaign = make_campaign(
        client,
        owner,
        stores,
        fund=False,
        reward_cents=REWARD,
        currency=currency,
        estimated_minutes=60,
        slots_per_store=1,
        photo_rules={"min_photos": 1, "max_photos": 4, "min_short_side_px": 1000},
    )
    workers: list[tuple[Account, str]] = []
    for i, store in enumerate(stores):
        worker = make_account(runtime, Role.worker)
        reserved = reserve(client, worker, task_of(client, campaign["id"], store))
        assert reserved.status_code == 201, reserved.text
        assignment_id = str(reserved.json()["id"])
        photo = upload(client, worker, assignment_id, photos.jpeg(photos.scene(seed=seed + i)))
        sent = submit(client, worker, assignment_id, [photo], lat=STORE_LAT + i * 0.01)
        assert sent.status_code == 202, sent.text
        workers.append((worker, assignment_id))
    for worker, assignment_id in workers:
        assert checked(client, worker, assignment_id)["status"] == "approved"
    return [worker for worker, _ in workers]


def bank_details(client: Any, worker: Account, holder: str, iban: str = IBAN) -> None:
    answer = client.put(
        "/api/v1/me/payout-details", json={"account_holder": holder, "iban": iban}, headers=worker.headers
    )
    assert answer.status_code == 200, answer.text


def ask(client: Any, worker: Account, amount: int, currency: str = "EUR") -> str:
    answer = client.post(
        "/api/v1/me/payouts",
        json={"amount_cents": amount, "currency": currency},
        headers={**worker.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def my_payout(client: Any, worker: Account, language: str = "en") -> dict[str, Any]:
    answer = client.get("/api/v1/me/payouts", headers={**worker.headers, "Accept-Language": language})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    assert len(items) == 1
    return items[0]


def available(client: Any, worker: Account, currency: str) -> int:
    answer = client.get("/api/v1/me/balance", headers=worker.headers)
    assert answer.status_code == 200, answer.text
    return int({b["currency"]: b for b in answer.json()["balances"]}[currency]["available_cents"])


def stored_payouts(client: Any) -> dict[str, Payout]:
    with runtime_of(client).db.transaction(read_only=True) as session:
        return {str(p.id): p for p in session.exec(select(Payout)).all()}


def batch_files(client: Any) -> list[str]:
    """Every payout file in object storage, whichever backend."""
    storage = runtime_of(client).storage
    if isinstance(storage, S3Storage):
        listed = storage.client.list_objects_v2(Bucket=storage.bucket, Prefix="payouts/")
        return sorted(str(o["Key"]) for o in listed.get("Contents", []))
    assert isinstance(storage, LocalStorage)
    folder = storage.root / "payouts"
    return sorted(str(p.relative_to(storage.root)) for p in folder.rglob("*") if p.is_file())


def ledger_ok(client: Any) -> None:
    with runtime_of(client).db.transaction(read_only=True) as session:
        report = verify_money(session)
    assert report.ok, report.problems


@pytest.mark.parametrize("pain_version", sepa.VERSIONS)
def test_payouts_are_one_file_the_bank_schema_accepts(app_client: Any, pain_version: str) -> None:
    zoe, aegir, emoji = earners(app_client, 3)
    bank_details(app_client, zoe, "Zoë Dąbrowska-Øster")
    bank_details(app_client, aegir, "Ægir Þórsson & Co")
    bank_details(app_client, emoji, "😀🏦")
    with jobs_held(app_client):
        asked = {ask(app_client, zoe, 1_000): 1_000, ask(app_client, aegir, 1_234): 1_234}
        asked[ask(app_client, emoji, 2_500)] = 2_500
    runtime_of(app_client).jobs.join()

    stored = stored_payouts(app_client)
    assert {p.status for p in stored.values()} == {PayoutStatus.sent.value}
    (key,) = {p.batch_key for p in stored.values()}  # one batch, one file
    assert key is not None and key.endswith(".xml")
    assert batch_files(app_client) == [key]
    info = runtime_of(app_client).storage.head(key)
    assert info is not None and info.content_type == "application/xml"
    document = runtime_of(app_client).storage.get_bytes(key)
    assert sepa.schema_errors(document, pain_version) == []

    written = sepa.read(document)
    assert written.version == pain_version
    assert written.message_id == message_id(key) and len(written.message_id) <= 35
    assert written.created_at == f"{batch_made_at(key):%Y-%m-%dT%H:%M:%S}"
    # One transaction per payout, its end-to-end id the payout's id (32 hex digits).
    by_payout = {str(uuid.UUID(t.end_to_end_id)): t for t in written.transactions}
    assert len(by_payout) == len(written.transactions) == 3
    assert {p: t.amount_cents for p, t in by_payout.items()} == asked
    assert {t.currency for t in written.transactions} == {"EUR"}
    assert {t.creditor_iban for t in written.transactions} == {IBAN}
    assert (written.count, written.control_sum_cents) == (3, 4_734)
    assert (written.payment_counts, written.payment_sums_cents) == ([3], [4_734])
    names = {stored[p].account_holder: t.creditor_name for p, t in by_payout.items()}
    assert names == {
        "Zoë Dąbrowska-Øster": "Zoe Dabrowska-Oster",
        "Ægir Þórsson & Co": "AEgir Thorsson Co",
        "😀🏦": "NOTPROVIDED",
    }
    assert all(sepa.is_sepa_text(t.creditor_name) for t in written.transactions)
    assert {t.remittance for t in written.transactions} == {
        f"fieldcheck payout {uuid.UUID(p).hex[:8]}" for p in asked
    }
    # The debtor is the platform's account from the settings.
    assert written.debtor_name == written.initiating_party == "Plateforme Fieldcheck SAS -- Tresorerie"
    assert (written.debtor_iban, written.debtor_bic) == ("FR1420041010050500013M02606", "PSSTFRPPLIL")
    assert available(app_client, zoe, "EUR") == REWARD - 1_000
    ledger_ok(app_client)


class CrashAfterHandOver:
    """The bank file is written, then the process dies before any payout is settled."""

    name = "crashing"

    def __init__(self, provider: PayoutProvider) -> None:
        self.provider = provider

    def send(self, orders: list[PayoutOrder], *, batch_key: str) -> list[PayoutResult]:
        self.provider.send(orders, batch_key=batch_key)
        raise RuntimeError("killed after the hand-over")


def test_a_batch_handed_over_again_after_a_crash_is_the_same_file_and_pays_once(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    first, second = earners(app_client, 2)
    bank_details(app_client, first, "Anaïs Müller")
    bank_details(app_client, second, "Bo")
    with jobs_held(app_client):
        ids = [ask(app_client, first, 1_500), ask(app_client, second, 2_000)]
        with pytest.raises(RuntimeError, match="killed"):
            payouts.send_payouts(runtime.db, CrashAfterHandOver(runtime.payout_provider))
        crashed = stored_payouts(app_client)
        assert {p.status for p in crashed.values()} == {PayoutStatus.sending.value}
        (key,) = {p.batch_key for p in crashed.values()}
        assert key is not None
        before = runtime.storage.get_bytes(key)

        assert payouts.send_payouts(runtime.db, runtime.payout_provider) == (2, 0)
        assert runtime.storage.get_bytes(key) == before  # the same file, rewritten
        assert batch_files(app_client) == [key]  # never a second one
        assert payouts.send_payouts(runtime.db, runtime.payout_provider) == (0, 0)
    runtime.jobs.join()

    settled = stored_payouts(app_client)
    assert {(p.status, p.batch_key) for p in settled.values()} == {(PayoutStatus.sent.value, key)}
    with runtime.db.transaction(read_only=True) as session:
        sent_once = session.exec(
            select(LedgerTransaction.reference, func.count())
            .where(LedgerTransaction.movement == Movement.payout_sent.value)
            .group_by(col(LedgerTransaction.reference))
        ).all()
    assert sorted(sent_once) == sorted((f"payout:{i}", 1) for i in ids)
    written = sepa.read(before)
    assert sorted(str(uuid.UUID(t.end_to_end_id)) for t in written.transactions) == sorted(ids)
    assert (written.count, written.control_sum_cents) == (2, 3_500)
    assert available(app_client, first, "EUR") == REWARD - 1_500
    ledger_ok(app_client)


def test_a_payout_whose_iban_does_not_validate_fails_with_its_money_back(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    good, bad = earners(app_client, 2)
    bank_details(app_client, good, "Good Worker")
    bank_details(app_client, bad, "Bad Iban")
    with jobs_held(app_client):
        good_id, bad_id = ask(app_client, good, 1_000), ask(app_client, bad, 2_000)
        # Bank details checked when given can still be wrong in a payout (a row from before the
        # check, a hand edit): the file must not carry them.
        with runtime.db.transaction() as session:
            session.execute(
                update(Payout)
                .where(col(Payout.id) == uuid.UUID(bad_id))
                .values(iban="FR7630006000011234567890188")
            )
    runtime.jobs.join()

    refused = my_payout(app_client, bad)
    assert (refused["status"], refused["failure"]) == ("failed", "the IBAN does not validate")
    assert my_payout(app_client, bad, "fr")["failure"] == "l'IBAN n'est pas valide"
    assert available(app_client, bad, "EUR") == REWARD
    assert my_payout(app_client, good)["status"] == "sent"
    stored = stored_payouts(app_client)
    key = stored[good_id].batch_key
    assert key is not None
    assert stored[bad_id].batch_key == key  # it was in the batch, but not in its file
    written = sepa.read(runtime.storage.get_bytes(key))
    assert [uuid.UUID(t.end_to_end_id) for t in written.transactions] == [uuid.UUID(good_id)]
    assert (written.count, written.control_sum_cents) == (1, 1_000)
    ledger_ok(app_client)


def test_a_payout_in_another_currency_than_euros_fails_with_its_money_back(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    (euros,) = earners(app_client, 1)
    (francs,) = earners(app_client, 1, currency="CHF", seed=760)
    bank_details(app_client, euros, "Euro Worker")
    bank_details(app_client, francs, "Franc Worker")
    with jobs_held(app_client):
        euro_id = ask(app_client, euros, 1_200)
        ask(app_client, francs, 2_000, currency="CHF")
    runtime.jobs.join()

    refused = my_payout(app_client, francs)
    assert refused["status"] == "failed"
    assert refused["failure"] == "only euros can be paid out by SEPA transfer"
    assert (
        my_payout(app_client, francs, "fr")["failure"]
        == "seuls les euros peuvent être versés par virement SEPA"
    )
    assert available(app_client, francs, "CHF") == REWARD  # the money is back
    key = stored_payouts(app_client)[euro_id].batch_key
    assert key is not None
    assert batch_files(app_client) == [key]
    written = sepa.read(runtime.storage.get_bytes(key))
    assert [(t.end_to_end_id, t.currency, t.amount_cents) for t in written.transactions] == [
        (uuid.UUID(euro_id).hex, "EUR", 1_200)
    ]
    ledger_ok(app_client)
