from __future__ import annotations

import uuid
from datetime import timedelta

from fieldcheck.exports import service
from fieldcheck.jobs import JobContext, job


# Exports have their own queue: a long ZIP never delays photo checks or payouts.
@job(service.BUILD_JOB, queue="exports", max_retries=service.MAX_ATTEMPTS, time_limit_ms=4 * 3_600_000)
def build_export(ctx: JobContext, export_id: str) -> None:
    service.build(ctx, uuid.UUID(export_id))


@job("exports.fail_abandoned", every=timedelta(minutes=10))
def fail_abandoned_exports(ctx: JobContext) -> None:
    service.fail_abandoned(ctx.runtime.db)


@job("exports.remove_expired", every=timedelta(hours=1))
def remove_expired_exports(ctx: JobContext) -> None:
    # Its own short transactions (see remove_expired); safe to run twice or concurrently.
    service.remove_expired(ctx.runtime.db, ctx.runtime.storage)
