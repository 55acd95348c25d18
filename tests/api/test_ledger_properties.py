"""Random sequences of everything that moves money, with the ledger's invariants checked after every step."""

from __future__ import annotations

import random
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func
from sqlmodel import Session, col, select, update

from fieldcheck.assignments import service as assignments
from fieldcheck.assignments.models import ActorType, Assignment, AssignmentStatus
from fieldcheck.assignments.transitions import transition
from fieldcheck.auth.models import Role
from fieldcheck.campaigns import service as campaigns
from fieldcheck.campaigns.models import Campaign, CampaignStatus
from fieldcheck.campaigns.schemas import CampaignCreate, CampaignPayUpdate
from fieldcheck.errors import DomainError
from fieldcheck.ledger import funds, payouts
from fieldcheck.ledger.providers import PayoutOrder, PayoutResult, SimulatedPaymentProvider
from fieldcheck.money import verify_money
from fieldcheck.reviews import service as reviews
from fieldcheck.reviews.models import Appeal, ReasonCode
from fieldcheck.runtime import Runtime
from fieldcheck.stores.models import Store
from fieldcheck.tasks.models import Task
from tests.support.factories import make_account, make_organization

IBAN = "DE89370400440532013000"
HOLDING = [
    AssignmentStatus.reserved,
    AssignmentStatus.submitted,
    AssignmentStatus.in_review,
    AssignmentStatus.approved,
    AssignmentStatus.rejected,
    AssignmentStatus.appealed,
]
OPERATIONS = [
    "deposit",
    "campaign",
    "raise_reward",
    "reserve",
    "reserve",
    "reserve",
    "checked",
    "checked",
    "checked",
    "review",
    "appeal",
    "appeal",
    "appeal_decision",
    "deadline",
    "expire",
    "cancel",
    "close",
    "finalize",
    "payout",
    "send_payouts",
    "reverse",
]


class CoinBank:
    """Sends or refuses each payout at random (the provider's word is what the ledger follows)."""

    name = "coin"

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def send(self, orders: list[PayoutOrder], *, batch_key: str) -> list[PayoutResult]:
        return [PayoutResult(o.payout_id, self.rng.random() < 0.7, batch_key, None) for o in orders]


