"""A campaign's results as its client sees them: the read model behind results, exports, webhooks
and the console.

What a client gets is deliberately narrower than what a reviewer sees: client-safe photos only
(re-encoded, no metadata, faces blurred), the distance from the store instead of any position,
no worker identity or device, no reviewer's comment to the worker, and no check that describes
the worker's other work (travel).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import Select

from fieldcheck.assignments.models import (
    AWAITING_DECISION,
    DECISIONS,
    DELIVERED,
    Assignment,
    AssignmentEvent,
    AssignmentStatus,
    DecidedBy,
)
from fieldcheck.campaigns.models import Campaign
from fieldcheck.checks.models import CheckResultRow, Outcome
from fieldcheck.errors import BadRequest, field_error
from fieldcheck.i18n import _, text
from fieldcheck.ledger import service as ledger
from fieldcheck.pagination import Position, paginate
from fieldcheck.photos.models import Photo
from fieldcheck.results.schemas import (
    CheckSummaryOut,
    ResultDecisionOut,
    ResultOut,
    ResultPhotoOut,
    ResultStoreOut,
    SummaryOut,
)
from fieldcheck.reviews.models import REASON_TEXT, ReasonCode
from fieldcheck.settings import Settings
from fieldcheck.storage import ObjectStorage
from fieldcheck.stores.models import Store
from fieldcheck.tasks import service as tasks
from fieldcheck.tasks.models import Task

# Checks whose explanation speaks of the worker rather than of this visit.
WORKER_PRIVATE_CHECKS = frozenset({"travel"})
PRIVATE_EXPLANATION = "A check on the worker's account; its details are not shared."
BATCH = 200


@dataclass(frozen=True)
class StoreRef:
    id: uuid.UUID
    external_ref: str | None
    name: str
    address: str | None
    lat: float
    lon: float

    @classmethod
    def of(cls, store: Store) -> StoreRef:
        return cls(store.id, store.external_ref, store.name, store.address, store.lat, store.lon)


@dataclass(frozen=True)
class ClientPhoto:
    id: uuid.UUID
    safe_key: str | None
    thumbnail_key: str | None
    faces_blurred: int


@dataclass(frozen=True)
class ClientCheck:
    name: str
    photo_id: uuid.UUID | None
    outcome: Outcome
    value: str | None
    threshold: str | None
    explanation: str


@dataclass(frozen=True)
class ClientDecision:
    outcome: AssignmentStatus
    decided_by: DecidedBy
    reasons: list[str]
    decided_at: datetime


@dataclass(frozen=True)
class ResultRow:
    assignment_id: uuid.UUID
    task_id: uuid.UUID
    store: StoreRef
    status: AssignmentStatus
    submitted_at: datetime | None
    visited_at: datetime | None
    distance_m: float | None
    decision: ClientDecision | None
    photos: list[ClientPhoto]
    checks: list[ClientCheck]

    @property
    def check_counts(self) -> dict[Outcome, int]:
        counts = dict.fromkeys(Outcome, 0)
        for check in self.checks:
            counts[check.outcome] += 1
        return counts

    @property
    def reasons_text(self) -> str:
        return "; ".join(self.decision.reasons) if self.decision else ""


@dataclass
class Summary:
    stores: int = 0
    slots_total: int = 0
    submitted: int = 0  # delivered work, whatever became of it
    approved: int = 0
    rejected: int = 0
    in_review: int = 0  # waiting for a person (flagged, appealed) or for the checks
    reserved: int = 0  # workers on their way
    tasks_done: int = 0  # tasks whose every slot has approved work
    currency: str = ""
    spent_cents: int = 0  # released from escrow: rewards and fees of approved work
    escrow_left_cents: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    @property
    def approval_rate(self) -> float | None:
        decided = self.approved + self.rejected
        return self.approved / decided if decided else None

    @property
    def completion(self) -> float:
        return self.approved / self.slots_total if self.slots_total else 0.0


def status_pattern() -> str:
    """What one `status` query value may be: delivered statuses, comma-separated (for the
    OpenAPI document, so that generated clients send only what `parse_statuses` takes)."""
    one = "(" + "|".join(sorted(s.value for s in DELIVERED)) + ")"
    return f"^{one}(,{one})*$"


def parse_statuses(raw: list[str] | None) -> list[str]:
    allowed = {s.value for s in DELIVERED}
    wanted = [s for part in raw or [] for s in part.split(",") if s]
    unknown = sorted(set(wanted) - allowed)
    if unknown:
        raise BadRequest(
            text(
                _("unknown status {unknown}; use any of {allowed}"),
                unknown=", ".join(unknown),
                allowed=", ".join(sorted(allowed)),
            ),
            code="invalid_status",
            errors=[
                field_error("status", text(_("not one of {allowed}"), allowed=str(sorted(allowed))), "query")
            ],
        )
    return wanted or sorted(allowed)


def summary(session: Session, campaign: Campaign) -> Summary:
    figures = Summary(currency=campaign.currency)
    slots = tasks.slots_of(session, campaign.id)
    figures.stores, figures.slots_total, figures.tasks_done = slots.tasks, slots.total, slots.tasks_done
    for status, count in session.exec(
        select(Assignment.status, func.count())
        .where(Assignment.campaign_id == campaign.id)
        .group_by(col(Assignment.status))
    ).all():
        figures.by_status[status] = int(count)
    by = figures.by_status
    figures.approved = by.get(AssignmentStatus.approved.value, 0)
    figures.rejected = by.get(AssignmentStatus.rejected.value, 0)
    figures.in_review = sum(by.get(s.value, 0) for s in AWAITING_DECISION)
    figures.submitted = figures.approved + figures.rejected + figures.in_review
    figures.reserved = by.get(AssignmentStatus.reserved.value, 0)
    position = ledger.escrow_position(session, campaign.id, campaign.currency)
    figures.escrow_left_cents, figures.spent_cents = position.held, position.released
    return figures


def _base_query(
    campaign_id: uuid.UUID, statuses: list[str], store_id: uuid.UUID | None
) -> Select[Assignment, Store]:
    query = (
        select(Assignment, Store)
        .join(Task, col(Task.id) == col(Assignment.task_id))
        .join(Store, col(Store.id) == col(Task.store_id))
        .where(Assignment.campaign_id == campaign_id, col(Assignment.status).in_(statuses))
    )
    if store_id is not None:
        query = query.where(Task.store_id == store_id)
    return query


def page(
    session: Session,
    campaign: Campaign,
    *,
    statuses: list[str],
    store_id: uuid.UUID | None = None,
    limit: int,
    cursor: str | None,
) -> tuple[list[ResultRow], str | None]:
    """Results in the order work was submitted (then id), keyset-paginated."""
    rows, next_cursor = paginate(
        session,
        _base_query(campaign.id, statuses, store_id),
        time_column=col(Assignment.submitted_at),
        id_column=col(Assignment.id),
        limit=limit,
        cursor=cursor,
        position_of=_position,
    )
    return _rows(session, rows), next_cursor


def _position(row: tuple[Assignment, Store]) -> Position:
    assignment = row[0]
    assert assignment.submitted_at is not None  # delivered work only
    return Position(assignment.submitted_at, assignment.id)


def iterate(
    session: Session, campaign: Campaign, *, statuses: list[str] | None = None
) -> Iterator[ResultRow]:
    """Every result of the campaign, in submission order, read in batches."""
    statuses = statuses or [s.value for s in DELIVERED]
    cursor: str | None = None
    while True:
        rows, cursor = page(session, campaign, statuses=statuses, limit=BATCH, cursor=cursor)
        yield from rows
        if cursor is None:
            return


def count(session: Session, campaign: Campaign, statuses: list[str] | None = None) -> int:
    statuses = statuses or [s.value for s in DELIVERED]
    return int(
        session.exec(
            select(func.count())
            .select_from(Assignment)
            .where(Assignment.campaign_id == campaign.id, col(Assignment.status).in_(statuses))
        ).one()
    )


def _rows(session: Session, pairs: list[tuple[Assignment, Store]]) -> list[ResultRow]:
    ids = [a.id for a, _ in pairs]
    photos: dict[uuid.UUID, list[ClientPhoto]] = {i: [] for i in ids}
    checks: dict[uuid.UUID, list[ClientCheck]] = {i: [] for i in ids}
    private: dict[uuid.UUID, set[str]] = {i: set() for i in ids}
    decisions: dict[uuid.UUID, AssignmentEvent] = {}
    if ids:
        for photo in session.exec(
            select(Photo)
            .where(col(Photo.assignment_id).in_(ids), col(Photo.safe_key).is_not(None))
            .order_by(col(Photo.created_at), col(Photo.id))
        ).all():
            photos[photo.assignment_id].append(
                ClientPhoto(
                    id=photo.id,
                    safe_key=photo.safe_key,
                    thumbnail_key=photo.thumbnail_key,
                    faces_blurred=int((photo.measurements or {}).get("faces_blurred", 0)),
                )
            )
        for row in session.exec(
            select(CheckResultRow)
            .where(col(CheckResultRow.assignment_id).in_(ids))
            .order_by(col(CheckResultRow.assignment_id), col(CheckResultRow.position))
        ).all():
            is_private = row.name in WORKER_PRIVATE_CHECKS
            if is_private:
                private[row.assignment_id].add(row.explanation)
            checks[row.assignment_id].append(
                ClientCheck(
                    name=row.name,
                    photo_id=row.photo_id,
                    outcome=Outcome(row.outcome),
                    value=None if is_private else row.value,
                    threshold=None if is_private else row.threshold,
                    explanation=PRIVATE_EXPLANATION if is_private else row.explanation,
                )
            )
        for event in session.exec(
            select(AssignmentEvent)
            .where(
                col(AssignmentEvent.assignment_id).in_(ids),
                col(AssignmentEvent.to_status).in_([s.value for s in DECISIONS]),
            )
            .order_by(col(AssignmentEvent.at), col(AssignmentEvent.id))
        ).all():
            decisions[event.assignment_id] = event  # the latest wins
    results = []
    for assignment, store in pairs:
        decided = decisions.get(assignment.id)
        results.append(
            ResultRow(
                assignment_id=assignment.id,
                task_id=assignment.task_id,
                store=StoreRef.of(store),
                status=AssignmentStatus(assignment.status),
                submitted_at=assignment.submitted_at,
                visited_at=assignment.captured_at or assignment.submitted_at,
                distance_m=round(assignment.distance_m, 1) if assignment.distance_m is not None else None,
                decision=client_decision(decided, private[assignment.id]) if decided is not None else None,
                photos=photos[assignment.id],
                checks=checks[assignment.id],
            )
        )
    return results


def client_decision(event: AssignmentEvent, private_texts: set[str]) -> ClientDecision:
    """The decision in the client's words.

    A reviewer's comment is written for the worker, and a check about the worker's other work
    is theirs: a reviewer's decision shows its reason codes' texts, a system decision its reasons
    without any private check's explanation.
    """
    by = DecidedBy.of(event.actor_type)
    outcome = event.to_status.replace("_", " ")
    details = event.details or {}
    if by is DecidedBy.reviewer:
        codes = [c for c in details.get("codes") or [] if c in ReasonCode.__members__]
        # Clients read English: the reviewer's reason codes, not the worker's texts.
        reasons = [REASON_TEXT[ReasonCode(c)].english for c in codes] or [
            f"{outcome.capitalize()} by a reviewer."
        ]
    else:
        reasons = []
        for text in details.get("reasons") or [event.reason]:
            shown = PRIVATE_EXPLANATION if text in private_texts else str(text)
            if shown not in reasons:
                reasons.append(shown)
    return ClientDecision(
        outcome=AssignmentStatus(event.to_status), decided_by=by, reasons=reasons, decided_at=event.at
    )


def private_texts(session: Session, assignment_id: uuid.UUID) -> set[str]:
    """The explanations of one assignment's checks about the worker (never shown to its client)."""
    return set(
        session.exec(
            select(CheckResultRow.explanation).where(
                CheckResultRow.assignment_id == assignment_id,
                col(CheckResultRow.name).in_(WORKER_PRIVATE_CHECKS),
            )
        ).all()
    )


