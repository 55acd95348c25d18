from __future__ import annotations

import uuid

from fieldcheck.jobs import JobContext, job
from fieldcheck.webhooks import service


# The broker retries only when the job itself breaks (the database is away); the receiver's
# failures are recorded and retried by the job (see service.attempt_delivery).
@job(service.DELIVER_JOB, queue="webhooks", max_retries=5, min_backoff_ms=5_000)
def deliver(ctx: JobContext, delivery_id: str, retry: bool = True) -> None:
    service.attempt_delivery(ctx, uuid.UUID(delivery_id), retry=retry)
