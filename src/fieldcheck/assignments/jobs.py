from __future__ import annotations

from datetime import timedelta

from fieldcheck.assignments import service
from fieldcheck.jobs import JobContext, job


@job("assignments.expire_reservations", every=timedelta(minutes=1))
def expire_reservations(ctx: JobContext) -> None:
    service.expire_overdue(ctx.session, ctx.settings)