# Answers ---------------------------------------------------------------------------------------
def result_out(row: ResultRow, storage: ObjectStorage, settings: Settings) -> ResultOut:
    ttl = settings.signed_url_ttl_s
    counts = row.check_counts
    return ResultOut(
        assignment_id=row.assignment_id,
        task_id=row.task_id,
        store=ResultStoreOut(
            id=row.store.id,
            external_ref=row.store.external_ref,
            name=row.store.name,
            address=row.store.address,
            lat=row.store.lat,
            lon=row.store.lon,
        ),
        status=row.status,
        decision=ResultDecisionOut(
            outcome=row.decision.outcome,
            decided_by=row.decision.decided_by,
            reasons=row.decision.reasons,
            decided_at=row.decision.decided_at,
        )
        if row.decision
        else None,
        photos=[
            ResultPhotoOut(
                id=p.id,
                url=storage.presign_download(p.safe_key, expires_s=ttl),
                thumbnail_url=storage.presign_download(p.thumbnail_key, expires_s=ttl)
                if p.thumbnail_key
                else None,
                faces_blurred=p.faces_blurred,
            )
            for p in row.photos
            if p.safe_key
        ],
        check_summary=CheckSummaryOut(
            passed=counts[Outcome.passed],
            warned=counts[Outcome.warn],
            failed=counts[Outcome.fail],
            notes=[c.explanation for c in row.checks if c.outcome is not Outcome.passed],
        ),
        visited_at=row.visited_at,
        submitted_at=row.submitted_at,
        distance_m=row.distance_m,
    )


def summary_out(figures: Summary) -> SummaryOut:
    return SummaryOut(
        stores=figures.stores,
        slots_total=figures.slots_total,
        tasks_done=figures.tasks_done,
        submitted=figures.submitted,
        approved=figures.approved,
        rejected=figures.rejected,
        in_review=figures.in_review,
        reserved=figures.reserved,
        completion=round(figures.completion, 4),
        approval_rate=round(figures.approval_rate, 4) if figures.approval_rate is not None else None,
        currency=figures.currency,
        spent_cents=figures.spent_cents,
        escrow_left_cents=figures.escrow_left_cents,
    )
