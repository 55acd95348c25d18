from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, Parameter, SkipValidation
from sqlmodel import Session, col, select

from fieldcheck.assignments import service as assignments
from fieldcheck.assignments.controllers import assignments_out
from fieldcheck.assignments.models import Assignment, AssignmentStatus
from fieldcheck.assignments.schemas import AssignmentOut, CheckOut
from fieldcheck.auth.models import Role
from fieldcheck.auth.security import BEARER_SECURITY, Principal, requires
from fieldcheck.errors import NotFound
from fieldcheck.photos.models import Photo, PhotoStatus
from fieldcheck.reviews import service
from fieldcheck.reviews.models import Appeal, QueueReason, ReviewClaim
from fieldcheck.reviews.schemas import (
    AppealIn,
    AppealOut,
    ClaimOut,
    DecisionIn,
    EarlierPhotoOut,
    ItemOut,
    Position,
    QueueItemOut,
    QueueOut,
    ReversalIn,
    ReviewPhotoOut,
)
from fieldcheck.settings import Settings
from fieldcheck.storage import ObjectStorage
from fieldcheck.tasks.models import Task
from fieldcheck.web import get, post

EARLIER_PHOTOS = 6
MAX_QUEUE_LIMIT = 100


def item_detail(
    session: Session,
    storage: ObjectStorage,
    settings: Settings,
    reviewer_id: uuid.UUID,
    assignment_id: uuid.UUID,
) -> ItemOut:
    """Everything a reviewer needs to decide, on one page."""
    assignment = session.get(Assignment, assignment_id)
    if assignment is None:
        raise NotFound("no such assignment", code="assignment_not_found")
    reason = service.reason_of(assignment)
    if reason is None:
        raise NotFound("this assignment is not waiting for a review", code="not_in_review")
    _task, campaign, store = assignments.context_of(session, [assignment])[assignment.task_id]
    ttl = settings.signed_url_ttl_s
    photos = session.exec(
        select(Photo)
        .where(Photo.assignment_id == assignment_id, Photo.status != PhotoStatus.awaiting_upload.value)
        .order_by(col(Photo.created_at))
    ).all()
    earlier = session.exec(
        select(Photo, Assignment)
        .join(Assignment, col(Assignment.id) == col(Photo.assignment_id))
        .join(Task, col(Task.id) == col(Assignment.task_id))
        .where(
            Task.store_id == store.id,
            Assignment.status == AssignmentStatus.approved.value,
            Assignment.id != assignment_id,
            col(Photo.thumbnail_key).is_not(None),
        )
        .order_by(col(Assignment.decided_at).desc())
        .limit(EARLIER_PHOTOS)
    ).all()
    checks = assignments.checks_of(session, [assignment_id])[assignment_id]
    events = assignments.events_of(session, [assignment_id])[assignment_id]
    appeal = session.exec(select(Appeal).where(Appeal.assignment_id == assignment_id)).first()
    claim = session.get(ReviewClaim, assignment_id)
    mine = claim is not None and claim.reviewer_id == reviewer_id
    return ItemOut(
        assignment_id=assignment.id,
        reason=reason,
        status=assignment.status,
        campaign_title=campaign.title,
        instructions=campaign.instructions,
        store_name=store.name,
        store_address=store.address,
        store_position=Position(lat=store.lat, lon=store.lon),
        geofence_m=store.geofence_m,
        device_position=Position(lat=assignment.device_lat, lon=assignment.device_lon)
        if assignment.device_lat is not None and assignment.device_lon is not None
        else None,
        device_accuracy_m=assignment.device_accuracy_m,
        distance_m=assignment.distance_m,
        submitted_at=assignment.submitted_at,
        review_due_at=assignment.review_due_at,
        photos=[
            ReviewPhotoOut(
                id=p.id,
                url=storage.presign_download(p.storage_key, expires_s=ttl),
                thumbnail_url=storage.presign_download(p.thumbnail_key, expires_s=ttl)
                if p.thumbnail_key
                else None,
                width=p.width,
                height=p.height,
                measurements=p.measurements,
            )
            for p in photos
        ],
        checks=[
            CheckOut(
                name=c.name,
                photo_id=c.photo_id,
                outcome=c.outcome,
                value=c.value,
                threshold=c.threshold,
                explanation=c.explanation,
            )
            for c in checks
        ],
        earlier_photos_of_store=[
            EarlierPhotoOut(
                assignment_id=a.id,
                decided_at=a.decided_at,
                thumbnail_url=storage.presign_download(p.thumbnail_key, expires_s=ttl)
                if p.thumbnail_key
                else None,
                url=storage.presign_download(p.safe_key, expires_s=ttl) if p.safe_key else None,
            )
            for p, a in earlier
        ],
        worker_record=service.worker_record(session, assignment.worker_id),
        appeal_message=appeal.message if appeal else None,
        history=[
            {"at": e.at, "from": e.from_status, "to": e.to_status, "by": e.actor_type, "reason": e.reason}
            for e in events
        ],
        lease_expires_at=claim.expires_at if mine and claim else None,
    )


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
        contexts = assignments.context_of(db_session, [i.assignment for i in items])
        return QueueOut(
            items=[
                QueueItemOut(
                    assignment_id=i.assignment.id,
                    reason=i.reason,
                    waiting_since=i.waiting_since,
                    review_due_at=i.assignment.review_due_at,
                    campaign_title=contexts[i.assignment.task_id][1].title,
                    store_name=contexts[i.assignment.task_id][2].name,
                    claimed_by_me=bool(i.claim and i.claim.reviewer_id == principal.user_id),
                    lease_expires_at=i.claim.expires_at
                    if i.claim and i.claim.reviewer_id == principal.user_id
                    else None,
                )
                for i in items
            ],
            counts=counts,
        )

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
            settings,
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
