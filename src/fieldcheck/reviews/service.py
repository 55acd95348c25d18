"""Human review: the queue, leases, decisions, appeals, and the deadline that pays when nobody looks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func
from sqlmodel import Session, col, select

from fieldcheck.assignments import service as assignments
from fieldcheck.assignments.models import (
    ActorType,
    Assignment,
    AssignmentEvent,
    AssignmentStatus,
    status_text,
)
from fieldcheck.assignments.transitions import free_slot, transition
from fieldcheck.campaigns.models import Campaign
from fieldcheck.db import insert_ignore, utcnow
from fieldcheck.errors import Conflict, NotFound, Unprocessable, field_error
from fieldcheck.i18n import Text, _, text
from fieldcheck.pagination import paginate
from fieldcheck.reviews.models import (
    REASON_TEXT,
    Appeal,
    AppealOutcome,
    QueueReason,
    ReasonCode,
    Review,
    ReviewClaim,
    ReviewDecision,
)
from fieldcheck.settings import Settings

S = AssignmentStatus
DEADLINE_BATCH = 200


@dataclass(frozen=True)
class QueueItem:
    assignment: Assignment
    reason: QueueReason
    waiting_since: datetime
    claim: ReviewClaim | None


def reason_of(assignment: Assignment) -> QueueReason | None:
    if assignment.status == S.in_review.value:
        return QueueReason.flagged
    if assignment.status == S.appealed.value:
        return QueueReason.appeal
    if assignment.status == S.approved.value and assignment.audit_sampled and assignment.audited_at is None:
        return QueueReason.sampled
    return None


def _waiting_since(assignment: Assignment, reason: QueueReason) -> datetime:
    if reason is QueueReason.appeal:
        return assignment.appealed_at or assignment.updated_at
    if reason is QueueReason.sampled:
        return assignment.decided_at or assignment.updated_at
    return assignment.submitted_at or assignment.updated_at


def _queue_parts() -> dict[QueueReason, Any]:
    """What waits for a person, by part of the queue."""
    return {
        QueueReason.flagged: col(Assignment.status) == S.in_review.value,
        QueueReason.appeal: col(Assignment.status) == S.appealed.value,
        QueueReason.sampled: and_(
            col(Assignment.status) == S.approved.value,
            col(Assignment.audit_sampled).is_(True),
            col(Assignment.audited_at).is_(None),
        ),
    }


def queue(
    session: Session,
    *,
    reviewer_id: uuid.UUID,
    reason: QueueReason | None,
    limit: int,
    now: datetime | None = None,
) -> tuple[list[QueueItem], dict[str, int]]:
    """Items this reviewer may take, oldest first, and how many wait in each part of the queue."""
    now = now or utcnow()
    conditions = _queue_parts()
    order = {
        QueueReason.flagged: col(Assignment.submitted_at),
        QueueReason.appeal: col(Assignment.appealed_at),
        QueueReason.sampled: col(Assignment.decided_at),
    }
    taken_by_others = select(ReviewClaim.assignment_id).where(
        ReviewClaim.reviewer_id != reviewer_id, col(ReviewClaim.expires_at) > now
    )
    # Nobody reviews their own work, nor an appeal against their own decision.
    own_appeals = select(Appeal.assignment_id).where(
        Appeal.rejected_by == reviewer_id, col(Appeal.decided_at).is_(None)
    )
    available = and_(
        col(Assignment.worker_id) != reviewer_id,
        col(Assignment.id).not_in(taken_by_others),
        col(Assignment.id).not_in(own_appeals),
    )
    counts = {
        kind.value: int(
            session.exec(select(func.count()).select_from(Assignment).where(condition, available)).one()
        )
        for kind, condition in conditions.items()
    }
    items: list[QueueItem] = []
    for kind in [reason] if reason else list(QueueReason):
        rows = session.exec(
            select(Assignment)
            .where(conditions[kind], available)
            .order_by(order[kind], col(Assignment.id))
            .limit(limit)
        ).all()
        items += [QueueItem(a, kind, _waiting_since(a, kind), None) for a in rows]
    # The earliest deadline first (an appeal's or a flagged item's); audits, which have none, after.
    far = datetime.max.replace(tzinfo=UTC)
    items.sort(key=lambda item: (item.assignment.review_due_at or far, item.waiting_since))
    items = items[:limit]
    claims = {
        c.assignment_id: c
        for c in session.exec(
            select(ReviewClaim).where(col(ReviewClaim.assignment_id).in_([i.assignment.id for i in items]))
        ).all()
    }
    return [
        QueueItem(i.assignment, i.reason, i.waiting_since, claims.get(i.assignment.id)) for i in items
    ], counts


def _reviewable(
    session: Session, reviewer_id: uuid.UUID, assignment_id: uuid.UUID
) -> tuple[Assignment, QueueReason]:
    assignment = session.get(Assignment, assignment_id, populate_existing=True)
    if assignment is None:
        raise NotFound(text(_("no such assignment")), code="assignment_not_found")
    kind = reason_of(assignment)
    if kind is None:
        raise Conflict(
            text(
                _("this assignment is {status}: there is nothing to review"),
                status=status_text(assignment.status),
            ),
            code="not_in_review",
            current_status=assignment.status,
        )
    if assignment.worker_id == reviewer_id:
        raise Conflict(text(_("nobody reviews their own work")), code="own_work")
    if kind is QueueReason.appeal:
        appeal = session.exec(select(Appeal).where(Appeal.assignment_id == assignment_id)).first()
        if appeal is not None and appeal.rejected_by == reviewer_id:
            raise Conflict(
                text(_("an appeal goes to another reviewer than the one who rejected")), code="own_decision"
            )
    return assignment, kind


def claim(
    session: Session, settings: Settings, *, reviewer_id: uuid.UUID, assignment_id: uuid.UUID
) -> ReviewClaim:
    """Take an item for `review_lease_minutes`; a live lease of another reviewer is a 409."""
    _assignment, kind = _reviewable(session, reviewer_id, assignment_id)
    now = utcnow()
    expires = now + timedelta(minutes=settings.review_lease_minutes)
    if not insert_ignore(
        session,
        ReviewClaim,
        assignment_id=assignment_id,
        reviewer_id=reviewer_id,
        kind=kind.value,
        claimed_at=now,
        expires_at=expires,
    ):
        # Taken already: it becomes ours only if the lease ran out or was ours (renewal).
        existing = session.exec(
            select(ReviewClaim).where(ReviewClaim.assignment_id == assignment_id).with_for_update()
        ).one()
        if existing.reviewer_id != reviewer_id and existing.expires_at > now:
            raise Conflict(
                text(_("another reviewer has this item")),
                code="claimed_by_another",
                lease_expires_at=existing.expires_at.isoformat(),
            )
        existing.reviewer_id, existing.kind, existing.claimed_at, existing.expires_at = (
            reviewer_id,
            kind.value,
            now,
            expires,
        )
        session.add(existing)
    found = session.get(ReviewClaim, assignment_id, populate_existing=True)
    assert found is not None
    return found


def release_claim(session: Session, *, reviewer_id: uuid.UUID, assignment_id: uuid.UUID) -> bool:
    """Give an item back to the queue (a reviewer skipped it); only one's own lease is released."""
    result = session.exec(
        delete(ReviewClaim).where(
            col(ReviewClaim.assignment_id) == assignment_id, col(ReviewClaim.reviewer_id) == reviewer_id
        )
    )
    return bool(result.rowcount)


