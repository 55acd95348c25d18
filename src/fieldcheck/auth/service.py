"""Accounts: sign-up, sign-in with throttling, and accounts made by admins or the CLI."""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from fieldcheck.auth.models import LoginFailure, Role, User
from fieldcheck.auth.security import Passwords, Principal, Tokens, check_password_policy
from fieldcheck.db import utcnow
from fieldcheck.errors import Conflict, NotFound, TooManyRequests, Unauthorized, Unprocessable
from fieldcheck.organizations.models import Organization
from fieldcheck.settings import Settings


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"


def normalize_email(email: str) -> str:
    return email.strip().lower()


def create_user(
    session: Session,
    passwords: Passwords,
    *,
    email: str,
    password: str,
    role: Role,
    display_name: str | None = None,
    organization_id: uuid.UUID | None = None,
) -> User:
    email = normalize_email(email)
    check_password_policy(password, email=email)
    if role is Role.client and organization_id is None:
        raise Unprocessable(
            "a client account needs the organization it acts for",
            code="organization_required",
            errors=[{"field": "organization_id", "message": "required for role client", "source": "body"}],
        )
    if role is not Role.client and organization_id is not None:
        raise Unprocessable(
            f"only client accounts belong to an organization, not {role.value} accounts",
            code="organization_not_allowed",
            errors=[{"field": "organization_id", "message": "only for role client", "source": "body"}],
        )
    if organization_id is not None and session.get(Organization, organization_id) is None:
        raise Unprocessable(
            "no organization has this id",
            code="unknown_organization",
            errors=[{"field": "organization_id", "message": "unknown organization", "source": "body"}],
        )
    user = User(
        email=email,
        password_hash=passwords.hash(password),
        display_name=display_name or email.split("@", 1)[0],
        role=role.value,
        organization_id=organization_id,
    )
    session.add(user)
    try:
        # The unique index decides, not a prior lookup: two sign-ups racing for one address
        # cannot both win.
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict("an account with this e-mail address already exists", code="email_taken") from None
    return user


def authenticate(
    session: Session,
    passwords: Passwords,
    settings: Settings,
    *,
    email: str,
    password: str,
    address: str,
) -> User:
    """Check the password; failures are recorded (the caller commits them) and throttled."""
    email = normalize_email(email)
    now = utcnow()
    window = timedelta(seconds=settings.login_failure_window_s)
    _refuse_when_throttled(
        session, LoginFailure.email == email, settings.login_max_failures_per_account, now, window
    )
    _refuse_when_throttled(
        session, LoginFailure.address == address, settings.login_max_failures_per_address, now, window
    )
    user = session.exec(select(User).where(User.email == email)).first()
    valid = passwords.verify(user.password_hash if user else None, password)
    if user is None or not valid or not user.is_active:
        session.add(LoginFailure(email=email[:320], address=address[:64], at=now))
        raise InvalidCredentials("the e-mail address or the password is wrong")
    session.exec(delete(LoginFailure).where(col(LoginFailure.email) == email))
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash(password)
        session.add(user)
    return user


def _refuse_when_throttled(
    session: Session, condition: object, limit: int, now: datetime, window: timedelta
) -> None:
    query = select(func.count(), func.min(LoginFailure.at)).where(
        condition,  # type: ignore[arg-type]
        col(LoginFailure.at) > now - window,
    )
    count, oldest = session.exec(query).one()
    if count >= limit:
        retry_after = max(1, math.ceil((oldest + window - now).total_seconds())) if oldest else 60
        raise TooManyRequests(
            "too many failed sign-ins; wait before trying again",
            code="login_throttled",
            retry_after_s=retry_after,
        )


def issue_token(tokens: Tokens, user: User) -> str:
    return tokens.issue(user_id=user.id, role=user.role, organization_id=user.organization_id)


def get_user(session: Session, principal: Principal) -> User:
    user = session.get(User, principal.user_id)
    if user is None or not user.is_active:
        raise NotFound("this account no longer exists", code="user_not_found")
    return user


def purge_login_failures(session: Session, settings: Settings) -> None:
    cutoff = utcnow() - timedelta(seconds=settings.login_failure_window_s)
    session.exec(delete(LoginFailure).where(col(LoginFailure.at) < cutoff))
