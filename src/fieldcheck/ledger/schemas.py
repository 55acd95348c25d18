from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from fieldcheck.web import Cents


class DepositIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_cents: Cents
    currency: str = Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$")


class DepositOut(BaseModel):
    id: uuid.UUID
    amount_cents: int
    currency: str
    status: str
    provider: str
    created_at: datetime


class CurrencyBalance(BaseModel):
    currency: str
    available_cents: int
    escrow_cents: int


class OrganizationBalanceOut(BaseModel):
    balances: list[CurrencyBalance]


class DepositAnswer(BaseModel):
    deposit: DepositOut
    balance: OrganizationBalanceOut


class WorkerCurrencyBalance(BaseModel):
    currency: str
    earned_cents: int = Field(description="credited for approved work, ever")
    paid_out_cents: int = Field(description="sent to the bank")
    in_transit_cents: int = Field(description="asked for, not sent yet")
    available_cents: int = Field(description="can be asked for now")


class WorkerBalanceOut(BaseModel):
    balances: list[WorkerCurrencyBalance]


class PayoutDetailsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_holder: str = Field(min_length=2, max_length=140)
    iban: str = Field(min_length=15, max_length=42)


class PayoutDetailsOut(BaseModel):
    account_holder: str
    iban_last4: str
    updated_at: datetime


class PayoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_cents: Cents
    currency: str = Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$")


class PayoutOut(BaseModel):
    id: uuid.UUID
    amount_cents: int
    currency: str
    status: str
    failure: str | None
    created_at: datetime
    settled_at: datetime | None
