"""The seam between decisions and money: approval calls `release_reward`; the worker's view of an
assignment asks `payment_status`. The ledger does the rest.
"""

from __future__ import annotations

from sqlmodel import Session, select

from fieldcheck.assignments.models import Assignment, AssignmentStatus
from fieldcheck.campaigns.models import Campaign
from fieldcheck.ledger import service as ledger
from fieldcheck.ledger.models import LedgerTransaction

PENDING = frozenset(
    {AssignmentStatus.submitted.value, AssignmentStatus.in_review.value, AssignmentStatus.appealed.value}
)


def release_reward(session: Session, assignment: Assignment, campaign: Campaign) -> None:
    """Called in the transaction that approves the assignment; paying twice is impossible."""
    ledger.release_reward(session, assignment, campaign)


def payment_status(session: Session, assignment: Assignment, campaign: Campaign) -> tuple[str, int]:
    """(status, amount): released (credited to the worker's balance), pending, or none."""
    if assignment.status == AssignmentStatus.approved.value:
        paid = session.exec(
            select(LedgerTransaction.details).where(
                LedgerTransaction.reference == f"assignment:{assignment.id}",
                LedgerTransaction.movement == "release",
            )
        ).first()
        if paid is not None:
            return "released", int(paid.get("reward", campaign.reward_cents))
        return "due", campaign.reward_cents
    if assignment.status in PENDING:
        return "pending", campaign.reward_cents
    return "none", 0
