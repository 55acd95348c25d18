"""Worker money: balance, payout details, payout requests, and sending them through the provider."""

from __future__ import annotations

import uuid
from collections import defaultdict

from sqlalchemy import func
from sqlmodel import Session, col, select

from fieldcheck.db import Database, utcnow
from fieldcheck.errors import Conflict, Unprocessable, field_error
from fieldcheck.i18n import _, text
from fieldcheck.ledger.models import (
    AccountKind,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Movement,
    Payout,
    PayoutDetails,
    PayoutStatus,
)
from fieldcheck.ledger.postings import PLATFORM, InsufficientFunds, Leg, account, ensure_payable, post
from fieldcheck.ledger.providers import (
    PayoutOrder,
    PayoutProvider,
    PayoutResult,
    iban_is_valid,
    new_batch_key,
)
from fieldcheck.pagination import paginate
from fieldcheck.settings import Settings

PAYOUT_BATCH = 500


def set_details(session: Session, worker_id: uuid.UUID, *, account_holder: str, iban: str) -> PayoutDetails:
    compact = iban.replace(" ", "").upper()
    if not iban_is_valid(compact):
        raise Unprocessable(
            text(_("this IBAN does not validate; check it against your bank's documents")),
            code="invalid_iban",
            errors=[field_error("iban", text(_("not a valid IBAN")))],
        )
    details = session.get(PayoutDetails, worker_id) or PayoutDetails(
        worker_id=worker_id, account_holder="", iban=""
    )
    details.account_holder, details.iban, details.updated_at = account_holder.strip(), compact, utcnow()
    session.add(details)
    return details


def worker_balance(session: Session, worker_id: uuid.UUID) -> dict[str, dict[str, int]]:
    """Per currency: earned (ever credited for work), paid out (sent), in transit, available."""
    figures: dict[str, dict[str, int]] = defaultdict(
        lambda: {"earned": 0, "paid_out": 0, "in_transit": 0, "available": 0}
    )
    earned_account = select(LedgerAccount.id).where(
        LedgerAccount.kind == AccountKind.worker_earned.value, LedgerAccount.owner_id == worker_id
    )
    for currency, total in session.exec(
        select(LedgerTransaction.currency, func.sum(LedgerEntry.amount))
        .join(LedgerTransaction, col(LedgerTransaction.id) == col(LedgerEntry.transaction_id))
        .where(
            col(LedgerEntry.account_id).in_(earned_account),
            LedgerTransaction.movement == Movement.release.value,
        )
        .group_by(col(LedgerTransaction.currency))
    ).all():
        figures[currency]["earned"] += int(total or 0)
    for currency, status, total in session.exec(
        select(Payout.currency, Payout.status, func.sum(Payout.amount_cents))
        .where(
            Payout.worker_id == worker_id,
            col(Payout.status).in_(
                [PayoutStatus.sent.value, PayoutStatus.requested.value, PayoutStatus.sending.value]
            ),
        )
        .group_by(col(Payout.currency), col(Payout.status))
    ).all():
        figures[currency]["paid_out" if status == PayoutStatus.sent.value else "in_transit"] += int(
            total or 0
        )
    for currency, balance in session.exec(
        select(LedgerAccount.currency, LedgerAccount.balance).where(
            LedgerAccount.kind == AccountKind.worker_earned.value, LedgerAccount.owner_id == worker_id
        )
    ).all():
        figures[currency]["available"] += int(balance)
    return dict(figures)


