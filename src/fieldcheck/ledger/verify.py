"""The ledger's own invariants, checked from the entries themselves.

`verify` runs them, then any further invariants it is given: the promises other domains keep with
the ledger (see fieldcheck.money), which the ledger itself cannot know.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import func
from sqlmodel import Session, col, select

from fieldcheck.ledger.models import (
    AccountKind,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Movement,
    Payout,
    PayoutStatus,
)

SHOWN = 20


@dataclass
class Report:
    checked: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, problem: str) -> None:
        self.problems.append(problem)


Invariant = Callable[[Session, Report], None]


def verify(session: Session, invariants: Iterable[Invariant] = ()) -> Report:
    report = Report()
    for invariant in (_balanced, _balances, _paid_once, _in_transit, *invariants):
        invariant(session, report)
    return report


def _balanced(session: Session, report: Report) -> None:
    unbalanced = session.exec(
        select(LedgerEntry.transaction_id, func.sum(LedgerEntry.amount))
        .group_by(col(LedgerEntry.transaction_id))
        .having(func.sum(LedgerEntry.amount) != 0)
    ).all()
    report.checked["transactions"] = int(
        session.exec(select(func.count()).select_from(LedgerTransaction)).one()
    )
    for transaction_id, total in unbalanced[:SHOWN]:
        report.fail(f"transaction {transaction_id} does not balance: its entries sum to {total}")
    empty = session.exec(
        select(LedgerTransaction.id).where(
            ~select(LedgerEntry.id).where(LedgerEntry.transaction_id == LedgerTransaction.id).exists()
        )
    ).all()
    for transaction_id in empty[:SHOWN]:
        report.fail(f"transaction {transaction_id} has no entries")


def _balances(session: Session, report: Report) -> None:
    sums = dict(
        session.exec(
            select(LedgerEntry.account_id, func.sum(LedgerEntry.amount)).group_by(col(LedgerEntry.account_id))
        ).all()
    )
    accounts = session.exec(select(LedgerAccount)).all()
    report.checked["accounts"] = len(accounts)
    for item in accounts:
        total = int(sums.get(item.id, 0) or 0)
        if total != item.balance:
            report.fail(
                f"{item.kind} {item.owner_id} {item.currency}: balance {item.balance} but entries sum to {total}"
            )
        if item.non_negative and total < 0:
            report.fail(f"{item.kind} {item.owner_id} {item.currency} is negative: {total}")
        if item.kind == AccountKind.funding.value and total > 0:
            report.fail(f"the funding account {item.currency} shows more money out than in: {total}")


def _paid_once(session: Session, report: Report) -> None:
    releases = session.exec(
        select(LedgerTransaction.reference, func.count())
        .where(LedgerTransaction.movement == Movement.release.value)
        .group_by(col(LedgerTransaction.reference))
    ).all()
    report.checked["payments"] = len(releases)
    for reference, count in releases:
        if count != 1:
            report.fail(f"{reference} was paid {count} times")


def _in_transit(session: Session, report: Report) -> None:
    requested = dict(
        session.exec(
            select(Payout.currency, func.sum(Payout.amount_cents))
            .where(col(Payout.status).in_([PayoutStatus.requested.value, PayoutStatus.sending.value]))
            .group_by(col(Payout.currency))
        ).all()
    )
    for currency, balance in session.exec(
        select(LedgerAccount.currency, LedgerAccount.balance).where(
            LedgerAccount.kind == AccountKind.payouts_in_transit.value
        )
    ).all():
        if int(requested.get(currency, 0) or 0) != balance:
            report.fail(
                f"payouts in transit ({currency}) hold {balance} but requested payouts add up to {requested.get(currency, 0)}"
            )
