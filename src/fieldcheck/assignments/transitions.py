"""The assignment lifecycle: every change is a conditional UPDATE and an event row.

reserved -> submitted | expired | cancelled
submitted -> approved | rejected | in_review
in_review -> approved | rejected
rejected -> appealed -> approved | rejected
rejected -> approved (an admin reverses a rejection the platform got wrong)

A transition names the states it may start from; the UPDATE tests that inside the database, so
of two racing transitions exactly one happens and the other sees None.

What a change entails happens in the same transaction, whoever caused it (the checks, a reviewer,
the review deadline, an admin), so no caller can forget it:
- an approval is paid, exactly once (from the campaign's escrow, or by the platform when the
  slot had already gone back to the task), and counted on its task; the approval that completes
  the last task completes the campaign;
- a slot given back returns to its task, and a closed campaign returns that slot's escrow;
- an approval or a rejection is announced to the client, by a job after the commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlmodel import Session, col, select, update

from fieldcheck import metrics
from fieldcheck.assignments.models import (
    DECIDED,
    RELEASED,
    ActorType,
    Assignment,
    AssignmentEvent,
    AssignmentStatus,
    DecidedBy,
)
from fieldcheck.campaigns import escrow
from fieldcheck.campaigns.completion import complete_if_done
from fieldcheck.campaigns.models import Campaign
from fieldcheck.db import after_commit, utcnow
from fieldcheck.jobs import enqueue
from fieldcheck.ledger import service as ledger
from fieldcheck.tasks import service as tasks

# The client read model (fieldcheck.results) says what a decision means to the client.
ANNOUNCE_DECISION_JOB = "results.announce_decision"

S = AssignmentStatus
ALLOWED: dict[AssignmentStatus, frozenset[AssignmentStatus]] = {
    S.reserved: frozenset({S.submitted, S.expired, S.cancelled}),
    S.submitted: frozenset({S.approved, S.rejected, S.in_review}),
    S.in_review: frozenset({S.approved, S.rejected}),
    S.rejected: frozenset({S.appealed, S.approved}),  # approved: an admin reverses a wrong rejection
    S.appealed: frozenset({S.approved, S.rejected}),
    S.approved: frozenset(),
    S.expired: frozenset(),
    S.cancelled: frozenset(),
}


REFERENCE_PREFIX = "assignment:"


def reference(assignment_id: uuid.UUID) -> str:
    """The assignment's key in the ledger: its reward is paid once under it."""
    return f"{REFERENCE_PREFIX}{assignment_id}"


def record_event(
    session: Session,
    assignment_id: uuid.UUID,
    *,
    from_status: AssignmentStatus | None,
    to_status: AssignmentStatus,
    actor_type: ActorType,
    actor_id: uuid.UUID | None,
    reason: str,
    details: dict[str, Any] | None = None,
) -> AssignmentEvent:
    event = AssignmentEvent(
        assignment_id=assignment_id,
        from_status=from_status.value if from_status else None,
        to_status=to_status.value,
        actor_type=actor_type.value,
        actor_id=actor_id,
        reason=reason,
        details=details or {},
    )
    session.add(event)
    return event