APPROVED_BY_A_PERSON = text(_("A reviewer checked the work and approved it."))
APPEALED = text(_("Appealed: a reviewer will look at it again."))
DEADLINE_PASSED = text(_("The review deadline passed: the platform approved the work."))
APPEAL_DEADLINE_PASSED = text(_("Your appeal was not answered in time: the platform approved the work."))
REVERSED = text(_("The rejection was reversed by the platform: the work is approved and paid."))


def _approved_reason(kind: QueueReason) -> Text:
    if kind is QueueReason.appeal:
        return text(_("Approved by a reviewer on appeal."))
    return text(_("Approved by a reviewer."))


def _rejected_reason(final: bool) -> Text:
    if final:
        return text(_("Rejected by a reviewer on appeal; this decision is final."))
    return text(_("Rejected by a reviewer; you can appeal to another reviewer."))


def decide(
    session: Session,
    *,
    reviewer_id: uuid.UUID,
    assignment_id: uuid.UUID,
    approve: bool,
    reasons: list[ReasonCode],
    comment: str,
) -> Assignment:
    assignment, kind = _reviewable(session, reviewer_id, assignment_id)
    now = utcnow()
    lease = session.exec(
        select(ReviewClaim).where(ReviewClaim.assignment_id == assignment_id).with_for_update()
    ).first()
    if lease is None or lease.reviewer_id != reviewer_id:
        raise Conflict(text(_("claim this item before deciding it")), code="not_claimed")
    if lease.expires_at <= now:
        raise Conflict(text(_("your lease on this item expired; claim it again")), code="lease_expired")
    if not approve and not reasons:
        raise Unprocessable(
            text(_("a rejection needs at least one reason")),
            code="reason_required",
            errors=[field_error("reasons", text(_("at least one reason code")))],
        )
    said = [REASON_TEXT[r] for r in reasons] + (
        [text(_("Reviewer's comment: {comment}"), comment=comment)] if comment else []
    )
    words = [reason.english for reason in said]
    session.add(
        Review(
            assignment_id=assignment_id,
            reviewer_id=reviewer_id,
            kind=kind.value,
            decision=ReviewDecision.approve if approve else ReviewDecision.reject,
            reasons=[r.value for r in reasons],
            comment=comment,
        )
    )
    session.delete(lease)
    if kind is QueueReason.sampled:
        assignment.audited_at = now
        session.add(assignment)
        assignments.record_audit(session, assignment, reviewer_id=reviewer_id, passed=approve, reasons=words)
        return assignment
    source = S.in_review if kind is QueueReason.flagged else S.appealed
    if approve:
        changed = transition(
            session,
            assignment_id,
            from_statuses=[source],
            to=S.approved,
            actor_type=ActorType.reviewer,
            actor_id=reviewer_id,
            reason=(approved := _approved_reason(kind)).english,
            details={
                "reasons": words or [APPROVED_BY_A_PERSON.english],
                "reason_texts": [t.as_json() for t in said or [APPROVED_BY_A_PERSON]],
                "reason_text": approved.as_json(),
                "codes": [r.value for r in reasons],
            },
            values={"decided_at": now, "review_due_at": None},
        )
    else:
        final = kind is QueueReason.appeal
        changed = transition(
            session,
            assignment_id,
            from_statuses=[source],
            to=S.rejected,
            actor_type=ActorType.reviewer,
            actor_id=reviewer_id,
            reason=(rejected := _rejected_reason(final)).english,
            details={
                "reasons": words,
                "reason_texts": [t.as_json() for t in said],
                "reason_text": rejected.as_json(),
                "codes": [r.value for r in reasons],
                "final": final,
            },
            values={"decided_at": now, "review_due_at": None},
        )
        if final:
            free_slot(session, assignment_id)
    if kind is QueueReason.appeal:
        appeal = session.exec(select(Appeal).where(Appeal.assignment_id == assignment_id)).one()
        appeal.decided_at = now
        appeal.outcome = AppealOutcome.approved if approve else AppealOutcome.rejected
        session.add(appeal)
    if changed is None:
        raise Conflict(text(_("this item changed while you reviewed it")), code="item_changed")
    return changed


