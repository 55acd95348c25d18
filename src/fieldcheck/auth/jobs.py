from __future__ import annotations

from datetime import timedelta

from fieldcheck.auth import service
from fieldcheck.jobs import JobContext, job
from fieldcheck.ratelimit import purge_finished_windows


@job("auth.purge_login_failures", every=timedelta(hours=1))
def purge_login_failures(ctx: JobContext) -> None:
    """Failed sign-ins past their window, revoked tokens past expiry, finished rate-limit windows."""
    service.purge_expired(ctx.session, ctx.settings)
    purge_finished_windows(ctx.session)
