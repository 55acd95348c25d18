"""The platform's money as a whole: the ledger's own invariants and the promises the domains keep
with it, checked from the data (`fieldcheck ledger verify`, and after every API test).

The ledger knows no domain, so what only the domains can say is checked here:
- every approved assignment was paid, exactly once, and nothing else was;
- each campaign's escrow holds exactly what the campaign may still have to pay;
- each task counts exactly the slots its assignments hold and the approved work that fills them,
  the counters escrow and completion are computed from.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from fieldcheck.assignments.models import RELEASED, Assignment, AssignmentStatus
from fieldcheck.assignments.transitions import REFERENCE_PREFIX, reference
from fieldcheck.campaigns import escrow
from fieldcheck.campaigns.models import Campaign
from fieldcheck.jobs import JobContext, job
from fieldcheck.ledger import service as ledger
from fieldcheck.ledger.verify import SHOWN, Report, verify
from fieldcheck.tasks import service as tasks
from fieldcheck.tasks.models import Task

log = logging.getLogger("fieldcheck.money")


VERIFY_JOB = "money.verify"


@job(VERIFY_JOB, every=timedelta(hours=1))
def verify_on_schedule(ctx: JobContext) -> None:
    """The whole check, hourly, in a read-only transaction; its result kept for monitoring
    (fieldcheck_ledger_verify_*) and the admins."""
    with ctx.runtime.db.transaction(read_only=True) as session:
        report = verify_money(session)
    if not report.ok:
        log.error("ledger verify: %d problem(s); first: %s", len(report.problems), report.problems[0])
    ledger.record_verification(ctx.session, checked=report.checked, problems=report.problems)


def verify_money(session: Session) -> Report:
    return verify(session, [approved_work_is_paid_once, escrow_holds_what_is_owed, tasks_count_their_slots])


def approved_work_is_paid_once(session: Session, report: Report) -> None:
    paid = ledger.payments_per_reference(session, REFERENCE_PREFIX)
    approved = {
        reference(i)
        for i in session.exec(
            select(Assignment.id).where(Assignment.status == AssignmentStatus.approved.value)
        ).all()
    }
    for missing in sorted(approved - set(paid))[:SHOWN]:
        report.fail(f"{missing} is approved but was never paid")
    for extra in sorted(set(paid) - approved)[:SHOWN]:
        report.fail(f"{extra} was paid but is not approved")


def escrow_holds_what_is_owed(session: Session, report: Report) -> None:
    positions = ledger.escrow_positions(session)
    slots = tasks.slots_by_campaign(session)
    campaigns = session.exec(select(Campaign).where(col(Campaign.activated_at).is_not(None))).all()
    report.checked["campaigns"] = len(campaigns)
    for campaign in campaigns:
        position = positions.get(campaign.id, ledger.EscrowPosition(0, 0, 0))
        counted = slots.get(campaign.id, tasks.Slots(0, 0, 0, 0, 0))
        owed = escrow.slots_owed(campaign, counted, position.releases) * escrow.per_slot(campaign)
        if position.held != owed:
            report.fail(
                f"campaign {campaign.id} ({campaign.status}) holds {position.held} in escrow but still owes {owed}"
            )


def tasks_count_their_slots(session: Session, report: Report) -> None:
    holding = (
        select(Assignment.task_id, func.count().label("n"))
        .where(
            col(Assignment.status).not_in([s.value for s in RELEASED]), col(Assignment.slot_freed).is_(False)
        )
        .group_by(col(Assignment.task_id))
        .subquery()
    )
    approved = (
        select(Assignment.task_id, func.count().label("n"))
        .where(Assignment.status == AssignmentStatus.approved.value)
        .group_by(col(Assignment.task_id))
        .subquery()
    )
    rows = (
        session.connection()
        .execute(
            sa_select(
                col(Task.id),
                col(Task.slots_taken),
                func.coalesce(holding.c.n, 0),
                col(Task.slots_approved),
                func.coalesce(approved.c.n, 0),
            )
            .outerjoin(holding, holding.c.task_id == col(Task.id))
            .outerjoin(approved, approved.c.task_id == col(Task.id))
            .where(
                (col(Task.slots_taken) != func.coalesce(holding.c.n, 0))
                | (col(Task.slots_approved) != func.coalesce(approved.c.n, 0))
            )
            .limit(SHOWN)
        )
        .all()
    )
    for task_id, taken, held, counted, approvals in rows:
        report.fail(
            f"task {task_id} counts {taken} slot(s) held and {counted} approved, "
            f"but its assignments hold {held} and {approvals} were approved"
        )
