"""When a decision on delivered work is final: no audit, appeal or review can change it any more.

- An approval is final when it is made, unless it was drawn for an audit: then once the audit is
  done (an audit notes problems but never takes the approval back).
- A rejection is final once its appeal window has passed without an appeal, or when it was decided
  on appeal (a rejection is appealed once; the appeal's decision is its new decided_at).
- Work in review, appealed, or still being checked has no final decision; expired and cancelled
  reservations have no decision at all.

An admin may still reverse a rejection the platform got wrong (reviews.service.reverse_rejection):
that pays the worker and needs none of what is kept until a decision is final.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_
from sqlmodel import col

from fieldcheck.assignments.models import Assignment, AssignmentStatus
from fieldcheck.settings import Settings

S = AssignmentStatus


def final_before(moment: datetime, settings: Settings) -> ColumnElement[bool]:
    """A condition on assignments: their decision became final at or before `moment`."""
    decided_at, audited_at = col(Assignment.decided_at), col(Assignment.audited_at)
    approved = and_(
        col(Assignment.status) == S.approved.value,
        or_(col(Assignment.audit_sampled).is_(False), audited_at <= moment),
    )
    rejected = and_(
        col(Assignment.status) == S.rejected.value,
        or_(
            col(Assignment.appealed_at).is_not(None),  # decided on appeal: final at once
            decided_at <= moment - timedelta(days=settings.appeal_window_days),
        ),
    )
    # decided_at first: every final decision was taken by `moment`, and an index can say which.
    return and_(decided_at <= moment, or_(approved, rejected))
