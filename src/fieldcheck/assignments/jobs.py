from __future__ import annotations

import uuid
from datetime import timedelta

from fieldcheck.assignments import checking, service
from fieldcheck.jobs import JobContext, job


# The checks have their own queue: workers for it can be scaled apart from the rest.
@job(service.CHECK_SUBMISSION_JOB, queue="checks", max_retries=8, min_backoff_ms=5_000, time_limit_ms=900_000)
def check_submission(ctx: JobContext, assignment_id: str) -> None:
    checking.check_submission(ctx, ctx.runtime.hash_index, uuid.UUID(assignment_id))


# The instant checks of one uploaded photo: on the checks queue too, with few retries (the worker
# waits in the store; a photo whose checks fail is measured again at submission). They span about
# 15 s (1, 2, 4, 8 s apart): a database or broker gone for a few seconds does not end them (the
# fleet benchmark's 4 s cuts dead-lettered them with 2 retries half a second apart).
@job(service.CHECK_PHOTO_JOB, queue="checks", max_retries=4, min_backoff_ms=1_000, time_limit_ms=300_000)
def check_photo(ctx: JobContext, photo_id: str) -> None:
    checking.check_photo_early(ctx, uuid.UUID(photo_id))


@job("assignments.sweep_unsubmitted_photos", every=timedelta(hours=1))
def sweep_unsubmitted_photos(ctx: JobContext) -> None:
    service.sweep_unsubmitted_photos(ctx.session, ctx.settings)


@job("assignments.expire_reservations", every=timedelta(minutes=1))
def expire_reservations(ctx: JobContext) -> None:
    service.expire_overdue(ctx.session)
