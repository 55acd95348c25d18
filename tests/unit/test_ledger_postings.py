"""Ledger postings on their own: balanced, one currency, never below zero where it must not, each
(reference, movement) once. On an in-memory SQLite database holding only the ledger's tables."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func
from sqlmodel import Session, SQLModel, select

import fieldcheck.models  # noqa: F401  (every table, so the ledger's foreign keys resolve)
from fieldcheck.ledger.models import (
    AccountKind,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Movement,
    Payout,
)
from fieldcheck.ledger.postings import PLATFORM, InsufficientFunds, Leg, account, post
from fieldcheck.ledger.verify import verify

TABLES = [t.__table__ for t in (LedgerAccount, LedgerTransaction, LedgerEntry, Payout)]  # type: ignore[attr-defined]
CLIENT = uuid.UUID(int=1)


@pytest.fixture
def session() -> Iterator[Session]:
    engine = create_engine("sqlite://")
    SQLModel.metadata.create_all(engine, tables=TABLES)
    with Session(engine) as session:
        yield session
    engine.dispose()


def deposit(session: Session, amount: int, reference: str = "deposit:1") -> LedgerTransaction | None:
    return post(
        session,
        reference=reference,
        movement=Movement.deposit,
        currency="EUR",
        memo="in",
        legs=[
            Leg(account(session, AccountKind.funding, PLATFORM, "EUR"), -amount),
            Leg(account(session, AccountKind.client_available, CLIENT, "EUR"), amount),
        ],
    )


def balance(session: Session, kind: AccountKind, owner: uuid.UUID) -> int:
    return account(session, kind, owner, "EUR").balance


def test_a_movement_happens_once_per_reference(session: Session) -> None:
    assert deposit(session, 1_000) is not None
    assert deposit(session, 1_000) is None  # the same (reference, movement): nothing moves
    assert deposit(session, 500, reference="deposit:2") is not None
    session.expire_all()
    assert balance(session, AccountKind.client_available, CLIENT) == 1_500
    assert balance(session, AccountKind.funding, PLATFORM) == -1_500  # external: negative by what came in


def test_unbalanced_or_mixed_currency_postings_are_refused(session: Session) -> None:
    available = account(session, AccountKind.client_available, CLIENT, "EUR")
    funding = account(session, AccountKind.funding, PLATFORM, "EUR")
    with pytest.raises(ValueError, match="unbalanced"):
        post(
            session,
            reference="x",
            movement=Movement.deposit,
            currency="EUR",
            memo="",
            legs=[Leg(funding, -5), Leg(available, 4)],
        )
    dollars = account(session, AccountKind.funding, PLATFORM, "USD")
    with pytest.raises(ValueError, match="one currency"):
        post(
            session,
            reference="x",
            movement=Movement.deposit,
            currency="EUR",
            memo="",
            legs=[Leg(dollars, -5), Leg(available, 5)],
        )


def test_an_account_that_must_not_go_negative_refuses(session: Session) -> None:
    deposit(session, 300)
    escrow = account(session, AccountKind.client_escrow, uuid.UUID(int=2), "EUR")
    with pytest.raises(InsufficientFunds) as refused:
        post(
            session,
            reference="campaign:2",
            movement=Movement.escrow_hold,
            currency="EUR",
            memo="hold",
            legs=[Leg(account(session, AccountKind.client_available, CLIENT, "EUR"), -301), Leg(escrow, 301)],
        )
    assert refused.value.needed == 301


def test_repeatable_movements_are_keyed(session: Session) -> None:
    """Refunds may happen several times for one campaign: each has its own key."""
    deposit(session, 1_000)
    available = account(session, AccountKind.client_available, CLIENT, "EUR")
    funding = account(session, AccountKind.funding, PLATFORM, "EUR")
    for key in ("a", "b"):
        made = post(
            session,
            reference="campaign:3",
            movement=Movement.refund,
            key=key,
            currency="EUR",
            memo="back",
            legs=[Leg(available, -10), Leg(funding, 10)],
        )
        assert made is not None and made.movement == f"refund:{key}"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(1, 500)), max_size=40))
def test_any_sequence_of_transfers_keeps_the_books_balanced(moves: list[tuple[int, int, int]]) -> None:
    engine = create_engine("sqlite://")
    SQLModel.metadata.create_all(engine, tables=TABLES)
    with Session(engine) as session:
        owners = [uuid.UUID(int=10 + i) for i in range(4)]
        funding = account(session, AccountKind.funding, PLATFORM, "EUR")
        for owner in owners:
            post(
                session,
                reference=f"seed:{owner}",
                movement=Movement.deposit,
                currency="EUR",
                memo="",
                legs=[
                    Leg(funding, -250),
                    Leg(account(session, AccountKind.worker_earned, owner, "EUR"), 250),
                ],
            )
        moved = 0
        for index, (source, target, amount) in enumerate(moves):
            legs = [
                Leg(account(session, AccountKind.worker_earned, owners[source], "EUR"), -amount),
                Leg(account(session, AccountKind.worker_earned, owners[target], "EUR"), amount),
            ]
            if source == target:
                continue
            try:
                with session.begin_nested():
                    post(
                        session,
                        reference=f"move:{index}",
                        movement=Movement.release,
                        currency="EUR",
                        memo="",
                        legs=legs,
                    )
                moved += 1
            except InsufficientFunds:
                pass  # nothing moved: the savepoint rolled back
        session.expire_all()
        transactions = session.exec(select(func.count()).select_from(LedgerTransaction)).one()
        assert transactions == len(owners) + moved
        report = verify(session)
        assert report.ok, report.problems
        assert session.exec(select(func.sum(LedgerAccount.balance))).one() == 0
        assert all(a.balance >= 0 for a in session.exec(select(LedgerAccount)).all() if a.non_negative)
    engine.dispose()
