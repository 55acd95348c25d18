"""The ledger's answers: balances and payouts as the API shows them."""

from __future__ import annotations

import uuid

from sqlmodel import Session

from fieldcheck.i18n import translate
from fieldcheck.ledger import funds, payouts
from fieldcheck.ledger.models import Deposit, Payout, PayoutDetails
from fieldcheck.ledger.schemas import (
    CurrencyBalance,
    DepositOut,
    OrganizationBalanceOut,
    PayoutDetailsOut,
    PayoutOut,
    WorkerBalanceOut,
    WorkerCurrencyBalance,
)


def organization_balance_out(session: Session, organization_id: uuid.UUID) -> OrganizationBalanceOut:
    figures = funds.organization_balance(session, organization_id)
    return OrganizationBalanceOut(
        balances=[
            CurrencyBalance(currency=c, available_cents=v["available"], escrow_cents=v["escrow"])
            for c, v in sorted(figures.items())
        ]
    )


def worker_balance_out(session: Session, worker_id: uuid.UUID) -> WorkerBalanceOut:
    figures = payouts.worker_balance(session, worker_id)
    return WorkerBalanceOut(
        balances=[
            WorkerCurrencyBalance(
                currency=c,
                earned_cents=v["earned"],
                paid_out_cents=v["paid_out"],
                in_transit_cents=v["in_transit"],
                available_cents=v["available"],
            )
            for c, v in sorted(figures.items())
        ]
    )


def deposit_out(deposit: Deposit) -> DepositOut:
    return DepositOut.model_validate(deposit, from_attributes=True)


def payout_out(payout: Payout) -> PayoutOut:
    answer = PayoutOut.model_validate(payout, from_attributes=True)
    if answer.failure:  # the bank's or the check's words, in the reader's language when known
        answer.failure = translate(answer.failure)
    return answer


def payout_details_out(details: PayoutDetails) -> PayoutDetailsOut:
    return PayoutDetailsOut(
        account_holder=details.account_holder, iban_last4=details.iban[-4:], updated_at=details.updated_at
    )
