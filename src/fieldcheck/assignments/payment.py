"""The seam between decisions and money: one place that approval calls, one place that says how
an assignment's payment stands. The ledger fills both in.
"""

from __future__ import annotations

from sqlmodel import Session

from fieldcheck.assignments.models import Assignment, AssignmentStatus
from fieldcheck.campaigns.models import Campaign


def release_reward(session: Session, assignment: Assignment, campaign: Campaign) -> None:
    """Called once, in the transaction that approves the assignment."""


def payment_status(session: Session, assignment: Assignment, campaign: Campaign) -> tuple[str, int]:
    """(status, amount in minor units) as the worker sees it."""
    if assignment.status == AssignmentStatus.approved.value:
        return "due", campaign.reward_cents
    return "none", 0
