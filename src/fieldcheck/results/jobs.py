from __future__ import annotations

import uuid

from fieldcheck.assignments.transitions import ANNOUNCE_DECISION_JOB
from fieldcheck.jobs import JobContext, job
from fieldcheck.results import events


@job(ANNOUNCE_DECISION_JOB, queue="webhooks")
def announce_decision(ctx: JobContext, event_id: str) -> None:
    events.announce_decision(ctx.session, uuid.UUID(event_id))
