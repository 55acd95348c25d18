"""What the client's webhooks say of a decided assignment, in the client's words (the same read
model as results and exports: no worker identity, device or position, no comment to the worker).

The decision is announced by a job the transition enqueues in the transaction that decides, so
the client hears of it only once it is committed, and exactly once.
"""

from __future__ import annotations

import uuid

from sqlmodel import Session, col, select

from fieldcheck.assignments.models import Assignment, AssignmentEvent, AssignmentStatus
from fieldcheck.campaigns.models import Campaign
from fieldcheck.results.views import client_decision, private_texts
from fieldcheck.stores.models import Store
from fieldcheck.tasks.models import Task
from fieldcheck.webhooks.models import WebhookEvent
from fieldcheck.webhooks.service import emit

EVENT_OF = {
    AssignmentStatus.approved: WebhookEvent.assignment_approved,
    AssignmentStatus.rejected: WebhookEvent.assignment_rejected,
}


def announce_decision(session: Session, event_id: uuid.UUID) -> int:
    """Tell the client's endpoints that an assignment was approved or rejected; returns how many."""
    found = session.exec(
        select(AssignmentEvent, Assignment)
        .join(Assignment, col(Assignment.id) == col(AssignmentEvent.assignment_id))
        .where(AssignmentEvent.id == event_id)
    ).first()
    if found is None:
        return 0
    event, assignment = found
    name = EVENT_OF.get(AssignmentStatus(event.to_status))
    if name is None:
        return 0
    organization_id, store_id, external_ref, store_name = session.exec(
        select(Campaign.organization_id, Store.id, Store.external_ref, Store.name)
        .join(Task, col(Task.campaign_id) == col(Campaign.id))
        .join(Store, col(Store.id) == col(Task.store_id))
        .where(Task.id == assignment.task_id)
    ).one()
    decision = client_decision(event, private_texts(session, assignment.id))
    visited = assignment.captured_at or assignment.submitted_at
    return emit(
        session,
        organization_id,
        name,
        {
            "assignment_id": str(assignment.id),
            "campaign_id": str(assignment.campaign_id),
            "task_id": str(assignment.task_id),
            "store": {"id": str(store_id), "external_ref": external_ref, "name": store_name},
            "status": decision.outcome.value,
            "decided_by": decision.decided_by.value,
            "reasons": decision.reasons,
            "decided_at": event.at.isoformat(),
            "visited_at": visited.isoformat() if visited else None,
            "distance_m": round(assignment.distance_m, 1) if assignment.distance_m is not None else None,
        },
    )