def transition(
    session: Session,
    assignment_id: uuid.UUID,
    *,
    from_statuses: Iterable[AssignmentStatus],
    to: AssignmentStatus,
    actor_type: ActorType,
    actor_id: uuid.UUID | None,
    reason: str,
    worker_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
) -> Assignment | None:
    """Move the assignment to `to` if it is in one of `from_statuses` (and, given, is this worker's)."""
    sources = [s for s in from_statuses if to in ALLOWED[s]]
    if not sources:
        raise ValueError(f"no allowed transition to {to} from {list(from_statuses)}")
    conditions = [col(Assignment.id) == assignment_id, col(Assignment.status).in_([s.value for s in sources])]
    if worker_id is not None:
        conditions.append(col(Assignment.worker_id) == worker_id)
    # Lock the row (PostgreSQL; SQLite writers are serialized already), then change it: the state
    # read here cannot move before the UPDATE below.
    current = session.exec(
        select(Assignment.status, Assignment.task_id, Assignment.campaign_id, Assignment.slot_freed)
        .where(*conditions)
        .with_for_update()
    ).first()
    if current is None:
        return None
    from_status, task_id, campaign_id, slot_was_freed = AssignmentStatus(current[0]), *current[1:]
    frees_slot = to in RELEASED and from_status not in RELEASED
    changes = {"status": to.value, "updated_at": utcnow(), **(values or {})}
    if frees_slot:
        changes["slot_freed"] = True
    session.exec(
        update(Assignment)
        .where(col(Assignment.id) == assignment_id, col(Assignment.status) == from_status.value)
        .values(**changes)
        .execution_options(synchronize_session=False)
    )
    if frees_slot:
        _give_slot_back(session, task_id, campaign_id)
    event = record_event(
        session,
        assignment_id,
        from_status=from_status,
        to_status=to,
        actor_type=actor_type,
        actor_id=actor_id,
        reason=reason,
        details=details,
    )
    assignment = session.get(Assignment, assignment_id, populate_existing=True)
    assert assignment is not None
    if to is S.approved:
        why = str(((details or {}).get("reasons") or [reason])[0])
        _pay(session, assignment, actor_id=actor_id, by_platform=slot_was_freed, why=why)
        if tasks.count_approval(session, task_id):
            complete_if_done(session, campaign_id)
    if to in DECIDED:
        enqueue(session, ANNOUNCE_DECISION_JOB, event_id=str(event.id))
        decided = metrics.DECISIONS.labels(to.value, DecidedBy.of(actor_type.value).value)
        after_commit(session, decided.inc)
    return assignment


def free_slot(session: Session, assignment_id: uuid.UUID) -> bool:
    """Give the task its slot back for a finally rejected assignment (once: the flag decides)."""
    freed = session.exec(
        update(Assignment)
        .where(col(Assignment.id) == assignment_id, col(Assignment.slot_freed).is_(False))
        .values(slot_freed=True, updated_at=utcnow())
        .returning(col(Assignment.task_id), col(Assignment.campaign_id))
        .execution_options(synchronize_session=False)
    ).first()
    if freed is None:
        return False
    _give_slot_back(session, freed[0], freed[1])
    return True


def _give_slot_back(session: Session, task_id: uuid.UUID, campaign_id: uuid.UUID) -> None:
    tasks.release_slot(session, task_id)
    escrow.settle_if_closed(session, campaign_id)


def _pay(
    session: Session, assignment: Assignment, *, actor_id: uuid.UUID | None, by_platform: bool, why: str
) -> None:
    """Pay the reward of approved work, exactly once (the ledger's key decides).

    From the campaign's escrow while the assignment holds its slot; once the slot went back to the
    task (a rejection reversed after it became final), the escrow no longer holds it and the
    platform pays the reward itself.
    """
    # Locked: a raise of the reward (which tops escrow up per slot still owed) and this payment
    # take turns, so escrow always holds exactly what is owed. The escrow account's row is
    # written just after anyway, so approvals of one campaign already queue here.
    campaign = session.exec(
        select(Campaign)
        .where(Campaign.id == assignment.campaign_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    details = {"campaign_id": str(campaign.id)}
    if by_platform:
        ledger.pay_by_platform(
            session,
            reference=reference(assignment.id),
            worker_id=assignment.worker_id,
            currency=campaign.currency,
            reward=campaign.reward_cents,
            memo=f"Reward paid by the platform: {why}"[:300],
            actor_id=actor_id,
            details=details,
        )
        return
    ledger.release_from_escrow(
        session,
        reference=reference(assignment.id),
        escrow_id=campaign.id,
        worker_id=assignment.worker_id,
        currency=campaign.currency,
        reward=campaign.reward_cents,
        fee=campaign.fee_per_slot_cents,
        memo=f"Reward for approved work on campaign {campaign.id}",
        actor_id=actor_id,
        details=details,
    )