def list_payouts(
    session: Session, worker_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[list[Payout], str | None]:
    return paginate(
        session,
        select(Payout).where(Payout.worker_id == worker_id),
        time_column=col(Payout.created_at),
        id_column=col(Payout.id),
        limit=limit,
        cursor=cursor,
        newest_first=True,
    )


def request_payout(
    session: Session, settings: Settings, *, worker_id: uuid.UUID, amount_cents: int, currency: str
) -> Payout:
    ensure_payable(amount_cents, currency, settings)
    if amount_cents < settings.payout_minimum_cents:
        raise Unprocessable(
            text(
                _("a payout is at least {minimum:.2f} {currency}"),
                minimum=settings.payout_minimum_cents / 100,
                currency=currency,
            ),
            code="payout_below_minimum",
            minimum_cents=settings.payout_minimum_cents,
        )
    details = session.get(PayoutDetails, worker_id)
    if details is None:
        raise Conflict(
            text(_("give your bank account first (PUT /api/v1/me/payout-details)")),
            code="payout_details_missing",
        )
    payout = Payout(
        worker_id=worker_id,
        amount_cents=amount_cents,
        currency=currency,
        account_holder=details.account_holder,
        iban=details.iban,
    )
    session.add(payout)
    session.flush()
    try:
        post(
            session,
            reference=f"payout:{payout.id}",
            movement=Movement.payout_request,
            currency=currency,
            memo="Payout requested",
            legs=[
                Leg(account(session, AccountKind.worker_earned, worker_id, currency), -amount_cents),
                Leg(account(session, AccountKind.payouts_in_transit, PLATFORM, currency), amount_cents),
            ],
            actor_id=worker_id,
        )
    except InsufficientFunds:
        raise Conflict(
            text(_("this is more than your available balance")), code="insufficient_balance"
        ) from None
    return payout


def send_payouts(db: Database, provider: PayoutProvider) -> tuple[int, int]:
    """Hand requested payouts to the provider in batches; (sent, failed).

    Three steps, each its own transaction or none, so a crash anywhere never pays twice nor loses
    a payout: the payouts are first marked `sending` with their batch key (committed); the batch is
    handed over (the SEPA provider rewrites the same file for the same key, with the same message
    id and creation time, both read from the key); then each payout is settled: sent, or failed
    with its money back on the worker's balance. Batches left `sending` by a crash are handed over
    again and settled by the next run.
    """
    now = utcnow()
    with db.transaction() as session:
        batch_key = new_batch_key(now)
        for payout in session.exec(
            select(Payout)
            .where(Payout.status == PayoutStatus.requested.value)
            .order_by(col(Payout.created_at))
            .limit(PAYOUT_BATCH)
            .with_for_update(skip_locked=True)
        ).all():
            payout.status, payout.batch_key = PayoutStatus.sending.value, batch_key
            session.add(payout)
    with db.transaction(read_only=True) as session:
        pending = list(session.exec(select(Payout).where(Payout.status == PayoutStatus.sending.value)).all())
    batches: dict[str, list[Payout]] = defaultdict(list)
    for payout in pending:
        batches[payout.batch_key or batch_key].append(payout)
    sent = failed = 0
    for key, members in batches.items():
        orders = [
            PayoutOrder(str(p.id), p.account_holder, p.iban, p.amount_cents, p.currency) for p in members
        ]
        results = {r.payout_id: r for r in provider.send(orders, batch_key=key)}
        with db.transaction() as session:
            for payout in members:
                result = results.get(str(payout.id))
                if result is not None:
                    outcome = _settle(session, payout.id, result)
                    sent += outcome == "sent"
                    failed += outcome == "failed"
    return sent, failed


def _settle(session: Session, payout_id: uuid.UUID, result: PayoutResult) -> str | None:
    payout = session.exec(
        select(Payout)
        .where(Payout.id == payout_id, Payout.status == PayoutStatus.sending.value)
        .with_for_update()
    ).first()
    if payout is None:
        return None  # settled by another run
    in_transit = account(session, AccountKind.payouts_in_transit, PLATFORM, payout.currency)
    if result.sent:
        post(
            session,
            reference=f"payout:{payout.id}",
            movement=Movement.payout_sent,
            currency=payout.currency,
            memo=f"Sent in batch {result.batch_key}",
            legs=[
                Leg(in_transit, -payout.amount_cents),
                Leg(account(session, AccountKind.paid_out, PLATFORM, payout.currency), payout.amount_cents),
            ],
        )
        payout.status, payout.batch_key = PayoutStatus.sent.value, result.batch_key
    else:
        post(
            session,
            reference=f"payout:{payout.id}",
            movement=Movement.payout_returned,
            currency=payout.currency,
            memo=f"Payout failed, money returned: {result.failure}",
            legs=[
                Leg(in_transit, -payout.amount_cents),
                Leg(
                    account(session, AccountKind.worker_earned, payout.worker_id, payout.currency),
                    payout.amount_cents,
                ),
            ],
        )
        payout.status, payout.failure = PayoutStatus.failed.value, (result.failure or _("refused"))[:300]
    payout.settled_at = utcnow()
    session.add(payout)
    return payout.status
