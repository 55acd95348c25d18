from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, Parameter
from sqlmodel import Session

from fieldcheck.assignments import service
from fieldcheck.assignments.models import Assignment, AssignmentEvent, AssignmentStatus
from fieldcheck.assignments.schemas import AssignmentEventOut, AssignmentOut
from fieldcheck.auth.models import Role
from fieldcheck.auth.security import BEARER_SECURITY, Principal, requires
from fieldcheck.settings import Settings
from fieldcheck.tasks.schemas import StoreSummary
from fieldcheck.web import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, Page, delete, get, post


def event_out(event: AssignmentEvent) -> AssignmentEventOut:
    # Workers see whether a person or the system acted, never who the person is.
    return AssignmentEventOut(
        at=event.at,
        from_status=event.from_status,
        to_status=event.to_status,
        by=event.actor_type,
        reason=event.reason,
    )


def assignments_out(session: Session, assignments: list[Assignment]) -> list[AssignmentOut]:
    contexts = service.context_of(session, assignments)
    events = service.events_of(session, [a.id for a in assignments])
    items = []
    for assignment in assignments:
        _task, campaign, store = contexts[assignment.task_id]
        items.append(
            AssignmentOut(
                id=assignment.id,
                task_id=assignment.task_id,
                campaign_id=assignment.campaign_id,
                status=assignment.status,
                title=campaign.title,
                instructions=campaign.instructions,
                store=StoreSummary(name=store.name, address=store.address, lat=store.lat, lon=store.lon),
                reward_cents=campaign.reward_cents,
                currency=campaign.currency,
                created_at=assignment.created_at,
                expires_at=assignment.expires_at,
                submitted_at=assignment.submitted_at,
                decided_at=assignment.decided_at,
                history=[event_out(e) for e in events[assignment.id]],
            )
        )
    return items


class ReservationController(Controller):
    path = "/api/v1/tasks/{task_id:uuid}/reservations"
    tags = ["workers"]
    guards = [requires(Role.worker)]
    security = BEARER_SECURITY

    @post(
        "/",
        summary="Reserve a slot of the task",
        description="409 no_slot_left, already_reserved, reservation_limit_reached or task_not_available.",
    )
    def reserve(
        self,
        task_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> AssignmentOut:
        assignment = service.reserve(
            db_session, worker_id=principal.user_id, task_id=task_id, settings=settings
        )
        return assignments_out(db_session, [assignment])[0]


class AssignmentController(Controller):
    path = "/api/v1/assignments"
    tags = ["workers"]
    guards = [requires(Role.worker)]
    security = BEARER_SECURITY

    @get("/{assignment_id:uuid}", summary="One of my assignments, with its history")
    def get_one(
        self,
        assignment_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
    ) -> AssignmentOut:
        assignment = service.get_for_worker(db_session, principal.user_id, assignment_id)
        return assignments_out(db_session, [assignment])[0]

    @delete("/{assignment_id:uuid}", status_code=200, summary="Cancel a reservation (frees the slot)")
    def cancel(
        self,
        assignment_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
    ) -> AssignmentOut:
        assignment = service.cancel(db_session, worker_id=principal.user_id, assignment_id=assignment_id)
        return assignments_out(db_session, [assignment])[0]


class MyAssignmentController(Controller):
    path = "/api/v1/me/assignments"
    tags = ["workers"]
    guards = [requires(Role.worker)]
    security = BEARER_SECURITY

    @get("/", summary="My assignments, newest first")
    def list_mine(
        self,
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        status: FromQuery[AssignmentStatus | None] = None,
        limit: Annotated[int, Parameter(ge=1, le=MAX_PAGE_LIMIT)] = DEFAULT_PAGE_LIMIT,
        cursor: Annotated[str | None, Parameter(max_length=500)] = None,
    ) -> Page[AssignmentOut]:
        assignments, next_cursor = service.list_for_worker(
            db_session, principal.user_id, status=status.value if status else None, limit=limit, cursor=cursor
        )
        return Page[AssignmentOut](items=assignments_out(db_session, assignments), next_cursor=next_cursor)
