from __future__ import annotations

from datetime import timedelta

from fieldcheck.auth import service
from fieldcheck.jobs import JobContext, job


@job("auth.purge_login_failures", every=timedelta(hours=1))
def purge_login_failures(ctx: JobContext) -> None:
    service.purge_login_failures(ctx.session, ctx.settings)