def appeal(
    session: Session, settings: Settings, *, worker_id: uuid.UUID, assignment_id: uuid.UUID, message: str
) -> Appeal:
    assignment = assignments.get_for_worker(session, worker_id, assignment_id)
    if assignment.status != S.rejected.value:
        raise Conflict(
            text(
                _("only a rejection can be appealed; this assignment is {status}"),
                status=status_text(assignment.status),
            ),
            code="not_rejected",
            current_status=assignment.status,
        )
    existing = session.exec(select(Appeal).where(Appeal.assignment_id == assignment_id)).first()
    if existing is not None:
        raise Conflict(
            text(_("this rejection was already appealed; the decision on appeal is final")),
            code="already_appealed",
        )
    decided = assignment.decided_at or assignment.updated_at
    deadline = decided + timedelta(days=settings.appeal_window_days)
    if utcnow() > deadline or assignment.slot_freed:
        raise Conflict(
            text(
                _("appeals are possible for {days} days after the decision"), days=settings.appeal_window_days
            ),
            code="appeal_window_closed",
            deadline=deadline.isoformat(),
        )
    rejector = session.exec(
        select(Review.reviewer_id)
        .where(Review.assignment_id == assignment_id, Review.decision == ReviewDecision.reject)
        .order_by(col(Review.created_at).desc())
    ).first()
    record = Appeal(assignment_id=assignment_id, message=message, rejected_by=rejector)
    session.add(record)
    now = utcnow()
    due = now + timedelta(days=settings.appeal_response_days)
    if (
        transition(
            session,
            assignment_id,
            from_statuses=[S.rejected],
            to=S.appealed,
            actor_type=ActorType.worker,
            actor_id=worker_id,
            worker_id=worker_id,
            reason=APPEALED.english,
            details={"message": message, "reason_text": APPEALED.as_json()},
            values={"appealed_at": now, "review_due_at": due},
        )
        is None
    ):
        raise Conflict(text(_("the assignment changed; try again")), code="item_changed")
    return record


