from __future__ import annotations

from datetime import timedelta

from fieldcheck.console import sessions
from fieldcheck.jobs import JobContext, job


@job("console.remove_expired_sessions", every=timedelta(hours=1))
def remove_expired_sessions(ctx: JobContext) -> None:
    sessions.end_all_expired(ctx.session)