class World:
    def __init__(self, runtime: Runtime, rng: random.Random) -> None:
        self.runtime, self.rng, self.settings = runtime, rng, runtime.settings
        self.organization = make_organization(runtime, "Prop Co")
        self.client = make_account(runtime, Role.client, organization_id=self.organization)
        self.workers = [make_account(runtime, Role.worker) for _ in range(3)]
        self.reviewers = [make_account(runtime, Role.reviewer) for _ in range(2)]
        self.admin = make_account(runtime, Role.admin)
        with runtime.db.transaction() as session:
            for worker in self.workers:
                payouts.set_details(session, worker.id, account_holder="W", iban=IBAN)
            self.stores = []
            for index in range(3):
                store = Store(
                    organization_id=self.organization, name=f"S{index}", lat=48.0 + index / 100, lon=2.0
                )
                session.add(store)
                session.flush()
                self.stores.append(store.id)

    def pick(self, session: Session, status: AssignmentStatus) -> Assignment | None:
        rows = session.exec(
            select(Assignment).where(Assignment.status == status.value).order_by(col(Assignment.id))
        ).all()
        return self.rng.choice(rows) if rows else None

    def step(self, operation: str) -> None:
        with self.runtime.db.transaction() as session:
            try:
                with session.begin_nested():
                    getattr(self, operation)(session)
            except DomainError:
                pass  # refused (no money, no slot, wrong state): the ledger must not have moved

    # Operations ------------------------------------------------------------------------------
    def deposit(self, session: Session, amount: int | None = None) -> None:
        funds.deposit(
            session,
            SimulatedPaymentProvider(),
            self.settings,
            organization_id=self.organization,
            amount_cents=amount or self.rng.choice([500, 2_000, 10_000]),
            currency="EUR",
            idempotency_key=secrets.token_hex(4),
            actor_id=self.client.id,
        )

    def campaign(self, session: Session) -> None:
        data = CampaignCreate(
            title="P",
            instructions="I",
            reward_cents=self.rng.choice([300, 450, 999]),
            currency="EUR",
            estimated_minutes=5,
            slots_per_store=self.rng.choice([1, 2]),
            store_ids=self.rng.sample(self.stores, self.rng.choice([1, 2])),
            review_deadline_hours=1,
        )
        created = campaigns.create_campaign(session, self.organization, data, self.settings)
        campaigns.change_status(session, self.organization, created.id, "activate", self.settings)

    def raise_reward(self, session: Session) -> None:
        """Escrow is topped up for every slot still owed; work approved later is paid the new reward."""
        running = session.exec(
            select(Campaign).where(Campaign.status != CampaignStatus.closed.value).order_by(col(Campaign.id))
        ).all()
        if running:
            target = self.rng.choice(running)
            more = self.rng.choice([1, 50, 333])
            campaigns.update_pay(
                session,
                self.organization,
                target.id,
                CampaignPayUpdate(reward_cents=target.reward_cents + more),
                self.settings,
            )

    def reserve(self, session: Session) -> None:
        tasks = session.exec(select(Task.id).where(col(Task.is_open).is_(True)).order_by(col(Task.id))).all()
        if tasks:
            assignments.reserve(
                session,
                worker_id=self.rng.choice(self.workers).id,
                task_id=self.rng.choice(tasks),
                settings=self.settings,
            )

    def checked(self, session: Session) -> None:
        """A submission and what the check job decides, without the photos."""
        target = self.pick(session, AssignmentStatus.reserved)
        if target is None:
            return
        now = datetime.now(UTC)
        transition(
            session,
            target.id,
            from_statuses=[AssignmentStatus.reserved],
            to=AssignmentStatus.submitted,
            actor_type=ActorType.worker,
            actor_id=target.worker_id,
            reason="submitted",
            values={"submitted_at": now, "device_lat": 48.0, "device_lon": 2.0, "device_accuracy_m": 5.0},
        )
        outcome = self.rng.choice(
            [AssignmentStatus.approved, AssignmentStatus.in_review, AssignmentStatus.rejected]
        )
        values: dict[str, Any] = (
            {"decided_at": now}
            if outcome != AssignmentStatus.in_review
            else {"review_due_at": now + timedelta(hours=1)}
        )
        transition(
            session,
            target.id,
            from_statuses=[AssignmentStatus.submitted],
            to=outcome,
            actor_type=ActorType.system,
            actor_id=None,
            reason="checked",
            values=values,
        )

    def _review(self, session: Session, status: AssignmentStatus) -> None:
        target = self.pick(session, status)
        if target is None:
            return
        reviewer = self.rng.choice(self.reviewers).id
        reviews.claim(session, self.settings, reviewer_id=reviewer, assignment_id=target.id)
        approve = self.rng.random() < 0.5
        reviews.decide(
            session,
            reviewer_id=reviewer,
            assignment_id=target.id,
            approve=approve,
            reasons=[] if approve else [ReasonCode.blurry],
            comment="",
        )

    def review(self, session: Session) -> None:
        self._review(session, AssignmentStatus.in_review)

    def appeal_decision(self, session: Session) -> None:
        self._review(session, AssignmentStatus.appealed)

    def appeal(self, session: Session) -> None:
        target = self.pick(session, AssignmentStatus.rejected)
        if target is not None:
            reviews.appeal(
                session, self.settings, worker_id=target.worker_id, assignment_id=target.id, message="please"
            )

    def deadline(self, session: Session) -> None:
        session.exec(
            update(Assignment)
            .where(col(Assignment.review_due_at).is_not(None))
            .values(review_due_at=datetime.now(UTC) - timedelta(minutes=1))
        )
        reviews.approve_overdue(session, self.settings)

    def expire(self, session: Session) -> None:
        target = self.pick(session, AssignmentStatus.reserved)
        if target is not None:
            session.exec(
                update(Assignment)
                .where(col(Assignment.id) == target.id)
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
            assignments.expire_overdue(session)

    def cancel(self, session: Session) -> None:
        target = self.pick(session, AssignmentStatus.reserved)
        if target is not None:
            assignments.cancel(session, worker_id=target.worker_id, assignment_id=target.id)

    def close(self, session: Session) -> None:
        open_ones = session.exec(
            select(Campaign.id)
            .where(Campaign.status != CampaignStatus.closed.value)
            .order_by(col(Campaign.id))
        ).all()
        if open_ones:
            campaigns.change_status(
                session, self.organization, self.rng.choice(open_ones), "close", self.settings
            )

    def finalize(self, session: Session) -> None:
        session.exec(
            update(Assignment)
            .where(Assignment.status == AssignmentStatus.rejected.value)  # type: ignore[arg-type]
            .values(decided_at=datetime.now(UTC) - timedelta(days=30))
        )
        reviews.finalize_rejections(session, self.settings)

    def payout(self, session: Session) -> None:
        worker = self.rng.choice(self.workers)
        available = payouts.worker_balance(session, worker.id).get("EUR", {}).get("available", 0)
        amount = self.rng.choice([1_000, available, available + 1])
        payouts.request_payout(
            session, self.settings, worker_id=worker.id, amount_cents=max(amount, 1), currency="EUR"
        )

    def send_payouts(self, session: Session) -> None:
        pass  # runs outside this step's transaction: see run()

    def reverse(self, session: Session) -> None:
        target = self.pick(session, AssignmentStatus.rejected)
        if target is not None:
            reviews.reverse_rejection(
                session, admin_id=self.admin.id, assignment_id=target.id, reason="platform bug"
            )

    def run(self, operation: str) -> None:
        if operation == "send_payouts":
            payouts.send_payouts(self.runtime.db, CoinBank(self.rng))
        else:
            self.step(operation)

    def check(self, after: str) -> None:
        with self.runtime.db.transaction(read_only=True) as session:
            report = verify_money(session)
            assert report.ok, (after, report.problems)
            # Slots: each task holds exactly the assignments that did not give theirs back.
            for task in session.exec(select(Task)).all():
                holding = session.exec(
                    select(func.count())
                    .select_from(Assignment)
                    .where(
                        Assignment.task_id == task.id,
                        col(Assignment.slot_freed).is_(False),
                        col(Assignment.status).in_([s.value for s in HOLDING]),
                    )
                ).one()
                assert task.slots_taken == holding <= task.slots_total, (after, task.id)
            # A rejection upheld on appeal is final: that slot went back to its task.
            upheld = session.exec(
                select(Assignment)
                .join(Appeal, col(Appeal.assignment_id) == col(Assignment.id))
                .where(Appeal.outcome == "rejected")
            ).all()
            assert all(a.slot_freed for a in upheld), (after, [a.id for a in upheld if not a.slot_freed])
            # Each worker's money adds up: what is available is what was earned, less what was
            # sent to the bank and what is on its way there (a failed payout comes back).
            for worker in self.workers:
                figures = payouts.worker_balance(session, worker.id).get("EUR")
                if figures is not None:
                    assert figures["available"] == (
                        figures["earned"] - figures["paid_out"] - figures["in_transit"]
                    ), (after, worker.id, figures)


PROPERTY_BACKENDS = [
    pytest.param(
        "embedded", int(__import__("os").environ.get("FIELDCHECK_PROPERTY_EXAMPLES", 30)), id="sqlite"
    ),
    pytest.param("services", 8, id="postgres", marks=pytest.mark.services),
]


@pytest.mark.parametrize(("backend", "examples"), PROPERTY_BACKENDS)
def test_the_ledger_holds_under_any_sequence(backends: Any, backend: str, examples: int) -> None:
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        operations=st.lists(st.sampled_from(OPERATIONS), min_size=5, max_size=30), seed=st.integers(0, 2**32)
    )
    def run(operations: list[str], seed: int) -> None:
        runtime = Runtime(backends.make(backend))
        try:
            world = World(runtime, random.Random(seed))
            with runtime.db.transaction() as session:
                world.deposit(session, 20_000)  # enough for a few campaigns; later deposits are small
            for operation in ["campaign", "reserve", "reserve", *operations]:
                world.run(operation)
                world.check(after=operation)
        finally:
            runtime.close()

    run()
