"""An assignment as its worker sees it: the task, the photos, every check with its explanation,
the decision (by the system or a person, never who), the payment and the whole history.

Read for a page of assignments at once: a handful of queries whatever the page's size.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from html import escape

from sqlmodel import Session

from fieldcheck.assignments import service
from fieldcheck.assignments.models import (
    AWAITING_DECISION,
    DECISIONS,
    STATUS_WORDS,
    Assignment,
    AssignmentEvent,
    AssignmentStatus,
    DecidedBy,
    PaymentStatus,
    status_text,
)
from fieldcheck.assignments.schemas import (
    AssignmentEventOut,
    AssignmentOut,
    CheckOut,
    DecisionOut,
    PaymentOut,
    PhotoRulesOut,
    StatementOut,
    StatementReason,
)
from fieldcheck.assignments.transitions import reference
from fieldcheck.campaigns.models import Campaign
from fieldcheck.checks.models import CheckResultRow
from fieldcheck.checks.photo import Check
from fieldcheck.checks.service import results_of
from fieldcheck.db import utcnow
from fieldcheck.errors import Conflict
from fieldcheck.i18n import Text, _, language_var, render_stored, text
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


STATEMENT_TITLE = _("Statement of reasons")
REASONS = _("Reasons")
APPEAL = _("Appeal")
MEASURED = _("Measured: {value}")
EXPECTED = _("Expected: {value}")
APPEAL_HOW = _(
    "You can appeal this decision until {until}: in the app (My work), or POST /api/v1/assignments/{id}/appeal "
    "with a message. Another person than the one who decided will look at it."
)
APPEAL_FINAL = _("This decision was taken on appeal: it is final.")
APPEAL_CLOSED = _("The time to appeal has passed.")
APPEAL_PENDING = _("Your appeal is with a person; you will see the decision here.")


def statement_out(session: Session, settings: Settings, assignment: Assignment) -> StatementOut:
    """What was decided, by whom (the system or a person), each reason with its value and threshold,
    and how to appeal and until when; in the reader's language."""
    if assignment.status not in (AssignmentStatus.rejected.value, AssignmentStatus.appealed.value):
        raise Conflict(
            text(
                _("a statement of reasons is written for rejections; this assignment is {status}"),
                status=status_text(assignment.status),
            ),
            code="no_rejection",
            current_status=assignment.status,
        )
    contexts = service.context_of(session, [assignment])
    _task, campaign, store = contexts[assignment.task_id]
    events = service.events_of(session, [assignment.id])[assignment.id]
    rejection = next(e for e in reversed(events) if e.to_status == AssignmentStatus.rejected.value)
    by = DecidedBy.of(rejection.actor_type)
    reasons: list[StatementReason] = []
    if by is DecidedBy.system:
        for row in results_of(session, [assignment.id])[assignment.id]:
            if row.outcome.value == "fail":
                shown = check_out(row)
                reasons.append(
                    StatementReason(
                        check=row.name,
                        photo_id=row.photo_id,
                        explanation=shown.explanation,
                        value=shown.value,
                        threshold=shown.threshold,
                    )
                )
    if not reasons:
        reasons = [
            StatementReason(check=None, explanation=reason) for reason in decision_out(rejection).reasons
        ]
    until = appeal_until(assignment, events, settings)
    final = bool(rejection.details.get("final"))
    if assignment.status == AssignmentStatus.appealed.value:
        appeal = text(APPEAL_PENDING).render()
    elif final:
        appeal = text(APPEAL_FINAL).render()
    elif until is not None:
        appeal = text(APPEAL_HOW, until=f"{until:%Y-%m-%d %H:%M} UTC", id=str(assignment.id)).render()
    else:
        appeal = text(APPEAL_CLOSED).render()
    return StatementOut(
        assignment_id=assignment.id,
        title=campaign.title,
        store=store.name,
        decision=text(STATUS_WORDS[AssignmentStatus.rejected.value]).render(),
        decided_by=by,
        decided_at=rejection.at,
        final=final,
        reasons=reasons,
        appeal=appeal,
        appeal_until=until,
        issued_at=utcnow(),
    )


def statement_page(statement: StatementOut) -> str:
    """The statement as a printable page (no script)."""
    who = text(
        _("the automated checks") if statement.decided_by is DecidedBy.system else _("a person")
    ).render()
    rows = "".join(
        f"<li><p>{escape(r.explanation)}</p>"
        + (
            f'<p class="muted small">{escape(text(MEASURED, value=r.value).render())}'
            + (f" · {escape(text(EXPECTED, value=r.threshold).render())}" if r.threshold else "")
            + "</p>"
            if r.value
            else ""
        )
        + "</li>"
        for r in statement.reasons
    )
    title = escape(text(STATEMENT_TITLE).render())
    decided = escape(
        text(
            _("{title}, {store}: rejected by {who} on {when}."),
            title=statement.title,
            store=statement.store,
            who=who,
            when=f"{statement.decided_at:%Y-%m-%d %H:%M} UTC",
        ).render()
    )
    return (
        f'<!doctype html><html lang="{language_var.get()}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{title}</title><link rel="stylesheet" href="/app/app.css"></head><body><main>'
        f"<h1>{title}</h1><p>{decided}</p><h2>{escape(text(REASONS).render())}</h2><ol>{rows}</ol>"
        f"<h2>{escape(text(APPEAL).render())}</h2><p>{escape(statement.appeal)}</p>"
        f'<p class="muted small">{escape(str(statement.assignment_id))} · '
        f"{statement.issued_at:%Y-%m-%d %H:%M} UTC</p></main></body></html>"
    )
