from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, SkipValidation
from sqlmodel import Session

from fieldcheck import idempotency
from fieldcheck.assignments import service
from fieldcheck.assignments.models import AssignmentStatus
from fieldcheck.assignments.schemas import AssignmentOut, SubmitIn
from fieldcheck.assignments.views import assignments_out, photo_checks_out, statement_out, statement_page
from fieldcheck.auth.models import Role
from fieldcheck.auth.security import BEARER_SECURITY, Principal, requires
from fieldcheck.photos.schemas import PhotoChecksOut, PhotoUploadIn, PhotoUploadOut
from fieldcheck.photos.views import upload_out
from fieldcheck.ratelimit import Throttle, caller_address
from fieldcheck.settings import Settings
from fieldcheck.storage import ObjectStorage
from fieldcheck.web import DEFAULT_PAGE_LIMIT, Page, PageCursor, PageLimit, delete, get, post


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
        request: Request[Any, Any, Any],
        task_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        storage: NamedDependency[SkipValidation[ObjectStorage]],
        throttle: NamedDependency[SkipValidation[Throttle]],
    ) -> AssignmentOut:
        throttle.check("reservations", account=principal.user_id, address=caller_address(request))
        assignment = service.reserve(
            db_session, worker_id=principal.user_id, task_id=task_id, settings=settings
        )
        return assignments_out(db_session, storage, settings, [assignment])[0]


