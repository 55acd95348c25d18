"""The assignment lifecycle: every change is a conditional UPDATE and an event row.

reserved -> submitted | expired | cancelled
submitted -> approved | rejected | in_review
in_review -> approved | rejected
rejected -> appealed -> approved | rejected
rejected -> approved (an admin reverses a rejection the platform got wrong)

A transition names the states it may start from; the UPDATE tests that inside the database, so
of two racing transitions exactly one happens and the other sees None.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlmodel import Session, col, select, update

from fieldcheck.assignments.models import (
    RELEASED,
    ActorType,
    Assignment,
    AssignmentEvent,
    AssignmentStatus,
)
from fieldcheck.db import utcnow
from fieldcheck.tasks.service import release_slot
from fieldcheck.webhooks import events

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


DECIDED = frozenset({AssignmentStatus.approved, AssignmentStatus.rejected})


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
        select(Assignment.status, Assignment.task_id).where(*conditions).with_for_update()
    ).first()
    if current is None:
        return None
    from_status = AssignmentStatus(current[0])
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
        release_slot(session, current[1])
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
    if to in DECIDED:
        # The client's webhooks, in this same transaction: sent only once the decision is committed.
        events.assignment_decided(session, assignment, event)
    return assignment


def free_slot(session: Session, assignment_id: uuid.UUID) -> bool:
    """Give the task its slot back for a finally rejected assignment (once: the flag decides)."""
    freed = session.exec(
        update(Assignment)
        .where(col(Assignment.id) == assignment_id, col(Assignment.slot_freed).is_(False))
        .values(slot_freed=True, updated_at=utcnow())
        .returning(col(Assignment.task_id))
        .execution_options(synchronize_session=False)
    ).first()
    if freed is None:
        return False
    release_slot(session, freed[0])
    return True