def approve_overdue(session: Session, settings: Settings, *, now: datetime | None = None) -> int:
    """Work nobody reviewed within the campaign's review deadline is approved and paid: the platform,
    not the worker, bears the cost of its delays."""
    now = now or utcnow()
    rows = session.exec(
        select(Assignment, Campaign)
        .join(Campaign, col(Campaign.id) == col(Assignment.campaign_id))
        .where(
            col(Assignment.status).in_([S.in_review.value, S.appealed.value]),
            col(Assignment.review_due_at) <= now,
        )
        .order_by(col(Assignment.review_due_at))
        .limit(DEADLINE_BATCH)
    ).all()
    approved = 0
    for assignment, campaign in rows:
        source = S(assignment.status)
        if source is S.appealed:
            late = text(
                _(
                    "Approved and paid because your appeal was not answered within {days} days, as the "
                    "platform promises."
                ),
                days=settings.appeal_response_days,
            )
            why = APPEAL_DEADLINE_PASSED
        else:
            late = text(
                _(
                    "Approved and paid because no person reviewed it within {hours} hours, as the platform promises."
                ),
                hours=campaign.review_deadline_hours,
            )
            why = DEADLINE_PASSED
        # Conditional on the status it had: a reviewer deciding at this very moment decides it, or
        # this does, never both.
        changed = transition(
            session,
            assignment.id,
            from_statuses=[source],
            to=S.approved,
            actor_type=ActorType.system,
            actor_id=None,
            reason=late.english,
            details={
                "reasons": [why.english],
                "reason_texts": [why.as_json()],
                "reason_text": late.as_json(),
            },
            values={"decided_at": now, "review_due_at": None},
        )
        if changed is None:
            continue
        approved += 1
        if source is S.appealed:
            _appeal_approved(session, assignment.id, now)
    return approved


def finalize_rejections(session: Session, settings: Settings, *, now: datetime | None = None) -> int:
    """Rejections not appealed within the window are final: their slots go back to the task."""
    now = now or utcnow()
    cutoff = now - timedelta(days=settings.appeal_window_days)
    rows = session.exec(
        select(Assignment.id)
        .where(
            Assignment.status == S.rejected.value,
            col(Assignment.slot_freed).is_(False),
            col(Assignment.decided_at) <= cutoff,
        )
        .limit(DEADLINE_BATCH)
    ).all()
    return sum(free_slot(session, assignment_id) for assignment_id in rows)


def _appeal_approved(session: Session, assignment_id: uuid.UUID, now: datetime) -> None:
    appeal_row = session.exec(select(Appeal).where(Appeal.assignment_id == assignment_id)).first()
    if appeal_row is not None and appeal_row.decided_at is None:
        appeal_row.decided_at, appeal_row.outcome = now, AppealOutcome.approved
        session.add(appeal_row)


def worker_record(session: Session, worker_id: uuid.UUID) -> dict[str, Any]:
    counts = dict(
        session.exec(
            select(Assignment.status, func.count())
            .where(
                Assignment.worker_id == worker_id,
                col(Assignment.status).in_(
                    [S.approved.value, S.rejected.value, S.in_review.value, S.appealed.value]
                ),
            )
            .group_by(col(Assignment.status))
        ).all()
    )
    approved, rejected = int(counts.get(S.approved.value, 0)), int(counts.get(S.rejected.value, 0))
    decided = approved + rejected
    return {
        "approved": approved,
        "rejected": rejected,
        "pending": int(counts.get(S.in_review.value, 0)) + int(counts.get(S.appealed.value, 0)),
        "approval_rate": round(approved / decided, 3) if decided else None,
    }


# What reverse_rejection accepts: a rejection, appealed or not.
REVERSIBLE = (S.rejected, S.appealed)


