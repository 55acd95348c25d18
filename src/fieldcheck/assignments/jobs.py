from __future__ import annotations

import uuid
from datetime import timedelta

from fieldcheck.assignments import checking, service
from fieldcheck.jobs import JobContext, job


# The checks have their own queue: workers for it can be scaled apart from the rest.
@job(service.CHECK_SUBMISSION_JOB, queue="checks", max_retries=8, min_backoff_ms=5_000, time_limit_ms=900_000)
def check_submission(ctx: JobContext, assignment_id: str) -> None:
    checking.check_submission(ctx, ctx.runtime.hash_index, uuid.UUID(assignment_id))


@job("assignments.expire_reservations", every=timedelta(minutes=1))
def expire_reservations(ctx: JobContext) -> None:
    service.expire_overdue(ctx.session)
