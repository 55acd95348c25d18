from __future__ import annotations

from datetime import timedelta

from fieldcheck.jobs import JobContext, job
from fieldcheck.ledger import payouts


@job("ledger.send_payouts", every=timedelta(minutes=10))
def send_payouts(ctx: JobContext) -> None:
    # Its own transactions, step by step (see send_payouts); safe to run twice or concurrently.
    payouts.send_payouts(ctx.runtime.db, ctx.runtime.payout_provider)
