from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response
from litestar.di import NamedDependency
from litestar.params import HeaderParameter, JSONBody, SkipValidation
from sqlmodel import Session

from fieldcheck import idempotency
from fieldcheck.auth.models import Role
from fieldcheck.auth.security import BEARER_SECURITY, Principal, requires
from fieldcheck.jobs import enqueue
from fieldcheck.ledger import funds, payouts
from fieldcheck.ledger.models import PayoutDetails
from fieldcheck.ledger.providers import PaymentProvider
from fieldcheck.ledger.schemas import (
    DepositAnswer,
    DepositIn,
    DepositOut,
    OrganizationBalanceOut,
    PayoutDetailsIn,
    PayoutDetailsOut,
    PayoutIn,
    PayoutOut,
    WorkerBalanceOut,
)
from fieldcheck.ledger.views import (
    deposit_out,
    organization_balance_out,
    payout_details_out,
    payout_out,
    worker_balance_out,
)
from fieldcheck.settings import Settings
from fieldcheck.web import DEFAULT_PAGE_LIMIT, Page, PageCursor, PageLimit, get, post, put

IdempotencyKey = Annotated[str | None, HeaderParameter(name=idempotency.HEADER)]


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
            deposit=deposit_out(record),
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
        limit: PageLimit = DEFAULT_PAGE_LIMIT,
        cursor: PageCursor = None,
    ) -> Page[DepositOut]:
        rows, next_cursor = funds.list_deposits(
            db_session, principal.require_organization(), limit=limit, cursor=cursor
        )
        return Page[DepositOut](items=[deposit_out(r) for r in rows], next_cursor=next_cursor)

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
        return worker_balance_out(db_session, principal.user_id)

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
        return payout_details_out(details)

    @get("/payout-details", summary="The bank account payouts go to")
    def payout_details(
        self, db_session: NamedDependency[Session], principal: NamedDependency[Principal]
    ) -> PayoutDetailsOut | None:
        details = db_session.get(PayoutDetails, principal.user_id)
        return payout_details_out(details) if details is not None else None

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
        limit: PageLimit = DEFAULT_PAGE_LIMIT,
        cursor: PageCursor = None,
    ) -> Page[PayoutOut]:
        rows, next_cursor = payouts.list_payouts(db_session, principal.user_id, limit=limit, cursor=cursor)
        return Page[PayoutOut](items=[payout_out(p) for p in rows], next_cursor=next_cursor)
