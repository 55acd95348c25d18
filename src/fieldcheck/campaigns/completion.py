"""When a campaign is complete: every task has approved work in each of its slots, or the client
closed it. Marked once, whatever the reason, and told to the client (campaign.completed).
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from sqlalchemy import update
from sqlmodel import Session, col, select

from fieldcheck.campaigns.models import Campaign
from fieldcheck.db import utcnow
from fieldcheck.tasks import service as tasks
from fieldcheck.webhooks.models import WebhookEvent
from fieldcheck.webhooks.service import emit


class CompletionReason(StrEnum):
    all_slots_approved = "all_slots_approved"
    closed = "closed"


def complete_if_done(session: Session, campaign_id: uuid.UUID) -> bool:
    """Asked when an approval completes its task, so a large campaign counts once per task.

    Approvals of one campaign take turns from here to their commit (PostgreSQL; SQLite writers
    take turns anyway): whichever approval completes the campaign sees every other one.
    """
    session.exec(select(Campaign.id).where(Campaign.id == campaign_id).with_for_update()).one()
    if tasks.undone_tasks(session, campaign_id):
        return False
    return mark_completed(session, campaign_id, reason=CompletionReason.all_slots_approved)


def mark_completed(session: Session, campaign_id: uuid.UUID, *, reason: CompletionReason) -> bool:
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
    emit(
        session,
        marked[0],
        WebhookEvent.campaign_completed,
        {
            "campaign_id": str(campaign_id),
            "reason": reason.value,
            "approved": tasks.slots_of(session, campaign_id).approved,
            "completed_at": now.isoformat(),
        },
    )
    return True