class AssignmentController(Controller):
    path = "/api/v1/assignments"
    tags = ["workers"]
    guards = [requires(Role.worker)]
    security = BEARER_SECURITY

    @get("/{assignment_id:uuid}", summary="One of my assignments: checks, decision, payment, history")
    def get_one(
        self,
        assignment_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        storage: NamedDependency[SkipValidation[ObjectStorage]],
    ) -> AssignmentOut:
        assignment = service.get_for_worker(db_session, principal.user_id, assignment_id)
        return assignments_out(db_session, storage, settings, [assignment])[0]

    @get(
        "/{assignment_id:uuid}/statement",
        summary="The written statement of reasons of a rejection (JSON; a printable page for Accept: text/html)",
        description="What was decided, by whom (the system or a person, never who), each reason with the "
        "value and threshold, how to appeal and until when; in the language of Accept-Language. 409 "
        "no_rejection for an assignment that was not rejected.",
    )
    def statement(
        self,
        request: Request[Any, Any, Any],
        assignment_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> Response[Any]:
        assignment = service.get_for_worker(db_session, principal.user_id, assignment_id)
        found = statement_out(db_session, settings, assignment)
        if "text/html" in request.headers.get("accept", ""):
            return Response(
                statement_page(found),
                media_type="text/html",
                headers={
                    "Content-Security-Policy": "default-src 'none'; style-src 'self'; frame-ancestors 'none'",
                    "X-Content-Type-Options": "nosniff",
                },
            )
        return Response(found)

    @delete("/{assignment_id:uuid}", status_code=200, summary="Cancel a reservation (frees the slot)")
    def cancel(
        self,
        assignment_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        storage: NamedDependency[SkipValidation[ObjectStorage]],
    ) -> AssignmentOut:
        assignment = service.cancel(db_session, worker_id=principal.user_id, assignment_id=assignment_id)
        return assignments_out(db_session, storage, settings, [assignment])[0]

    @post(
        "/{assignment_id:uuid}/photos",
        summary="Get an upload instruction for one photo",
        description="The phone uploads the file straight to storage: a POST form (fields, then the file as "
        "`file`) or a PUT of the raw bytes with the given headers. 409 photo_limit_reached, not_reserved, "
        "reservation_expired; 422 unsupported_photo_type, photo_too_large.",
    )
    def create_photo(
        self,
        request: Request[Any, Any, Any],
        assignment_id: FromPath[uuid.UUID],
        data: JSONBody[PhotoUploadIn],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        storage: NamedDependency[SkipValidation[ObjectStorage]],
        throttle: NamedDependency[SkipValidation[Throttle]],
    ) -> PhotoUploadOut:
        throttle.check("photo_slots", account=principal.user_id, address=caller_address(request))
        photo, upload = service.request_upload(
            db_session,
            storage,
            settings,
            worker_id=principal.user_id,
            assignment_id=assignment_id,
            content_type=data.content_type,
            size_bytes=data.size_bytes,
        )
        return upload_out(photo.id, upload)

    @post(
        "/{assignment_id:uuid}/photos/{photo_id:uuid}/uploaded",
        status_code=202,
        summary="Say a photo's upload finished: its checks start now",
        description="202 with the photo (check_status pending): the per-photo checks (file, resolution, "
        "blur, exposure, screen, EXIF, reference match, and a first look for earlier copies) run at once; "
        "GET the photo to read them. Saying it again for the same upload changes nothing; after "
        "failed_to_check it tries again. 404 photo_not_found; 409 photo_submitted, not_reserved, "
        "reservation_expired; 422 photo_not_uploaded, photo_size_mismatch, photo_too_large.",
    )
    def photo_uploaded(
        self,
        assignment_id: FromPath[uuid.UUID],
        photo_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        storage: NamedDependency[SkipValidation[ObjectStorage]],
    ) -> PhotoChecksOut:
        photo = service.photo_uploaded(
            db_session,
            storage,
            settings,
            worker_id=principal.user_id,
            assignment_id=assignment_id,
            photo_id=photo_id,
        )
        return photo_checks_out(photo, storage, settings)

    @get(
        "/{assignment_id:uuid}/photos/{photo_id:uuid}",
        summary="One of my photos with its checks (check_status: pending, checked, failed_to_check)",
    )
    def get_photo(
        self,
        assignment_id: FromPath[uuid.UUID],
        photo_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        storage: NamedDependency[SkipValidation[ObjectStorage]],
    ) -> PhotoChecksOut:
        photo = service.photo_of_worker(
            db_session, worker_id=principal.user_id, assignment_id=assignment_id, photo_id=photo_id
        )
        return photo_checks_out(photo, storage, settings)

    @delete(
        "/{assignment_id:uuid}/photos/{photo_id:uuid}",
        status_code=204,
        summary="Drop a photo not yet submitted",
    )
    def delete_photo(
        self,
        assignment_id: FromPath[uuid.UUID],
        photo_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
    ) -> None:
        service.drop_photo(
            db_session, worker_id=principal.user_id, assignment_id=assignment_id, photo_id=photo_id
        )

    @post(
        "/{assignment_id:uuid}/submit",
        status_code=202,
        summary="Submit the photos with the phone's position (Idempotency-Key required)",
        description="202: the checks run in the background; GET the assignment to follow them. A retry with "
        "the same Idempotency-Key and body returns the first answer; the same key with another body is 409.",
    )
    def submit(
        self,
        request: Request[Any, Any, Any],
        assignment_id: FromPath[uuid.UUID],
        data: JSONBody[SubmitIn],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        storage: NamedDependency[SkipValidation[ObjectStorage]],
        throttle: NamedDependency[SkipValidation[Throttle]],
        idempotency_key: Annotated[str | None, HeaderParameter(name=idempotency.HEADER)] = None,
    ) -> Response[AssignmentOut]:
        key = idempotency.require_key(idempotency_key)
        fingerprint = idempotency.fingerprint("POST", request.url.path, data.model_dump(mode="json"))
        replay = idempotency.claim(db_session, owner_id=principal.user_id, key=key, request_hash=fingerprint)
        if replay is not None:  # a retry of one already answered: never counted against the limit
            return Response(AssignmentOut.model_validate(replay.body), status_code=replay.status_code)
        throttle.check("submissions", account=principal.user_id, address=caller_address(request))
        assignment = service.submit(
            db_session, storage, settings, worker_id=principal.user_id, assignment_id=assignment_id, data=data
        )
        answer = assignments_out(db_session, storage, settings, [assignment])[0]
        idempotency.record(
            db_session,
            owner_id=principal.user_id,
            key=key,
            status_code=202,
            body=answer.model_dump(mode="json"),
        )
        return Response(answer, status_code=202)


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
        settings: NamedDependency[Settings],
        storage: NamedDependency[SkipValidation[ObjectStorage]],
        status: FromQuery[AssignmentStatus | None] = None,
        limit: PageLimit = DEFAULT_PAGE_LIMIT,
        cursor: PageCursor = None,
    ) -> Page[AssignmentOut]:
        assignments, next_cursor = service.list_for_worker(
            db_session, principal.user_id, status=status.value if status else None, limit=limit, cursor=cursor
        )
        return Page[AssignmentOut](
            items=assignments_out(db_session, storage, settings, assignments), next_cursor=next_cursor
        )
