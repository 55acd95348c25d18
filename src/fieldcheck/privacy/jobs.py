from __future__ import annotations

import uuid
from datetime import timedelta

from fieldcheck.jobs import JobContext, job
from fieldcheck.privacy import export, retention


# On the exports queue: a worker's ZIP never delays photo checks or payouts.
@job(export.BUILD_JOB, queue="exports", max_retries=export.MAX_ATTEMPTS, time_limit_ms=2 * 3_600_000)
def build_data_export(ctx: JobContext, export_id: str) -> None:
    export.build(ctx, uuid.UUID(export_id))


@job("privacy.fail_abandoned_data_exports", every=timedelta(minutes=10))
def fail_abandoned_data_exports(ctx: JobContext) -> None:
    export.fail_abandoned(ctx.runtime.db)


@job("privacy.remove_expired_data_exports", every=timedelta(hours=1))
def remove_expired_data_exports(ctx: JobContext) -> None:
    # Its own short transactions (see remove_expired); safe to run twice or concurrently.
    export.remove_expired(ctx.runtime.db, ctx.runtime.storage)


@job("privacy.remove_originals", every=timedelta(hours=1))
def remove_originals(ctx: JobContext) -> None:
    # Its own short transactions, a batch at a time (see retention); safe to run twice or concurrently.
    retention.remove_originals(ctx.runtime.db, ctx.runtime.storage, ctx.settings)
