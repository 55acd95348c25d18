"""The ledger's one way in for the rest of fieldcheck: each movement by its name, and the figures
other domains read back.

The ledger knows no domain. Callers pass ids, amounts and a reference (`campaign:<id>`,
`assignment:<id>`); what a campaign must hold or what approved work earns is decided by them.
Every movement is keyed by (reference, movement), so a retried call moves nothing twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from fieldcheck.db import new_id, utcnow
from fieldcheck.i18n import translate
from fieldcheck.ledger import payouts
from fieldcheck.ledger.funds import deposit, list_deposits, organization_balance
from fieldcheck.ledger.models import (
    AccountKind,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    LedgerVerification,
    Movement,
    Payout,
    PayoutDetails,
    PayoutStatus,
)
from fieldcheck.ledger.postings import PLATFORM, InsufficientFunds, Leg, account, balance_of, post
from fieldcheck.ledger.providers import PaymentProvider
from fieldcheck.settings import Settings

__all__ = [
    "AccountKind",
    "EscrowPosition",
    "InsufficientFunds",
    "PaymentProvider",
    "Payout",
    "PayoutStatus",
    "available_balance",
    "deposit",
    "escrow_position",
    "escrow_positions",
    "hold_escrow",
    "list_deposits",
    "organization_balance",
    "paid_rewards",
    "pay_by_platform",
    "payments_per_reference",
    "refund_escrow",
    "release_from_escrow",
    "settle_closed_worker",
]


@dataclass(frozen=True)
class EscrowPosition:
    held: int  # what the escrow account holds now
    releases: int  # how many payments left it
    released: int  # what those payments took (rewards and fees)


# Escrow ----------------------------------------------------------------------------------------
def hold_escrow(
    session: Session,
    *,
    reference: str,
    escrow_id: uuid.UUID,
    holder_id: uuid.UUID,
    currency: str,
    amount: int,
    memo: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Move `amount` from the holder's available money into the escrow account `escrow_id`.

    Raises InsufficientFunds when the holder has less available.
    """
    available = account(session, AccountKind.client_available, holder_id, currency, holder_id=holder_id)
    escrow = account(session, AccountKind.client_escrow, escrow_id, currency, holder_id=holder_id)
    post(
        session,
        reference=reference,
        movement=Movement.escrow_hold,
        currency=currency,
        memo=memo,
        legs=[Leg(available, -amount), Leg(escrow, amount)],
        details=details,
    )


