"""An assignment as its worker sees it: the task, the photos, every check with its explanation,
the decision (by the system or a person, never who), the payment and the whole history.

Read for a page of assignments at once: a handful of queries whatever the page's size.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from fieldcheck.assignments import service
from fieldcheck.assignments.models import (
    AWAITING_DECISION,
    DECISIONS,
    Assignment,
    AssignmentEvent,
    AssignmentStatus,
    DecidedBy,
    PaymentStatus,
)
from fieldcheck.assignments.schemas import (
    AssignmentEventOut,
    AssignmentOut,
    CheckOut,
    DecisionOut,
    PaymentOut,
    PhotoRulesOut,
)
from fieldcheck.assignments.transitions import reference
from fieldcheck.campaigns.models import Campaign
from fieldcheck.checks.models import CheckResultRow
from fieldcheck.checks.photo import Check
from fieldcheck.checks.service import results_of
from fieldcheck.db import utcnow
from fieldcheck.i18n import Text, render_stored
from fieldcheck.ledger import service as ledger
from fieldcheck.photos.models import Photo
from fieldcheck.photos.schemas import PhotoCheckOut, PhotoChecksOut
from fieldcheck.photos.service import photos_of
from fieldcheck.photos.views import photo_out
from fieldcheck.settings import Settings
from fieldcheck.storage import ObjectStorage
from fieldcheck.stores.schemas import StoreSummary


def event_out(event: AssignmentEvent) -> AssignmentEventOut:
    # Workers see whether a person or the system acted, never who the person is.
    return AssignmentEventOut(
        at=event.at,
        from_status=event.from_status,
        to_status=event.to_status,
        by=event.actor_type,
        reason=render_stored(event.details.get("reason_text"), event.reason) or event.reason,
    )


def check_out(row: CheckResultRow) -> CheckOut:
    """A stored check result in the reader's language (older rows: their English)."""
    texts = row.texts or {}
    return CheckOut(
        name=row.name,
        photo_id=row.photo_id,
        outcome=row.outcome,
        value=render_stored(texts.get("value"), row.value),
        threshold=render_stored(texts.get("threshold"), row.threshold),
        explanation=render_stored(texts.get("explanation"), row.explanation) or row.explanation,
    )


def latest_decision(events: list[AssignmentEvent]) -> AssignmentEvent | None:
    decisions = [e for e in events if e.to_status in DECISIONS]
    return decisions[-1] if decisions else None


def decision_out(event: AssignmentEvent) -> DecisionOut:
    stored = event.details.get("reason_texts")
    reasons = (
        [Text.from_json(reason).render() for reason in stored]
        if stored
        else list(event.details.get("reasons") or [event_out(event).reason])
    )
    return DecisionOut(
        outcome=event.to_status,
        decided_by=DecidedBy.of(event.actor_type),
        reasons=reasons,
        decided_at=event.at,
    )


def appeal_until(
    assignment: Assignment, events: list[AssignmentEvent], settings: Settings
) -> datetime | None:
    """Until when a rejection may be appealed: once, within the window, unless it was final."""
    if assignment.status != AssignmentStatus.rejected.value or assignment.decided_at is None:
        return None
    if any(e.to_status == AssignmentStatus.appealed.value for e in events):
        return None
    last = latest_decision(events)
    if last is not None and last.details.get("final"):
        return None
    until = assignment.decided_at + timedelta(days=settings.appeal_window_days)
    return until if until > utcnow() else None


def payment_of(assignment: Assignment, campaign: Campaign, paid: dict[str, int]) -> PaymentOut:
    """Released (credited to the worker's balance), due, pending, or none."""
    if assignment.status == AssignmentStatus.approved.value:
        reward = paid.get(reference(assignment.id))
        status, amount = (
            (PaymentStatus.released, reward)
            if reward is not None
            else (PaymentStatus.due, campaign.reward_cents)
        )
    elif assignment.status in AWAITING_DECISION:
        status, amount = PaymentStatus.pending, campaign.reward_cents
    else:
        status, amount = PaymentStatus.none, 0
    return PaymentOut(status=status, amount_cents=amount, currency=campaign.currency)


def assignments_out(
    session: Session, storage: ObjectStorage, settings: Settings, assignments: list[Assignment]
) -> list[AssignmentOut]:
    ids = [a.id for a in assignments]
    contexts = service.context_of(session, assignments)
    events = service.events_of(session, ids)
    checks = results_of(session, ids)
    photos = photos_of(session, ids)
    approved = [reference(a.id) for a in assignments if a.status == AssignmentStatus.approved.value]
    paid = ledger.paid_rewards(session, approved)
    items = []
    for assignment in assignments:
        _task, campaign, store = contexts[assignment.task_id]
        decision_event = latest_decision(events[assignment.id])
        items.append(
            AssignmentOut(
                id=assignment.id,
                task_id=assignment.task_id,
                campaign_id=assignment.campaign_id,
                status=assignment.status,
                title=campaign.title,
                instructions=campaign.instructions,
                store=StoreSummary(
                    name=store.name,
                    address=store.address,
                    lat=store.lat,
                    lon=store.lon,
                    geofence_m=store.geofence_m,
                ),
                reward_cents=campaign.reward_cents,
                currency=campaign.currency,
                created_at=assignment.created_at,
                expires_at=assignment.expires_at,
                submitted_at=assignment.submitted_at,
                decided_at=assignment.decided_at,
                distance_m=round(assignment.distance_m, 1) if assignment.distance_m is not None else None,
                photos=[photo_out(p, storage, settings) for p in photos[assignment.id]],
                checks=[check_out(c) for c in checks[assignment.id]],
                decision=decision_out(decision_event) if decision_event else None,
                payment=payment_of(assignment, campaign, paid),
                history=[event_out(e) for e in events[assignment.id]],
                estimated_minutes=campaign.estimated_minutes,
                photo_rules=PhotoRulesOut(
                    min_photos=campaign.min_photos,
                    max_photos=campaign.max_photos,
                    min_short_side_px=campaign.min_short_side_px,
                ),
                appeal_until=appeal_until(assignment, events[assignment.id], settings),
            )
        )
    return items


def photo_checks_out(photo: Photo, storage: ObjectStorage, settings: Settings) -> PhotoChecksOut:
    """The photo and its instant checks, in the language of the request."""
    checks = [Check.from_json(stored) for stored in photo.early_checks or []]
    return PhotoChecksOut(
        **photo_out(photo, storage, settings).model_dump(),
        assignment_id=photo.assignment_id,
        check_status=photo.check_status,
        checks=[
            PhotoCheckOut(name=check.name, outcome=check.outcome.value, **check.rendered())
            for check in checks
        ],
        checked_at=photo.early_checked_at,
    )
