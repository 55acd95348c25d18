from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Controller
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, Parameter, SkipValidation
from sqlmodel import Session

from fieldcheck.assignments.schemas import AssignmentOut
from fieldcheck.assignments.views import assignments_out
from fieldcheck.auth.models import Role
from fieldcheck.auth.security import BEARER_SECURITY, Principal, requires
from fieldcheck.errors import BadRequest, field_error
from fieldcheck.i18n import _, text
from fieldcheck.reviews import oversight, service
from fieldcheck.reviews.models import QueueReason
from fieldcheck.reviews.schemas import (
    AppealIn,
    AppealOut,
    ClaimOut,
    DecisionIn,
    ItemOut,
    QueueOut,
    ReversalIn,
)
from fieldcheck.reviews.views import item_detail, queue_out
from fieldcheck.settings import Settings
from fieldcheck.storage import ObjectStorage
from fieldcheck.web import get, post

MAX_QUEUE_LIMIT = 100


class ReviewController(Controller):
    path = "/api/v1/review"
    tags = ["review"]
    guards = [requires(Role.reviewer, Role.admin)]
    security = BEARER_SECURITY

    @get("/queue", summary="Items to review, oldest first")
    def queue(
        self,
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        reason: FromQuery[QueueReason | None] = None,
        limit: Annotated[int, Parameter(ge=1, le=MAX_QUEUE_LIMIT)] = 50,
    ) -> QueueOut:
        items, counts = service.queue(db_session, reviewer_id=principal.user_id, reason=reason, limit=limit)
        return QueueOut(items=queue_out(db_session, principal.user_id, items), counts=counts)

    @get("/{assignment_id:uuid}", summary="One item, with everything needed to decide it")
    def item(
        self,
        assignment_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        storage: NamedDependency[SkipValidation[ObjectStorage]],
    ) -> ItemOut:
        return item_detail(db_session, storage, settings, principal.user_id, assignment_id)

    @post(
        "/{assignment_id:uuid}/claim",
        status_code=200,
        summary="Take the item for the lease time (409 claimed_by_another)",
    )
    def claim(
        self,
        assignment_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> ClaimOut:
        lease = service.claim(
            db_session, settings, reviewer_id=principal.user_id, assignment_id=assignment_id
        )
        return ClaimOut(
            assignment_id=lease.assignment_id,
            reason=QueueReason(lease.kind),
            lease_expires_at=lease.expires_at,
        )

    @post(
        "/{assignment_id:uuid}/decision",
        status_code=200,
        summary="Approve or reject with reason codes and a comment",
        description="Reason codes: blurry, wrong_shelf, wrong_store, duplicate, not_in_store, incomplete, "
        "other. A rejection needs at least one. Needs a live claim (409 not_claimed, lease_expired).",
    )
    def decision(
        self,
        assignment_id: FromPath[uuid.UUID],
        data: JSONBody[DecisionIn],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        storage: NamedDependency[SkipValidation[ObjectStorage]],
    ) -> AssignmentOut:
        decided = service.decide(
            db_session,
            reviewer_id=principal.user_id,
            assignment_id=assignment_id,
            approve=data.decision == "approve",
            reasons=data.reasons,
            comment=data.comment.strip(),
        )
        return assignments_out(db_session, storage, settings, [decided])[0]


class AppealController(Controller):
    path = "/api/v1/assignments/{assignment_id:uuid}/appeal"
    tags = ["workers"]
    guards = [requires(Role.worker)]
    security = BEARER_SECURITY

    @post(
        "/",
        summary="Ask a person to look again at a rejection",
        description="Within the appeal window after the rejection (409 appeal_window_closed); once per "
        "assignment; another reviewer than the one who rejected decides, and that decision is final.",
    )
    def appeal(
        self,
        assignment_id: FromPath[uuid.UUID],
        data: JSONBody[AppealIn],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> AppealOut:
        record = service.appeal(
            db_session,
            settings,
            worker_id=principal.user_id,
            assignment_id=assignment_id,
            message=data.message.strip(),
        )
        return AppealOut(
            id=record.id,
            assignment_id=record.assignment_id,
            message=record.message,
            created_at=record.created_at,
        )


class AdminAssignmentController(Controller):
    path = "/api/v1/admin/assignments"
    tags = ["admin"]
    guards = [requires(Role.admin)]
    security = BEARER_SECURITY

    @post(
        "/{assignment_id:uuid}/reverse-rejection",
        status_code=200,
        summary="Reverse a rejection the platform got wrong: approve and pay",
        description="Paid from the campaign's escrow while the slot is still held, else by the platform.",
    )
    def reverse(
        self,
        assignment_id: FromPath[uuid.UUID],
        data: JSONBody[ReversalIn],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        storage: NamedDependency[SkipValidation[ObjectStorage]],
    ) -> AssignmentOut:
        reversed_ = service.reverse_rejection(
            db_session, admin_id=principal.user_id, assignment_id=assignment_id, reason=data.reason
        )
        return assignments_out(db_session, storage, settings, [reversed_])[0]


class OversightController(Controller):
    path = "/api/v1/admin/oversight"
    tags = ["admin"]
    guards = [requires(Role.admin)]
    security = BEARER_SECURITY

    @get(
        "/",
        summary="Human oversight of the automated checks: how often each fired and was overturned by a person",
        description="Per check and outcome: fired, decided by a person, overturned, overturn rate, and whether "
        "it needs recalibration (FIELDCHECK_OVERSIGHT_OVERTURN_RATE over FIELDCHECK_OVERSIGHT_MIN_CASES); "
        "appeal reversal rates by the original decider; hours to a human decision (p50, p90); per reviewer, "
        "decisions and the share reversed on appeal. `since`: an ISO date or time.",
    )
    def report(
        self,
        db_session: NamedDependency[Session],
        settings: NamedDependency[Settings],
        since: Annotated[
            str | None,
            Parameter(
                description="only what happened from then: an ISO 8601 date or date-time (UTC when no offset)",
                schema_extra={"format": "date-time"},
                max_length=40,
            ),
        ] = None,
    ) -> dict[str, Any]:
        return oversight.report(db_session, settings, since=_moment(since)).as_dict()


def _moment(value: str | None) -> datetime | None:
    """An ISO 8601 date or date-time, strictly (a bare number is not a time); naive means UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadRequest(
            text(
                _("since must be an ISO 8601 date or date-time, such as 2026-12-01 or 2026-12-01T08:00:00Z")
            ),
            code="invalid_since",
            errors=[field_error("since", "not an ISO 8601 date or date-time")],
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