def release_from_escrow(
    session: Session,
    *,
    reference: str,
    escrow_id: uuid.UUID,
    worker_id: uuid.UUID,
    currency: str,
    reward: int,
    fee: int,
    memo: str,
    actor_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> bool:
    """Pay `reward` to the worker and `fee` to the platform out of escrow, once per reference."""
    escrow = account(session, AccountKind.client_escrow, escrow_id, currency)
    earned = account(session, AccountKind.worker_earned, worker_id, currency)
    legs = [Leg(escrow, -(reward + fee)), Leg(earned, reward)]
    if fee:
        legs.append(Leg(account(session, AccountKind.platform_fees, PLATFORM, currency), fee))
    return (
        post(
            session,
            reference=reference,
            movement=Movement.release,
            currency=currency,
            memo=memo,
            legs=legs,
            actor_id=actor_id,
            details={**(details or {}), "reward": reward, "fee": fee},
        )
        is not None
    )


def pay_by_platform(
    session: Session,
    *,
    reference: str,
    worker_id: uuid.UUID,
    currency: str,
    reward: int,
    memo: str,
    actor_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> bool:
    """The platform pays a reward itself (its own mistake). The same key as a release from escrow:
    a reward is paid once, whoever pays it."""
    return (
        post(
            session,
            reference=reference,
            movement=Movement.release,
            currency=currency,
            memo=memo,
            legs=[
                Leg(account(session, AccountKind.platform_compensation, PLATFORM, currency), -reward),
                Leg(account(session, AccountKind.worker_earned, worker_id, currency), reward),
            ],
            actor_id=actor_id,
            details={**(details or {}), "reward": reward, "fee": 0, "paid_by": "platform"},
        )
        is not None
    )


def refund_escrow(
    session: Session,
    *,
    reference: str,
    escrow_id: uuid.UUID,
    holder_id: uuid.UUID,
    currency: str,
    keep: int,
    details: dict[str, Any] | None = None,
) -> int:
    """Give the holder back whatever the escrow holds beyond `keep`; returns the amount refunded."""
    escrow = account(session, AccountKind.client_escrow, escrow_id, currency, holder_id=holder_id)
    # Lock the escrow account: the balance read here is the one the refund changes.
    held = session.exec(
        select(LedgerAccount.balance).where(LedgerAccount.id == escrow.id).with_for_update()
    ).one()
    excess = int(held) - keep
    if excess <= 0:
        return 0
    post(
        session,
        reference=reference,
        movement=Movement.refund,
        key=new_id().hex,
        currency=currency,
        memo="Unused escrow returned",
        legs=[
            Leg(escrow, -excess),
            Leg(
                account(session, AccountKind.client_available, holder_id, currency, holder_id=holder_id),
                excess,
            ),
        ],
        details={**(details or {}), "kept": keep},
    )
    return excess


def _releases(escrow_ids: Sequence[uuid.UUID] | None) -> Any:
    query = (
        select(
            LedgerAccount.owner_id,
            func.count(col(LedgerEntry.id)),
            func.coalesce(func.sum(LedgerEntry.amount), 0),
        )
        .join(LedgerEntry, col(LedgerEntry.account_id) == col(LedgerAccount.id))
        .join(LedgerTransaction, col(LedgerTransaction.id) == col(LedgerEntry.transaction_id))
        .where(
            LedgerAccount.kind == AccountKind.client_escrow.value,
            LedgerTransaction.movement == Movement.release,
        )
        .group_by(col(LedgerAccount.owner_id))
    )
    if escrow_ids is not None:
        query = query.where(col(LedgerAccount.owner_id).in_(escrow_ids))
    return query


def escrow_position(session: Session, escrow_id: uuid.UUID, currency: str) -> EscrowPosition:
    held = balance_of(session, AccountKind.client_escrow, escrow_id, currency)
    row = session.exec(_releases([escrow_id]).where(LedgerAccount.currency == currency)).first()
    count, total = (int(row[1]), -int(row[2])) if row else (0, 0)
    return EscrowPosition(held=held, releases=count, released=total)


def escrow_positions(session: Session) -> dict[uuid.UUID, EscrowPosition]:
    """Every escrow account's position, in two queries (for verification)."""
    held = dict(
        session.exec(
            select(LedgerAccount.owner_id, LedgerAccount.balance).where(
                LedgerAccount.kind == AccountKind.client_escrow.value
            )
        ).all()
    )
    released = {
        owner: (int(count), -int(total)) for owner, count, total in session.exec(_releases(None)).all()
    }
    return {
        owner: EscrowPosition(int(balance), *released.get(owner, (0, 0))) for owner, balance in held.items()
    }


# Figures ---------------------------------------------------------------------------------------
def escrow_totals(session: Session) -> dict[str, int]:
    """Money held in escrow for campaigns, per currency (for monitoring)."""
    rows = session.exec(
        select(LedgerAccount.currency, func.sum(LedgerAccount.balance))
        .where(LedgerAccount.kind == AccountKind.client_escrow.value)
        .group_by(col(LedgerAccount.currency))
    ).all()
    return {currency: int(total or 0) for currency, total in rows}


def available_balance(session: Session, holder_id: uuid.UUID, currency: str) -> int:
    return balance_of(session, AccountKind.client_available, holder_id, currency)


def paid_rewards(session: Session, references: Sequence[str]) -> dict[str, int]:
    """The reward paid for each of these references that was paid, in one query."""
    if not references:
        return {}
    rows = session.exec(
        select(LedgerTransaction.reference, LedgerTransaction.details).where(
            col(LedgerTransaction.reference).in_(list(references)),
            LedgerTransaction.movement == Movement.release.value,
        )
    ).all()
    return {reference: int((details or {}).get("reward", 0)) for reference, details in rows}


def payments_per_reference(session: Session, prefix: str) -> dict[str, int]:
    """How many times each reference starting with `prefix` was paid (once, or it is a bug)."""
    rows = session.exec(
        select(LedgerTransaction.reference, func.count())
        .where(
            LedgerTransaction.movement == Movement.release.value,
            col(LedgerTransaction.reference).startswith(prefix),
        )
        .group_by(col(LedgerTransaction.reference))
    ).all()
    return {reference: int(count) for reference, count in rows}


# Verifications --------------------------------------------------------------------------------
KEEP_VERIFICATIONS = timedelta(days=30)
SHOWN_PROBLEMS = 50


def record_verification(
    session: Session, *, checked: dict[str, int], problems: list[str]
) -> LedgerVerification:
    """Keep a scheduled verification's result (and forget those older than a month)."""
    row = LedgerVerification(
        ok=not problems,
        problem_count=len(problems),
        checked=dict(checked),
        problems=problems[:SHOWN_PROBLEMS],
    )
    session.add(row)
    session.exec(delete(LedgerVerification).where(col(LedgerVerification.at) < utcnow() - KEEP_VERIFICATIONS))
    return row


def last_verification(session: Session) -> LedgerVerification | None:
    return session.exec(
        select(LedgerVerification).order_by(col(LedgerVerification.at).desc()).limit(1)
    ).first()


def verification_since(session: Session, moment: datetime) -> LedgerVerification | None:
    """The first verification recorded at or after `moment`: one asked for then (or a scheduled
    one that ended after it), once it has run."""
    return session.exec(
        select(LedgerVerification)
        .where(col(LedgerVerification.at) >= moment)
        .order_by(col(LedgerVerification.at))
        .limit(1)
    ).first()


# The platform as a whole (the admins' overview and payouts) -------------------------------------
def totals_by_kind(session: Session) -> dict[str, dict[AccountKind, int]]:
    """Per currency, what the accounts of each kind hold together: the platform's fee income
    (platform_fees), escrow for campaigns, clients' and workers' money, payouts in transit."""
    totals: dict[str, dict[AccountKind, int]] = {}
    for currency, kind, total in session.exec(
        select(LedgerAccount.currency, LedgerAccount.kind, func.sum(LedgerAccount.balance)).group_by(
            col(LedgerAccount.currency), col(LedgerAccount.kind)
        )
    ).all():
        totals.setdefault(currency, {})[AccountKind(kind)] = int(total or 0)
    return dict(sorted(totals.items()))


def payout_counts(session: Session) -> dict[PayoutStatus, int]:
    """How many payouts are in each status (every status, 0 when none)."""
    found = dict(session.exec(select(Payout.status, func.count()).group_by(col(Payout.status))).all())
    return {status: int(found.get(status.value, 0)) for status in PayoutStatus}


@dataclass(frozen=True)
class PayoutBatch:
    """The payouts handed to the payout provider under one batch key (the file's key in storage)."""

    key: str
    requested_from: datetime  # the oldest request in it
    settled_at: datetime | None  # when its last payout was settled; None while one is still sending
    count: int
    totals: dict[str, int] = field(default_factory=dict)  # per currency, every payout in it
    statuses: dict[PayoutStatus, int] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """sending, sent, failed, or partly failed (some sent, some refused)."""
        if self.statuses.get(PayoutStatus.sending):
            return PayoutStatus.sending.value
        if self.statuses.get(PayoutStatus.failed):
            return "partly failed" if self.statuses.get(PayoutStatus.sent) else PayoutStatus.failed.value
        return PayoutStatus.sent.value

    @property
    def has_file(self) -> bool:
        """A provider writes a file for the payouts it sends; a batch refused whole has none."""
        return bool(self.statuses.get(PayoutStatus.sending) or self.statuses.get(PayoutStatus.sent))


def payout_batches(session: Session, *, limit: int) -> list[PayoutBatch]:
    """The latest batches, newest first (by their last settlement, or their oldest request)."""
    latest = func.max(func.coalesce(Payout.settled_at, Payout.created_at))
    keys = [
        key
        for key, _ in session.exec(
            select(Payout.batch_key, latest)
            .where(col(Payout.batch_key).is_not(None))
            .group_by(col(Payout.batch_key))
            .order_by(latest.desc(), col(Payout.batch_key).desc())
            .limit(limit)
        ).all()
        if key is not None
    ]
    if not keys:
        return []
    parts: dict[str, list[tuple[str, str, int, int, datetime, datetime | None]]] = {key: [] for key in keys}
    for key, currency, status, count, total, first, settled in session.connection().execute(
        sa_select(
            col(Payout.batch_key),
            col(Payout.currency),
            col(Payout.status),
            func.count(),
            func.sum(Payout.amount_cents),
            func.min(Payout.created_at),
            func.max(Payout.settled_at),
        )
        .where(col(Payout.batch_key).in_(keys))
        .group_by(col(Payout.batch_key), col(Payout.currency), col(Payout.status))
    ):
        parts[str(key)].append((currency, status, int(count), int(total or 0), first, settled))
    batches = []
    for key in keys:
        totals: dict[str, int] = {}
        statuses: dict[PayoutStatus, int] = {}
        for currency, status, count, total, _first, _settled in parts[key]:
            totals[currency] = totals.get(currency, 0) + total
            statuses[PayoutStatus(status)] = statuses.get(PayoutStatus(status), 0) + count
        settled_times = [row[5] for row in parts[key]]
        batches.append(
            PayoutBatch(
                key=key,
                requested_from=min(row[4] for row in parts[key]),
                settled_at=None
                if statuses.get(PayoutStatus.sending) or None in settled_times
                else max(t for t in settled_times if t is not None),
                count=sum(statuses.values()),
                totals=dict(sorted(totals.items())),
                statuses=statuses,
            )
        )
    return batches


def is_payout_batch(session: Session, key: str) -> bool:
    """Whether payouts were handed over under this key (only such keys are batch files)."""
    return session.exec(select(Payout.id).where(Payout.batch_key == key).limit(1)).first() is not None


def payouts_in_status(session: Session, status: PayoutStatus, *, limit: int) -> list[Payout]:
    """Payouts in one status: requested ones oldest first (the next batch takes them in that
    order), the others most recently settled first."""
    order = (
        (col(Payout.created_at), col(Payout.id))
        if status is PayoutStatus.requested
        else (col(Payout.settled_at).desc(), col(Payout.id).desc())
    )
    return list(
        session.exec(select(Payout).where(Payout.status == status.value).order_by(*order).limit(limit)).all()
    )


# A closed worker account ------------------------------------------------------------------------
def settle_closed_worker(session: Session, settings: Settings, worker_id: uuid.UUID) -> list[tuple[str, int]]:
    """What a closing worker is owed: each currency's available balance paid out to the bank
    account on file when it reaches the minimum; the rest stays on the ledger under the account's
    id. The bank details are then forgotten (each payout keeps its own copy). Returns the payouts."""
    paid: list[tuple[str, int]] = []
    details = session.get(PayoutDetails, worker_id)
    if details is not None:
        for currency, figures in sorted(payouts.worker_balance(session, worker_id).items()):
            available = figures.get("available", 0)
            if available >= settings.payout_minimum_cents:
                payouts.request_payout(
                    session, settings, worker_id=worker_id, amount_cents=available, currency=currency
                )
                paid.append((currency, available))
        session.delete(details)
        session.flush()
    return paid


# A worker's own records (their data export) ------------------------------------------------------
def worker_records(session: Session, worker_id: uuid.UUID) -> dict[str, Any]:
    """Everything the ledger holds about a worker, as plain JSON-ready values: balances, every
    entry on their accounts with its transaction, every payout, and the bank details on file. The
    IBAN is given by its last four characters, as the API does: a stolen session cannot read it."""
    accounts = {
        account.id: account
        for account in session.exec(
            select(LedgerAccount).where(
                (col(LedgerAccount.owner_id) == worker_id) | (col(LedgerAccount.holder_id) == worker_id)
            )
        ).all()
    }
    entries = []
    if accounts:
        rows = session.exec(
            select(LedgerEntry, LedgerTransaction)
            .join(LedgerTransaction, col(LedgerTransaction.id) == col(LedgerEntry.transaction_id))
            .where(col(LedgerEntry.account_id).in_(list(accounts)))
            .order_by(col(LedgerEntry.created_at), col(LedgerEntry.id))
        ).all()
        for entry, transaction in rows:
            entries.append(
                {
                    "at": entry.created_at.isoformat(),
                    "account": accounts[entry.account_id].kind,
                    "amount_cents": entry.amount,
                    "currency": transaction.currency,
                    "movement": transaction.movement,
                    "reference": transaction.reference,
                    "memo": transaction.memo,
                    "transaction_id": str(transaction.id),
                }
            )
    payout_rows = session.exec(
        select(Payout).where(Payout.worker_id == worker_id).order_by(col(Payout.created_at), col(Payout.id))
    ).all()
    details = session.get(PayoutDetails, worker_id)
    return {
        "balances": [
            {"currency": currency, **{f"{name}_cents": value for name, value in figures.items()}}
            for currency, figures in sorted(payouts.worker_balance(session, worker_id).items())
        ],
        "entries": entries,
        "payouts": [
            {
                "id": str(p.id),
                "amount_cents": p.amount_cents,
                "currency": p.currency,
                "status": p.status,
                "account_holder": p.account_holder,
                "iban_last4": p.iban[-4:],
                "failure": translate(p.failure) if p.failure else None,
                "created_at": p.created_at.isoformat(),
                "settled_at": p.settled_at.isoformat() if p.settled_at else None,
            }
            for p in payout_rows
        ],
        "payout_details": None
        if details is None
        else {
            "account_holder": details.account_holder,
            "iban_last4": details.iban[-4:],
            "updated_at": details.updated_at.isoformat(),
        },
    }
