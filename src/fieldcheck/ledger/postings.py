"""Accounts and balanced postings: the ledger's own building blocks, used inside the ledger only.

Other domains move money through `fieldcheck.ledger.service`, which names each movement.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select, update

from fieldcheck.db import insert_ignore, new_id, utcnow
from fieldcheck.errors import Unprocessable
from fieldcheck.i18n import _, text
from fieldcheck.ledger.models import (
    NON_NEGATIVE,
    AccountKind,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Movement,
)
from fieldcheck.settings import Settings

# The owner of the platform's own accounts (fees, compensation, funding, payouts).
PLATFORM = uuid.UUID(int=0)


class InsufficientFunds(Exception):
    """An account that must not go below zero would have: the movement did not happen."""

    def __init__(self, account: LedgerAccount, needed: int) -> None:
        super().__init__(f"{account.kind} {account.owner_id} cannot give {needed}")
        self.account = account
        self.needed = needed


def account(
    session: Session,
    kind: AccountKind,
    owner_id: uuid.UUID,
    currency: str,
    *,
    holder_id: uuid.UUID | None = None,
) -> LedgerAccount:
    """The account, created on first use (race-safe: the unique key decides)."""
    query = select(LedgerAccount).where(
        LedgerAccount.kind == kind.value,
        LedgerAccount.owner_id == owner_id,
        LedgerAccount.currency == currency,
    )
    found = session.exec(query).first()
    if found is not None:
        return found
    insert_ignore(
        session,
        LedgerAccount,
        id=new_id(),
        kind=kind.value,
        owner_id=owner_id,
        holder_id=holder_id,
        currency=currency,
        non_negative=kind in NON_NEGATIVE,
        balance=0,
        created_at=utcnow(),
    )
    return session.exec(query).one()


@dataclass(frozen=True)
class Leg:
    account: LedgerAccount
    amount: int


def post(
    session: Session,
    *,
    reference: str,
    movement: Movement,
    currency: str,
    memo: str,
    legs: Iterable[Leg],
    key: str | None = None,
    actor_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> LedgerTransaction | None:
    """Record one balanced transaction; None when this (reference, movement) already happened.

    Raises InsufficientFunds when an account that must not go below zero would: the test is in the
    UPDATE of its balance, so concurrent movements cannot overdraw it between a read and a write.
    """
    legs = [leg for leg in legs if leg.amount]
    if not legs or sum(leg.amount for leg in legs) != 0:
        raise ValueError(f"unbalanced transaction {reference} {movement}: {[leg.amount for leg in legs]}")
    if any(leg.account.currency != currency for leg in legs):
        raise ValueError("a transaction moves one currency")
    transaction_id = new_id()
    now = utcnow()
    if not insert_ignore(
        session,
        LedgerTransaction,
        id=transaction_id,
        reference=reference,
        movement=movement.keyed(key),
        currency=currency,
        memo=memo[:300],
        actor_id=actor_id,
        details=details or {},
        created_at=now,
    ):
        return None
    # Accounts are always changed in the same order, so two transactions never wait on each other.
    for leg in sorted(legs, key=lambda leg: str(leg.account.id)):
        changed = session.exec(
            update(LedgerAccount)
            .where(
                col(LedgerAccount.id) == leg.account.id,
                (col(LedgerAccount.non_negative).is_(False)) | (col(LedgerAccount.balance) + leg.amount >= 0),
            )
            .values(balance=col(LedgerAccount.balance) + leg.amount)
            .returning(col(LedgerAccount.balance))
            .execution_options(synchronize_session=False)
        ).first()
        if changed is None:
            raise InsufficientFunds(leg.account, -leg.amount)
        session.add(
            LedgerEntry(
                transaction_id=transaction_id, account_id=leg.account.id, amount=leg.amount, created_at=now
            )
        )
    session.flush()
    return session.get(LedgerTransaction, transaction_id)


def balance_of(session: Session, kind: AccountKind, owner_id: uuid.UUID, currency: str) -> int:
    value = session.exec(
        select(LedgerAccount.balance).where(
            LedgerAccount.kind == kind.value,
            LedgerAccount.owner_id == owner_id,
            LedgerAccount.currency == currency,
        )
    ).first()
    return int(value or 0)


def ensure_payable(amount_cents: int, currency: str, settings: Settings) -> None:
    if currency not in settings.pay_floor_cents_per_hour:
        accepted = ", ".join(sorted(settings.pay_floor_cents_per_hour))
        raise Unprocessable(
            text(_("accepted currencies: {accepted}"), accepted=accepted), code="unsupported_currency"
        )
    if amount_cents <= 0:
        raise Unprocessable(text(_("the amount must be positive")), code="invalid_amount")
