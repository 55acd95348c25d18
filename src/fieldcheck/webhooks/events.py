"""What each webhook event says, and when it is raised: in the transaction that makes it true.

Bodies carry what a client integration needs to act (ids, store, outcome, reasons), never the
worker's identity, device or position.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from fieldcheck.assignments.models import Assignment, AssignmentEvent, AssignmentStatus
from fieldcheck.campaigns.models import Campaign
from fieldcheck.checks.models import CheckResultRow
from fieldcheck.db import utcnow
from fieldcheck.stores.models import Store
from fieldcheck.tasks.models import Task
from fieldcheck.webhooks.service import emit

DECIDED = {AssignmentStatus.approved: "assignment.approved", AssignmentStatus.rejected: "assignment.rejected"}


def assignment_decided(session: Session, assignment: Assignment, event: AssignmentEvent) -> None:
    """An assignment was approved or rejected (by the checks, a reviewer, an appeal or the deadline)."""
    from fieldcheck.exports.results import WORKER_PRIVATE_CHECKS, client_decision  # results imports us

    name = DECIDED.get(AssignmentStatus(assignment.status))
    if name is None:
        return
    approved = assignment.status == AssignmentStatus.approved.value
    if approved:
        # Approvals of one campaign take turns from here to the commit, so whichever approval
        # completes the campaign sees every other one (PostgreSQL; SQLite writers take turns anyway).
        session.exec(select(Campaign.id).where(Campaign.id == assignment.campaign_id).with_for_update()).one()
    row = session.exec(
        select(Campaign.organization_id, Store.id, Store.external_ref, Store.name)
        .join(Task, col(Task.campaign_id) == col(Campaign.id))
        .join(Store, col(Store.id) == col(Task.store_id))
        .where(Task.id == assignment.task_id)
    ).one()
    organization_id, store_id, external_ref, store_name = row
    private = set(
        session.exec(
            select(CheckResultRow.explanation).where(
                CheckResultRow.assignment_id == assignment.id,
                col(CheckResultRow.name).in_(WORKER_PRIVATE_CHECKS),
            )
        ).all()
    )
    # The client's words: reason codes' texts, never a reviewer's comment to the worker.
    decision = client_decision(event, private)
    visited = assignment.captured_at or assignment.submitted_at
    emit(
        session,
        organization_id,
        name,
        {
            "assignment_id": str(assignment.id),
            "campaign_id": str(assignment.campaign_id),
            "task_id": str(assignment.task_id),
            "store": {"id": str(store_id), "external_ref": external_ref, "name": store_name},
            "status": assignment.status,
            "decided_by": decision.decided_by,
            "reasons": decision.reasons,
            "decided_at": event.at.isoformat(),
            "visited_at": visited.isoformat() if visited else None,
            "distance_m": round(assignment.distance_m, 1) if assignment.distance_m is not None else None,
        },
    )
    if approved and task_done(session, assignment.task_id):
        complete_if_done(session, assignment.campaign_id)


def task_done(session: Session, task_id: uuid.UUID) -> bool:
    """Every slot of this task has approved work (a handful of rows: cheap on every approval)."""
    slots = session.exec(select(Task.slots_total).where(Task.id == task_id)).one()
    approved = session.exec(
        select(func.count())
        .select_from(Assignment)
        .where(Assignment.task_id == task_id, Assignment.status == AssignmentStatus.approved.value)
    ).one()
    return int(approved) >= int(slots)


def complete_if_done(session: Session, campaign_id: uuid.UUID) -> bool:
    """Every task has approved work in each of its slots: the campaign is complete (said once).

    Asked only when an approval completes its task, so a large campaign counts once per task.
    """
    from fieldcheck.exports.results import task_completion  # results imports us

    tasks, done = task_completion(session, campaign_id)
    if not tasks or done < tasks:
        return False
    return campaign_completed(session, campaign_id, reason="all_slots_approved")


def campaign_completed(session: Session, campaign_id: uuid.UUID, *, reason: str) -> bool:
    """Mark the campaign complete and tell the client, once whatever the reason (the UPDATE decides)."""
    now = utcnow()
    marked = session.exec(
        update(Campaign)
        .where(col(Campaign.id) == campaign_id, col(Campaign.completed_at).is_(None))
        .values(completed_at=now)
        .returning(col(Campaign.organization_id))
        .execution_options(synchronize_session=False)
    ).first()
    if marked is None:
        return False
    approved = session.exec(
        select(func.count())
        .select_from(Assignment)
        .where(Assignment.campaign_id == campaign_id, Assignment.status == AssignmentStatus.approved.value)
    ).one()
    emit(
        session,
        marked[0],
        "campaign.completed",
        {
            "campaign_id": str(campaign_id),
            "reason": reason,
            "approved": int(approved),
            "completed_at": now.isoformat(),
        },
    )
    return True
