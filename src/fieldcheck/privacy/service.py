"""Closing a worker's account (GDPR Art. 17, within what the ledger must keep).

The account is pseudonymised, not deleted: its id stays on assignments, decisions and ledger rows
(which the client's audit and the books need), while whatever names the person goes: sign-in,
e-mail address, display name and bank details. Reservations held are given back, work already
delivered is still decided and paid, and the available balance is paid out to the bank account on
file when it reaches the minimum; what is earned later stays on the ledger under the account's id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlmodel import Session, select

from fieldcheck.assignments import service as assignments
from fieldcheck.assignments.models import Assignment, AssignmentStatus
from fieldcheck.auth.models import LoginFailure, Role, User
from fieldcheck.auth.security import Passwords
from fieldcheck.auth.service import WrongPassword, refuse_while_throttled, revoke_all_tokens
from fieldcheck.db import utcnow
from fieldcheck.errors import NotFound, field_error
from fieldcheck.i18n import _, text
from fieldcheck.ledger import service as ledger
from fieldcheck.privacy.export import expire_for_closed_account
from fieldcheck.settings import Settings

CLOSED_DOMAIN = "closed.invalid"  # RFC 2606: never a real mailbox
CLOSED_NAME = "Closed account"


@dataclass(frozen=True)
class Closed:
    cancelled_reservations: int
    payouts: list[tuple[str, int]]  # (currency, amount) paid out at closing


def close_account(
    session: Session,
    passwords: Passwords,
    settings: Settings,
    *,
    user_id: uuid.UUID,
    password: str,
    address: str,
) -> Closed:
    """Close the signed-in worker's account, once (the row lock decides); the password is checked
    like a sign-in (same throttle)."""
    user = session.exec(select(User).where(User.id == user_id).with_for_update()).first()
    if user is None or not user.is_active or user.closed_at is not None or user.role != Role.worker.value:
        raise NotFound(text(_("this account no longer exists")), code="user_not_found")
    now = utcnow()
    refuse_while_throttled(session, settings, email=user.email, address=address[:64], now=now)
    if not passwords.verify(user.password_hash, password):
        session.add(LoginFailure(email=user.email, address=address[:64], at=now))
        raise WrongPassword(
            text(_("the password is wrong")),
            errors=[field_error("password", text(_("does not match this account's password")))],
        )
    # Locked: a submission racing the closing waits, then finds its reservation given back.
    held = session.exec(
        select(Assignment.id)
        .where(Assignment.worker_id == user_id, Assignment.status == AssignmentStatus.reserved.value)
        .with_for_update()
    ).all()
    for assignment_id in held:
        assignments.cancel(session, worker_id=user_id, assignment_id=assignment_id)
    paid = ledger.settle_closed_worker(session, settings, user_id)
    user.email = f"closed-{user.id.hex}@{CLOSED_DOMAIN}"
    user.display_name = CLOSED_NAME
    user.password_hash = ""  # verifies nothing
    user.is_active = False
    user.closed_at = now
    session.add(user)
    session.flush()
    revoke_all_tokens(session, user.id)
    expire_for_closed_account(session, user.id)
    return Closed(cancelled_reservations=len(held), payouts=paid)
