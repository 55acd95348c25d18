"""The ledger: double-entry, integer minor units, one currency per account, append-only.

Every movement is a transaction of two or more entries whose amounts sum to zero. A positive
entry credits an account (the party it stands for is owed more), a negative one debits it. The
external accounts mirror money crossing the platform's edge: `funding` goes negative by what
clients paid in, `paid_out` positive by what workers were sent.

Entries and transactions are never updated or deleted (database triggers refuse it); a mistake
is corrected by a reversing transaction. Each account also carries its running balance, changed
only together with an entry and tested in the same UPDATE, which is what makes "never below
zero" race-safe.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlmodel import Field, SQLModel

from fieldcheck.db import JSONType, UTCDateTime, new_id, utcnow


class AccountKind(StrEnum):
    client_available = "client_available"  # an organization's money not yet committed
    client_escrow = "client_escrow"  # held for one campaign's slots (+ fees)
    worker_earned = "worker_earned"  # a worker's money they can ask to be paid out
    payouts_in_transit = "payouts_in_transit"  # asked for, not yet sent
    platform_fees = "platform_fees"  # the platform's fee revenue
    platform_compensation = (
        "platform_compensation"  # rewards the platform paid for its own mistakes (an expense)
    )
    funding = "funding"  # external: money paid in by clients
    paid_out = "paid_out"  # external: money sent out to workers


class Movement(StrEnum):
    """What a transaction does. (reference, movement) is unique: each movement happens once.

    Refunds may happen several times per campaign: theirs is stored with a unique suffix
    (`refund:<key>`), the only movement that is.
    """

    deposit = "settle"  # a client's payment arrived: funding -> client_available
    escrow_hold = "escrow_hold"  # activation: client_available -> client_escrow
    release = "release"  # approved work paid: client_escrow (or platform_compensation) -> worker_earned
    refund = "refund"  # escrow no longer needed: client_escrow -> client_available
    payout_request = "request"  # worker_earned -> payouts_in_transit
    payout_sent = "sent"  # payouts_in_transit -> paid_out
    payout_returned = "returned"  # a failed payout: payouts_in_transit -> worker_earned

    def keyed(self, key: str | None) -> str:
        """The stored movement: the value, or for repeatable movements the value and a unique key."""
        return f"{self.value}:{key}" if key else self.value


NON_NEGATIVE = frozenset(
    {
        AccountKind.client_available,
        AccountKind.client_escrow,
        AccountKind.worker_earned,
        AccountKind.payouts_in_transit,
        AccountKind.platform_fees,
    }
)


class LedgerAccount(SQLModel, table=True):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        UniqueConstraint("kind", "owner_id", "currency"),
        CheckConstraint("NOT non_negative OR balance >= 0", name="balance_not_negative"),
        Index("ix_ledger_accounts_holder", "holder_id", "kind"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    kind: str = Field(sa_column=Column(String(30), nullable=False))
    # The organization, campaign or worker the account stands for; a nil UUID for the platform's.
    owner_id: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False))
    # Whose money it is in the end, when not the owner's: an organization holds its campaigns'
    # escrow accounts (and its own). A holder's balance is one indexed query.
    holder_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, nullable=True))
    currency: str = Field(sa_column=Column(String(3), nullable=False))
    non_negative: bool = Field(sa_column=Column(Boolean, nullable=False))
    balance: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class LedgerTransaction(SQLModel, table=True):
    """One movement. (reference, movement) is unique: the same movement cannot happen twice."""

    __tablename__ = "ledger_transactions"
    __table_args__ = (
        UniqueConstraint("reference", "movement"),
        Index("ix_ledger_transactions_created", "created_at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    reference: str = Field(sa_column=Column(String(80), nullable=False))  # e.g. assignment:<id>
    movement: str = Field(
        sa_column=Column(String(60), nullable=False)
    )  # Movement.keyed(): release, refund:<key>
    currency: str = Field(sa_column=Column(String(3), nullable=False))
    memo: str = Field(sa_column=Column(String(300), nullable=False))
    actor_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, nullable=True))
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class LedgerEntry(SQLModel, table=True):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index("ix_ledger_entries_account", "account_id", "created_at"),
        Index("ix_ledger_entries_transaction", "transaction_id"),
        CheckConstraint("amount <> 0", name="amount_not_zero"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    transaction_id: uuid.UUID = Field(
        sa_column=Column(Uuid, ForeignKey("ledger_transactions.id"), nullable=False)
    )
    account_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("ledger_accounts.id"), nullable=False))
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class DepositStatus(StrEnum):
    settled = "settled"
    failed = "failed"


class Deposit(SQLModel, table=True):
    __tablename__ = "deposits"
    __table_args__ = (Index("ix_deposits_organization", "organization_id", "created_at"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    organization_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("organizations.id"), nullable=False))
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(sa_column=Column(String(3), nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False))
    provider: str = Field(sa_column=Column(String(40), nullable=False))
    provider_reference: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class PayoutStatus(StrEnum):
    requested = "requested"
    sending = "sending"  # in a batch file being handed to the bank
    sent = "sent"
    failed = "failed"


class Payout(SQLModel, table=True):
    __tablename__ = "payouts"
    __table_args__ = (
        Index("ix_payouts_worker", "worker_id", "created_at"),
        Index("ix_payouts_status", "status", "created_at"),
        CheckConstraint("status IN ('requested', 'sending', 'sent', 'failed')", name="status_known"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    worker_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("users.id"), nullable=False))
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(sa_column=Column(String(3), nullable=False))
    status: str = Field(default=PayoutStatus.requested.value, sa_column=Column(String(16), nullable=False))
    account_holder: str = Field(sa_column=Column(String(140), nullable=False))
    iban: str = Field(sa_column=Column(String(34), nullable=False))
    batch_key: str | None = Field(default=None, sa_column=Column(String(300), nullable=True))
    failure: str | None = Field(default=None, sa_column=Column(String(300), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    settled_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))


class PayoutDetails(SQLModel, table=True):
    """Where a worker's money goes (SEPA credit transfer)."""

    __tablename__ = "payout_details"

    worker_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("users.id"), primary_key=True))
    account_holder: str = Field(sa_column=Column(String(140), nullable=False))
    iban: str = Field(sa_column=Column(String(34), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class LedgerVerification(SQLModel, table=True):
    """The result of a scheduled check of the platform's money (`fieldcheck.money`), for monitoring
    and the admins: when, whether it held, and what failed."""

    __tablename__ = "ledger_verifications"
    __table_args__ = (Index("ix_ledger_verifications_at", "at"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    ok: bool = Field(sa_column=Column(Boolean, nullable=False))
    problem_count: int = Field(sa_column=Column(Integer, nullable=False))
    # What was checked (counts by kind) and the first problems, in words.
    checked: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    problems: list[str] = Field(default_factory=list, sa_column=Column(JSONType, nullable=False))
