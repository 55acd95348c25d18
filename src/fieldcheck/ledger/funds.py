"""Client money: deposits through the payment provider, and the organization's balance."""

from __future__ import annotations

import uuid
from collections import defaultdict

from sqlalchemy import func
from sqlmodel import Session, col, select

from fieldcheck.errors import Unprocessable
from fieldcheck.i18n import _, text
from fieldcheck.ledger.models import AccountKind, Deposit, DepositStatus, LedgerAccount, Movement
from fieldcheck.ledger.postings import PLATFORM, Leg, account, ensure_payable, post
from fieldcheck.ledger.providers import PaymentProvider
from fieldcheck.pagination import paginate
from fieldcheck.settings import Settings


def deposit(
    session: Session,
    provider: PaymentProvider,
    settings: Settings,
    *,
    organization_id: uuid.UUID,
    amount_cents: int,
    currency: str,
    idempotency_key: str,
    actor_id: uuid.UUID,
) -> Deposit:
    ensure_payable(amount_cents, currency, settings)
    if amount_cents > settings.max_deposit_cents:
        raise Unprocessable(
            text(_("one deposit may be at most {limit} cents"), limit=settings.max_deposit_cents),
            code="deposit_too_large",
        )
    charge = provider.charge(
        organization_id=str(organization_id),
        amount_cents=amount_cents,
        currency=currency,
        idempotency_key=idempotency_key,
    )
    record = Deposit(
        organization_id=organization_id,
        amount_cents=amount_cents,
        currency=currency,
        status=DepositStatus.settled.value if charge.settled else DepositStatus.failed.value,
        provider=provider.name,
        provider_reference=charge.reference,
    )
    session.add(record)
    session.flush()
    if not charge.settled:
        failure = (
            text(_("the payment failed: {reason}"), reason=charge.failure)
            if charge.failure
            else text(_("the payment failed: refused"))
        )
        raise Unprocessable(failure, code="payment_failed")
    post(
        session,
        reference=f"deposit:{record.id}",
        movement=Movement.deposit,
        currency=currency,
        memo=f"Deposit via {provider.name} ({charge.reference})",
        legs=[
            Leg(account(session, AccountKind.funding, PLATFORM, currency), -amount_cents),
            Leg(
                account(
                    session,
                    AccountKind.client_available,
                    organization_id,
                    currency,
                    holder_id=organization_id,
                ),
                amount_cents,
            ),
        ],
        actor_id=actor_id,
    )
    return record


def organization_balance(session: Session, organization_id: uuid.UUID) -> dict[str, dict[str, int]]:
    """Per currency: available, and held in the escrow of the organization's campaigns."""
    figures: dict[str, dict[str, int]] = defaultdict(lambda: {"available": 0, "escrow": 0})
    names = {AccountKind.client_available.value: "available", AccountKind.client_escrow.value: "escrow"}
    for kind, currency, balance in session.exec(
        select(LedgerAccount.kind, LedgerAccount.currency, func.sum(LedgerAccount.balance))
        .where(LedgerAccount.holder_id == organization_id, col(LedgerAccount.kind).in_(list(names)))
        .group_by(col(LedgerAccount.kind), col(LedgerAccount.currency))
    ).all():
        figures[currency][names[kind]] += int(balance or 0)
    return dict(figures)


def list_deposits(
    session: Session, organization_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[list[Deposit], str | None]:
    return paginate(
        session,
        select(Deposit).where(Deposit.organization_id == organization_id),
        time_column=col(Deposit.created_at),
        id_column=col(Deposit.id),
        limit=limit,
        cursor=cursor,
        newest_first=True,
    )
