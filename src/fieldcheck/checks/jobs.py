from __future__ import annotations

import uuid

from fieldcheck.checks import service
from fieldcheck.jobs import JobContext, job


@job("checks.check_submission", queue="checks", max_retries=8, min_backoff_ms=5_000, time_limit_ms=900_000)
def check_submission(ctx: JobContext, assignment_id: str) -> None:
    service.check_submission(ctx, ctx.runtime.hash_index, uuid.UUID(assignment_id))
