from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, JSONBody, Parameter, SkipValidation
from sqlmodel import Session, col, select

from fieldcheck import idempotency
from fieldcheck.auth.models import Role
from fieldcheck.auth.security import BEARER_SECURITY, Principal, requires
from fieldcheck.jobs import enqueue
from fieldcheck.ledger import funds, payouts
from fieldcheck.ledger.models import Deposit, Payout, PayoutDetails
from fieldcheck.ledger.providers import PaymentProvider
from fieldcheck.ledger.schemas import (
    CurrencyBalance,
    DepositAnswer,
    DepositIn,
    DepositOut,
    OrganizationBalanceOut,
    PayoutDetailsIn,
    PayoutDetailsOut,
    PayoutIn,
    PayoutOut,
    WorkerBalanceOut,
    WorkerCurrencyBalance,
)
from fieldcheck.settings import Settings
from fieldcheck.web import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, get, post, put

IdempotencyKey = Annotated[str | None, HeaderParameter(name=idempotency.HEADER)]


def organization_balance_out(session: Session, organization_id: Any) -> OrganizationBalanceOut:
    figures = funds.organization_balance(session, organization_id)
    return OrganizationBalanceOut(
        balances=[
            CurrencyBalance(currency=c, available_cents=v["available"], escrow_cents=v["escrow"])
            for c, v in sorted(figures.items())
        ]
    )


def payout_out(payout: Payout) -> PayoutOut:
    return PayoutOut.model_validate(payout, from_attributes=True)


class OrganizationMoneyController(Controller):
    path = "/api/v1/organizations/me"
    tags = ["money"]
    guards = [requires(Role.client)]
    security = BEARER_SECURITY

    @post(
        "/deposits",
        summary="Pay money in (Idempotency-Key required)",
        description="Through the payment provider (simulated by default: settles at once). A retry with the "
        "same key and body returns the first answer; another body with the key is 409.",
    )
    def deposit(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[DepositIn],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        payments: NamedDependency[SkipValidation[PaymentProvider]],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[DepositAnswer]:
        key = idempotency.require_key(idempotency_key)
        organization_id = principal.require_organization()
        fingerprint = idempotency.fingerprint("POST", request.url.path, data.model_dump(mode="json"))
        replay = idempotency.claim(db_session, owner_id=principal.user_id, key=key, request_hash=fingerprint)
        if replay is not None:
            return Response(DepositAnswer.model_validate(replay.body), status_code=replay.status_code)
        record = funds.deposit(
            db_session,
            payments,
            settings,
            organization_id=organization_id,
            amount_cents=data.amount_cents,
            currency=data.currency,
            idempotency_key=key,
            actor_id=principal.user_id,
        )
        answer = DepositAnswer(
            deposit=DepositOut.model_validate(record, from_attributes=True),
            balance=organization_balance_out(db_session, organization_id),
        )
        idempotency.record(
            db_session,
            owner_id=principal.user_id,
            key=key,
            status_code=201,
            body=answer.model_dump(mode="json"),
        )
        return Response(answer, status_code=201)

    @get("/deposits", summary="The organization's deposits, newest first")
    def deposits(
        self,
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        limit: Annotated[int, Parameter(ge=1, le=MAX_PAGE_LIMIT)] = DEFAULT_PAGE_LIMIT,
    ) -> list[DepositOut]:
        rows = db_session.exec(
            select(Deposit)
            .where(Deposit.organization_id == principal.require_organization())
            .order_by(col(Deposit.created_at).desc())
            .limit(limit)
        ).all()
        return [DepositOut.model_validate(r, from_attributes=True) for r in rows]

    @get("/balance", summary="Available money and money held in campaign escrow, per currency")
    def balance(
        self, db_session: NamedDependency[Session], principal: NamedDependency[Principal]
    ) -> OrganizationBalanceOut:
        return organization_balance_out(db_session, principal.require_organization())


class WorkerMoneyController(Controller):
    path = "/api/v1/me"
    tags = ["money"]
    guards = [requires(Role.worker)]
    security = BEARER_SECURITY

    @get("/balance", summary="Earned, paid out, in transit and available, per currency")
    def balance(
        self, db_session: NamedDependency[Session], principal: NamedDependency[Principal]
    ) -> WorkerBalanceOut:
        figures = payouts.worker_balance(db_session, principal.user_id)
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

    @put("/payout-details", summary="The bank account payouts go to (SEPA)")
    def set_payout_details(
        self,
        data: JSONBody[PayoutDetailsIn],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
    ) -> PayoutDetailsOut:
        details = payouts.set_details(
            db_session, principal.user_id, account_holder=data.account_holder, iban=data.iban
        )
        return PayoutDetailsOut(
            account_holder=details.account_holder, iban_last4=details.iban[-4:], updated_at=details.updated_at
        )

    @get("/payout-details", summary="The bank account payouts go to")
    def payout_details(
        self, db_session: NamedDependency[Session], principal: NamedDependency[Principal]
    ) -> PayoutDetailsOut | None:
        details = db_session.get(PayoutDetails, principal.user_id)
        if details is None:
            return None
        return PayoutDetailsOut(
            account_holder=details.account_holder, iban_last4=details.iban[-4:], updated_at=details.updated_at
        )

    @post(
        "/payouts",
        summary="Ask for a payout (Idempotency-Key required)",
        description="At least the minimum, at most the available balance (409 insufficient_balance). The "
        "payout job sends it; a failed payout returns the money to the available balance.",
    )
    def request_payout(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[PayoutIn],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[PayoutOut]:
        key = idempotency.require_key(idempotency_key)
        fingerprint = idempotency.fingerprint("POST", request.url.path, data.model_dump(mode="json"))
        replay = idempotency.claim(db_session, owner_id=principal.user_id, key=key, request_hash=fingerprint)
        if replay is not None:
            return Response(PayoutOut.model_validate(replay.body), status_code=replay.status_code)
        payout = payouts.request_payout(
            db_session,
            settings,
            worker_id=principal.user_id,
            amount_cents=data.amount_cents,
            currency=data.currency,
        )
        enqueue(db_session, "ledger.send_payouts")
        answer = payout_out(payout)
        idempotency.record(
            db_session,
            owner_id=principal.user_id,
            key=key,
            status_code=201,
            body=answer.model_dump(mode="json"),
        )
        return Response(answer, status_code=201)

    @get("/payouts", summary="My payouts, newest first")
    def list_payouts(
        self,
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        limit: Annotated[int, Parameter(ge=1, le=MAX_PAGE_LIMIT)] = DEFAULT_PAGE_LIMIT,
    ) -> list[PayoutOut]:
        rows = db_session.exec(
            select(Payout)
            .where(Payout.worker_id == principal.user_id)
            .order_by(col(Payout.created_at).desc())
            .limit(limit)
        ).all()
        return [payout_out(p) for p in rows]
