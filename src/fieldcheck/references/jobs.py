from __future__ import annotations

import uuid

from fieldcheck.jobs import JobContext, job
from fieldcheck.references.service import PROCESS_JOB, process


@job(PROCESS_JOB, queue="checks", max_retries=5, min_backoff_ms=5_000, time_limit_ms=300_000)
def process_reference(ctx: JobContext, reference_id: str) -> None:
    process(ctx.session, ctx.runtime.storage, ctx.settings, uuid.UUID(reference_id))
