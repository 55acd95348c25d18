"""A campaign's results as its client sees them: the read model behind results, exports, console.

What a client gets is deliberately narrower than what a reviewer sees: client-safe photos only
(re-encoded, no metadata, faces blurred), the distance from the store instead of any position,
no worker identity or device, and no check that describes the worker's other work (travel).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from fieldcheck.assignments.models import Assignment, AssignmentEvent, AssignmentStatus
from fieldcheck.assignments.service import DECISION_STATUSES
from fieldcheck.campaigns.models import Campaign
from fieldcheck.checks.models import CheckResultRow
from fieldcheck.errors import BadRequest
from fieldcheck.ledger.models import AccountKind, LedgerAccount, LedgerEntry, LedgerTransaction
from fieldcheck.pagination import decode_cursor, encode_cursor
from fieldcheck.photos.models import Photo
from fieldcheck.reviews.models import REASON_TEXT, ReasonCode
from fieldcheck.stores.models import Store
from fieldcheck.tasks.models import Task

# Work a client can see: delivered, whatever became of it. Reservations in progress, cancelled
# and expired attempts are the worker's business (they count in the summary's figures only).
CLIENT_STATUSES = (
    AssignmentStatus.submitted,
    AssignmentStatus.in_review,
    AssignmentStatus.approved,
    AssignmentStatus.rejected,
    AssignmentStatus.appealed,
)
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
    outcome: str
    value: str | None
    threshold: str | None
    explanation: str


@dataclass(frozen=True)
class ClientDecision:
    outcome: str
    decided_by: str  # system or reviewer
    reasons: list[str]
    decided_at: datetime


@dataclass(frozen=True)
class ResultRow:
    assignment_id: uuid.UUID
    task_id: uuid.UUID
    store: StoreRef
    status: str
    submitted_at: datetime | None
    visited_at: datetime | None
    distance_m: float | None
    decision: ClientDecision | None
    photos: list[ClientPhoto]
    checks: list[ClientCheck]

    @property
    def check_counts(self) -> dict[str, int]:
        counts = {"pass": 0, "warn": 0, "fail": 0}
        for check in self.checks:
            counts[check.outcome] = counts.get(check.outcome, 0) + 1
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


def parse_statuses(raw: list[str] | None) -> list[str]:
    allowed = {s.value for s in CLIENT_STATUSES}
    wanted = [s for part in raw or [] for s in part.split(",") if s]
    unknown = sorted(set(wanted) - allowed)
    if unknown:
        raise BadRequest(
            f"unknown status {', '.join(unknown)}; use any of {', '.join(sorted(allowed))}",
            code="invalid_status",
            errors=[{"key": "status", "message": f"not one of {sorted(allowed)}", "source": "query"}],
        )
    return wanted or sorted(allowed)


def summary(session: Session, campaign: Campaign) -> Summary:
    figures = Summary(currency=campaign.currency)
    stores, slots = session.exec(
        select(func.count(), func.coalesce(func.sum(Task.slots_total), 0)).where(
            Task.campaign_id == campaign.id
        )
    ).one()
    figures.stores, figures.slots_total = int(stores), int(slots)
    for status, count in session.exec(
        select(Assignment.status, func.count())
        .where(Assignment.campaign_id == campaign.id)
        .group_by(col(Assignment.status))
    ).all():
        figures.by_status[status] = int(count)
    by = figures.by_status
    figures.approved = by.get(AssignmentStatus.approved.value, 0)
    figures.rejected = by.get(AssignmentStatus.rejected.value, 0)
    figures.in_review = sum(
        by.get(s.value, 0)
        for s in (AssignmentStatus.submitted, AssignmentStatus.in_review, AssignmentStatus.appealed)
    )
    figures.submitted = figures.approved + figures.rejected + figures.in_review
    figures.reserved = by.get(AssignmentStatus.reserved.value, 0)
    _, figures.tasks_done = task_completion(session, campaign.id)
    escrow = session.exec(
        select(LedgerAccount).where(
            LedgerAccount.kind == AccountKind.client_escrow.value,
            LedgerAccount.owner_id == campaign.id,
            LedgerAccount.currency == campaign.currency,
        )
    ).first()
    if escrow is not None:
        figures.escrow_left_cents = int(escrow.balance)
        released = session.exec(
            select(func.coalesce(func.sum(LedgerEntry.amount), 0))
            .join(LedgerTransaction, col(LedgerTransaction.id) == col(LedgerEntry.transaction_id))
            .where(LedgerEntry.account_id == escrow.id, LedgerTransaction.movement == "release")
        ).one()
        figures.spent_cents = -int(released)
    return figures


def task_completion(session: Session, campaign_id: uuid.UUID) -> tuple[int, int]:
    """(tasks, tasks with approved work in each of their slots) of a campaign.

    Tasks are counted, not approvals: a task with more approvals than slots (a reversed rejection
    after the slot went to someone else) does not make up for another task with none.
    """
    approved_per_task = (
        select(Assignment.task_id, func.count().label("n"))
        .where(Assignment.campaign_id == campaign_id, Assignment.status == AssignmentStatus.approved.value)
        .group_by(col(Assignment.task_id))
        .subquery()
    )
    tasks, done = session.exec(
        select(func.count(), func.count(approved_per_task.c.task_id))
        .select_from(Task)
        .outerjoin(
            approved_per_task,
            (approved_per_task.c.task_id == col(Task.id)) & (approved_per_task.c.n >= col(Task.slots_total)),
        )
        .where(Task.campaign_id == campaign_id)
    ).one()
    return int(tasks), int(done)


def _base_query(campaign_id: uuid.UUID, statuses: list[str], store_id: uuid.UUID | None) -> Any:
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
    query = _base_query(campaign.id, statuses, store_id)
    after = decode_cursor(cursor)
    if after is not None:
        try:
            bound_t, bound_i = datetime.fromisoformat(str(after["t"])), uuid.UUID(str(after["i"]))
        except (KeyError, ValueError):
            raise BadRequest("the cursor is not one this API gave out", code="invalid_cursor") from None
        query = query.where(
            (col(Assignment.submitted_at) > bound_t)
            | ((col(Assignment.submitted_at) == bound_t) & (col(Assignment.id) > bound_i))
        )
    rows = list(
        session.exec(query.order_by(col(Assignment.submitted_at), col(Assignment.id)).limit(limit + 1)).all()
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1][0]
        next_cursor = encode_cursor({"t": last.submitted_at.isoformat(), "i": str(last.id)})
    return _rows(session, rows), next_cursor


def iterate(
    session: Session, campaign: Campaign, *, statuses: list[str] | None = None
) -> Iterator[ResultRow]:
    """Every result of the campaign, in submission order, read in batches."""
    statuses = statuses or [s.value for s in CLIENT_STATUSES]
    cursor: str | None = None
    while True:
        rows, cursor = page(session, campaign, statuses=statuses, limit=BATCH, cursor=cursor)
        yield from rows
        if cursor is None:
            return


def count(session: Session, campaign: Campaign, statuses: list[str] | None = None) -> int:
    statuses = statuses or [s.value for s in CLIENT_STATUSES]
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
                    outcome=row.outcome,
                    value=None if is_private else row.value,
                    threshold=None if is_private else row.threshold,
                    explanation=PRIVATE_EXPLANATION if is_private else row.explanation,
                )
            )
        for event in session.exec(
            select(AssignmentEvent)
            .where(
                col(AssignmentEvent.assignment_id).in_(ids),
                col(AssignmentEvent.to_status).in_(DECISION_STATUSES),
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
                status=assignment.status,
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
    by = "system" if event.actor_type == "system" else "reviewer"
    outcome = event.to_status.replace("_", " ")
    details = event.details or {}
    if by == "reviewer":
        codes = [c for c in details.get("codes") or [] if c in ReasonCode.__members__]
        reasons = [REASON_TEXT[ReasonCode(c)] for c in codes] or [f"{outcome.capitalize()} by a reviewer."]
    else:
        reasons = []
        for text in details.get("reasons") or [event.reason]:
            shown = PRIVATE_EXPLANATION if text in private_texts else str(text)
            if shown not in reasons:
                reasons.append(shown)
    return ClientDecision(outcome=event.to_status, decided_by=by, reasons=reasons, decided_at=event.at)