def _not_reversible(status: str) -> Conflict:
    return Conflict(
        text(
            _("only a rejected assignment can be reversed; this one is {status}"), status=status_text(status)
        ),
        code="not_rejected",
        current_status=status,
    )


def reverse_rejection(
    session: Session, *, admin_id: uuid.UUID, assignment_id: uuid.UUID, reason: str
) -> Assignment:
    """The platform got a rejection wrong (a check later found faulty): approve, and pay.

    From the campaign's escrow while the slot is still held; once the slot went back to the task,
    the platform pays the reward itself. Either way the ledger's key makes a second payment
    impossible.
    """
    assignment = session.get(Assignment, assignment_id, populate_existing=True)
    if assignment is None:
        raise NotFound(text(_("no such assignment")), code="assignment_not_found")
    now = utcnow()
    changed = transition(
        session,
        assignment_id,
        from_statuses=list(REVERSIBLE),
        to=S.approved,
        actor_type=ActorType.admin,
        actor_id=admin_id,
        reason=REVERSED.english,
        details={
            "reasons": [
                (why := text(_("The platform reversed its rejection: {reason}"), reason=reason)).english
            ],
            "reason_texts": [why.as_json()],
            "reason_text": REVERSED.as_json(),
        },
        values={"decided_at": now, "review_due_at": None},
    )
    if changed is None:
        raise _not_reversible(assignment.status)
    _appeal_approved(session, assignment_id, now)
    return changed


# What admins see of the whole (the console's overview, reversals) -------------------------------
def waiting_counts(session: Session) -> dict[str, int]:
    """Work waiting for a person in each part of the queue, whoever has claimed it."""
    return {
        kind.value: int(session.exec(select(func.count()).select_from(Assignment).where(condition)).one())
        for kind, condition in _queue_parts().items()
    }


@dataclass(frozen=True)
class Rejection:
    """A rejection an admin may reverse, with what the worker was told."""

    assignment: Assignment
    rejected_at: datetime
    rejected_by: ActorType
    reasons: list[str]


def reversible_rejections(
    session: Session, *, limit: int, cursor: str | None
) -> tuple[list[Rejection], str | None]:
    """Rejected work (appealed or not), the latest decided first: what reverse_rejection takes."""
    rows, next_cursor = paginate(
        session,
        select(Assignment).where(
            col(Assignment.status).in_([s.value for s in REVERSIBLE]), col(Assignment.decided_at).is_not(None)
        ),
        time_column=col(Assignment.decided_at),
        id_column=col(Assignment.id),
        limit=limit,
        cursor=cursor,
        newest_first=True,
    )
    return [_rejection(a, e) for a, e in zip(rows, _last_rejections(session, rows), strict=True)], next_cursor


def rejection_of(session: Session, assignment_id: uuid.UUID) -> Rejection:
    """One assignment as a rejection to reverse; NotFound, or Conflict when it is not one (now)."""
    assignment = session.get(Assignment, assignment_id)
    if assignment is None:
        raise NotFound(text(_("no such assignment")), code="assignment_not_found")
    if assignment.status not in REVERSIBLE:
        raise _not_reversible(assignment.status)
    return _rejection(assignment, _last_rejections(session, [assignment])[0])


def _last_rejections(session: Session, assignments: list[Assignment]) -> list[AssignmentEvent | None]:
    if not assignments:
        return []
    latest: dict[uuid.UUID, AssignmentEvent] = {}
    for event in session.exec(
        select(AssignmentEvent)
        .where(
            col(AssignmentEvent.assignment_id).in_([a.id for a in assignments]),
            AssignmentEvent.to_status == S.rejected.value,
        )
        .order_by(col(AssignmentEvent.at), col(AssignmentEvent.id))
    ).all():
        latest[event.assignment_id] = event
    return [latest.get(a.id) for a in assignments]


def _rejection(assignment: Assignment, event: AssignmentEvent | None) -> Rejection:
    reasons = (event.details or {}).get("reasons") if event else None
    return Rejection(
        assignment=assignment,
        rejected_at=event.at if event else (assignment.decided_at or assignment.updated_at),
        rejected_by=ActorType(event.actor_type) if event else ActorType.system,
        reasons=[str(r) for r in reasons] if isinstance(reasons, list) else ([event.reason] if event else []),
    )
