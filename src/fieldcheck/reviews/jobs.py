from __future__ import annotations

from datetime import timedelta

from fieldcheck.jobs import JobContext, job
from fieldcheck.reviews import service


@job("reviews.approve_overdue", every=timedelta(minutes=5))
def approve_overdue(ctx: JobContext) -> None:
    service.approve_overdue(ctx.session, ctx.settings)


@job("reviews.finalize_rejections", every=timedelta(hours=1))
def finalize_rejections(ctx: JobContext) -> None:
    service.finalize_rejections(ctx.session, ctx.settings)
