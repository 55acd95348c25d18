"""Money movements: deposits, escrow, release on approval, refunds, payouts. All through `post`."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select, update

from fieldcheck.assignments.models import Assignment, AssignmentStatus
from fieldcheck.campaigns.models import Campaign, CampaignStatus
from fieldcheck.db import insert_ignore, new_id, utcnow
from fieldcheck.errors import Conflict, Unprocessable
from fieldcheck.ledger.models import (
    NON_NEGATIVE,
    AccountKind,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
)
from fieldcheck.settings import Settings
from fieldcheck.tasks.models import Task

PLATFORM = uuid.UUID(int=0)


class InsufficientFunds(Exception):
    def __init__(self, account: LedgerAccount, needed: int) -> None:
        super().__init__(f"{account.kind} {account.owner_id} cannot give {needed}")
        self.account = account
        self.needed = needed


# Accounts and postings ---------------------------------------------------------------------
def account(session: Session, kind: AccountKind, owner_id: uuid.UUID, currency: str) -> LedgerAccount:
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
    movement: str,
    currency: str,
    memo: str,
    legs: Iterable[Leg],
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
        movement=movement,
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


# Campaign money ----------------------------------------------------------------------------
def fee_per_slot(reward_cents: int, settings: Settings) -> int:
    return math.ceil(reward_cents * settings.platform_fee_bps / 10_000)


def per_slot(campaign: Campaign) -> tuple[int, int]:
    """(reward, fee) held in escrow for each slot: the fee is fixed at activation."""
    return campaign.reward_cents, campaign.fee_per_slot_cents


def total_slots(session: Session, campaign_id: uuid.UUID) -> int:
    return int(
        session.exec(
            select(func.coalesce(func.sum(Task.slots_total), 0)).where(Task.campaign_id == campaign_id)
        ).one()
    )


def hold_escrow(session: Session, campaign: Campaign, settings: Settings) -> None:
    reward, fee = campaign.reward_cents, fee_per_slot(campaign.reward_cents, settings)
    campaign.fee_per_slot_cents = fee
    session.add(campaign)
    slots = total_slots(session, campaign.id)
    amount = slots * (reward + fee)
    available = account(session, AccountKind.client_available, campaign.organization_id, campaign.currency)
    escrow = account(session, AccountKind.client_escrow, campaign.id, campaign.currency)
    try:
        post(
            session,
            reference=f"campaign:{campaign.id}",
            movement="escrow_hold",
            currency=campaign.currency,
            memo=f"Escrow for {slots} slot(s) of {reward} + {fee} fee",
            legs=[Leg(available, -amount), Leg(escrow, amount)],
            details={"slots": slots, "reward": reward, "fee": fee},
        )
    except InsufficientFunds:
        have = balance_of(session, AccountKind.client_available, campaign.organization_id, campaign.currency)
        raise Conflict(
            f"activating needs {amount / 100:.2f} {campaign.currency} ({slots} slots x "
            f"({reward / 100:.2f} reward + {fee / 100:.2f} fee)); the organization has {have / 100:.2f} available",
            code="insufficient_funds",
            required_cents=amount,
            available_cents=have,
            currency=campaign.currency,
        ) from None


def release_reward(
    session: Session, assignment: Assignment, campaign: Campaign, *, actor_id: uuid.UUID | None = None
) -> bool:
    """Pay the worker for approved work, exactly once; True if this call paid."""
    reward, fee = per_slot(campaign)
    currency = campaign.currency
    escrow = account(session, AccountKind.client_escrow, campaign.id, currency)
    earned = account(session, AccountKind.worker_earned, assignment.worker_id, currency)
    legs = [Leg(escrow, -(reward + fee)), Leg(earned, reward)]
    if fee:
        legs.append(Leg(account(session, AccountKind.platform_fees, PLATFORM, currency), fee))
    return (
        post(
            session,
            reference=f"assignment:{assignment.id}",
            movement="release",
            currency=currency,
            memo=f"Reward for approved work on campaign {campaign.id}",
            legs=legs,
            actor_id=actor_id,
            details={"campaign_id": str(campaign.id), "reward": reward, "fee": fee},
        )
        is not None
    )


def compensate(
    session: Session, assignment: Assignment, campaign: Campaign, *, actor_id: uuid.UUID, reason: str
) -> bool:
    """The platform pays a reward itself (its own mistake, after the slot went to someone else)."""
    currency = campaign.currency
    return (
        post(
            session,
            reference=f"assignment:{assignment.id}",
            movement="release",  # the same key as a release: a reward is paid once, whoever pays it
            currency=currency,
            memo=f"Reward paid by the platform: {reason}",
            legs=[
                Leg(
                    account(session, AccountKind.platform_compensation, PLATFORM, currency),
                    -campaign.reward_cents,
                ),
                Leg(
                    account(session, AccountKind.worker_earned, assignment.worker_id, currency),
                    campaign.reward_cents,
                ),
            ],
            actor_id=actor_id,
            details={
                "campaign_id": str(campaign.id),
                "reward": campaign.reward_cents,
                "fee": 0,
                "paid_by": "platform",
            },
        )
        is not None
    )


def releases_from_escrow(session: Session, campaign_id: uuid.UUID, currency: str) -> int:
    escrow = account(session, AccountKind.client_escrow, campaign_id, currency)
    return int(
        session.exec(
            select(func.count())
            .select_from(LedgerEntry)
            .join(LedgerTransaction, col(LedgerTransaction.id) == col(LedgerEntry.transaction_id))
            .where(LedgerEntry.account_id == escrow.id, LedgerTransaction.movement == "release")
        ).one()
    )


PAYABLE_WHILE_OPEN = None  # every slot not yet paid


def payable_slots(session: Session, campaign: Campaign, settings: Settings) -> int:
    """Slots the campaign may still have to pay for: what its escrow must hold, per slot."""
    if campaign.activated_at is None:
        return 0
    if campaign.status != CampaignStatus.closed.value:
        return total_slots(session, campaign.id) - releases_from_escrow(
            session, campaign.id, campaign.currency
        )
    # Closed: only assignments still on their way to a decision (or an appeal) can be paid.
    window = utcnow() - timedelta(days=settings.appeal_window_days)
    live = session.exec(
        select(func.count())
        .select_from(Assignment)
        .where(
            Assignment.campaign_id == campaign.id,
            col(Assignment.slot_freed).is_(False),
            col(Assignment.status).in_(
                [
                    AssignmentStatus.reserved.value,
                    AssignmentStatus.submitted.value,
                    AssignmentStatus.in_review.value,
                    AssignmentStatus.appealed.value,
                    AssignmentStatus.rejected.value,
                ]
            ),
        )
        .where(
            (col(Assignment.status) != AssignmentStatus.rejected.value)
            | (col(Assignment.decided_at) > window)
        )
    ).one()
    return int(live)


def refund_unused_escrow(session: Session, campaign: Campaign, settings: Settings) -> int:
    """Give back what the campaign can no longer spend; returns the amount refunded."""
    if campaign.activated_at is None:
        return 0
    escrow = account(session, AccountKind.client_escrow, campaign.id, campaign.currency)
    # Lock the escrow account: the balance read here is the one the refund changes.
    held = session.exec(
        select(LedgerAccount.balance).where(LedgerAccount.id == escrow.id).with_for_update()
    ).one()
    reward, fee = per_slot(campaign)
    owed = payable_slots(session, campaign, settings) * (reward + fee)
    excess = int(held) - owed
    if excess <= 0:
        return 0
    post(
        session,
        reference=f"campaign:{campaign.id}",
        movement=f"refund:{new_id().hex}",
        currency=campaign.currency,
        memo="Unused escrow returned",
        legs=[
            Leg(escrow, -excess),
            Leg(
                account(session, AccountKind.client_available, campaign.organization_id, campaign.currency),
                excess,
            ),
        ],
        details={"owed_after": owed},
    )
    return excess


def ensure_payable(amount_cents: int, currency: str, settings: Settings) -> None:
    if currency not in settings.pay_floor_cents_per_hour:
        accepted = ", ".join(sorted(settings.pay_floor_cents_per_hour))
        raise Unprocessable(f"accepted currencies: {accepted}", code="unsupported_currency")
    if amount_cents <= 0:
        raise Unprocessable("the amount must be positive", code="invalid_amount")
