"""Human oversight of the automated decisions (EU Platform Work Directive, Art. 10), from what
people actually decided: how often each check fired, how often a person overturned it, appeal
outcomes by who decided first, how long people take, each reviewer's record, and the checks whose
overturn rate says they need recalibrating. The rows of the CSV (one per human decision on an
automated flag) are also the labels to recalibrate them with.

A person overturns a check when:
- it sent work to a person (warn) and the person approved it;
- it rejected work (fail) and the rejection was reversed on appeal;
- the work passed every check and was approved, and the audit of a sample found it wrong.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from fieldcheck.assignments.models import Assignment
from fieldcheck.checks.models import CheckResultRow, Outcome
from fieldcheck.reviews.models import Appeal, AppealOutcome, QueueReason, Review, ReviewDecision
from fieldcheck.settings import Settings


@dataclass
class CheckFigures:
    name: str
    outcome: str
    fired: int = 0
    human_decided: int = 0
    overturned: int = 0
    overturn_rate: float | None = None
    needs_recalibration: bool = False


@dataclass
class ReviewerFigures:
    reviewer_id: str
    decisions: int = 0
    rejections_appealed: int = 0
    reversed_on_appeal: int = 0
    reversed_share: float | None = None


@dataclass
class LabelRow:
    """One human decision on an automated flag: a label for recalibrating the check."""

    decided_at: str
    assignment_id: str
    photo_id: str | None
    check: str
    outcome: str
    value: str | None
    threshold: str | None
    human: str  # approve or reject
    kind: str  # flagged, appeal, sampled
    reason_codes: str


@dataclass
class OversightReport:
    since: str | None
    checks: list[CheckFigures] = field(default_factory=list)
    appeals: dict[str, dict[str, Any]] = field(default_factory=dict)
    hours_to_human_decision: dict[str, float | None] = field(default_factory=dict)
    reviewers: list[ReviewerFigures] = field(default_factory=list)
    needs_recalibration: list[str] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=dict)
    labels: list[LabelRow] = field(default_factory=list)

    def as_dict(self, *, with_labels: bool = False) -> dict[str, Any]:
        found = asdict(self)
        if not with_labels:
            found.pop("labels")
        return found


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * share
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (position - low), 2)


def report(session: Session, settings: Settings, *, since: datetime | None = None) -> OversightReport:
    found = OversightReport(
        since=since.isoformat() if since else None,
        thresholds={
            "overturn_rate": settings.oversight_overturn_rate,
            "min_cases": settings.oversight_min_cases,
        },
    )
    results = select(CheckResultRow.name, CheckResultRow.outcome)
    if since is not None:
        results = results.where(col(CheckResultRow.created_at) >= since)
    figures: dict[tuple[str, str], CheckFigures] = {}
    for name, outcome in session.exec(results).all():
        key = (name, Outcome(outcome).value)
        figures.setdefault(key, CheckFigures(name, key[1])).fired += 1

    reviews_query = select(Review, Assignment).join(
        Assignment, col(Assignment.id) == col(Review.assignment_id)
    )
    if since is not None:
        reviews_query = reviews_query.where(col(Review.created_at) >= since)
    reviews = session.exec(reviews_query.order_by(col(Review.created_at))).all()
    checks_of: dict[uuid.UUID, list[CheckResultRow]] = defaultdict(list)
    ids = list({review.assignment_id for review, _ in reviews})
    for chunk in (ids[i : i + 500] for i in range(0, len(ids), 500)):
        for row in session.exec(
            select(CheckResultRow).where(col(CheckResultRow.assignment_id).in_(chunk))
        ).all():
            checks_of[row.assignment_id].append(row)

    waited: dict[str, list[float]] = defaultdict(list)
    reviewers: dict[uuid.UUID, ReviewerFigures] = {}
    for review, assignment in reviews:
        person = reviewers.setdefault(review.reviewer_id, ReviewerFigures(str(review.reviewer_id)))
        person.decisions += 1
        approved = review.decision is ReviewDecision.approve
        start = assignment.appealed_at if review.kind == QueueReason.appeal.value else assignment.submitted_at
        if start is not None and review.kind != QueueReason.sampled.value:
            waited[review.kind].append((review.created_at - start).total_seconds() / 3600)
        if review.kind == QueueReason.sampled.value:
            judged, overturned = Outcome.passed, not approved
        elif review.kind == QueueReason.appeal.value:
            judged, overturned = Outcome.fail, approved
        else:
            judged, overturned = Outcome.warn, approved
        for row in checks_of[review.assignment_id]:
            if Outcome(row.outcome) is not judged:
                continue
            key = (row.name, judged.value)
            figure = figures.setdefault(key, CheckFigures(row.name, judged.value))
            figure.human_decided += 1
            figure.overturned += int(overturned)
            found.labels.append(
                LabelRow(
                    decided_at=review.created_at.isoformat(),
                    assignment_id=str(review.assignment_id),
                    photo_id=str(row.photo_id) if row.photo_id else None,
                    check=row.name,
                    outcome=Outcome(row.outcome).value,
                    value=row.value,
                    threshold=row.threshold,
                    human=review.decision.value,
                    kind=review.kind,
                    reason_codes=" ".join(review.reasons),
                )
            )
    for figure in figures.values():
        if figure.human_decided:
            figure.overturn_rate = round(figure.overturned / figure.human_decided, 3)
            figure.needs_recalibration = (
                figure.human_decided >= settings.oversight_min_cases
                and figure.overturn_rate > settings.oversight_overturn_rate
            )
    found.checks = sorted(figures.values(), key=lambda f: (f.name, f.outcome))
    found.needs_recalibration = [f"{f.name}:{f.outcome}" for f in found.checks if f.needs_recalibration]

    appeals_query = select(Appeal).where(col(Appeal.decided_at).is_not(None))
    if since is not None:
        appeals_query = appeals_query.where(col(Appeal.decided_at) >= since)
    by_decider: dict[str, dict[str, Any]] = {
        "system": {"decided": 0, "reversed": 0},
        "reviewer": {"decided": 0, "reversed": 0},
    }
    for appeal in session.exec(appeals_query).all():
        decider = "system" if appeal.rejected_by is None else "reviewer"
        reversed_ = appeal.outcome is AppealOutcome.approved
        by_decider[decider]["decided"] += 1
        by_decider[decider]["reversed"] += int(reversed_)
        if appeal.rejected_by is not None:
            person = reviewers.setdefault(appeal.rejected_by, ReviewerFigures(str(appeal.rejected_by)))
            person.rejections_appealed += 1
            person.reversed_on_appeal += int(reversed_)
    for figures_of in by_decider.values():
        figures_of["reversal_rate"] = (
            round(figures_of["reversed"] / figures_of["decided"], 3) if figures_of["decided"] else None
        )
    found.appeals = by_decider
    for person in reviewers.values():
        if person.rejections_appealed:
            person.reversed_share = round(person.reversed_on_appeal / person.rejections_appealed, 3)
    found.reviewers = sorted(reviewers.values(), key=lambda r: -r.decisions)
    everything = [hours for values in waited.values() for hours in values]
    found.hours_to_human_decision = {
        "p50": _percentile(everything, 0.5),
        "p90": _percentile(everything, 0.9),
        "flagged_p50": _percentile(waited[QueueReason.flagged.value], 0.5),
        "appeal_p50": _percentile(waited[QueueReason.appeal.value], 0.5),
        "decisions": float(len(everything)),
    }
    return found
