"""Accounts: sign-up, sign-in with throttling, passwords, revocation, and accounts made by admins."""

from __future__ import annotations

import contextlib
import math
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from fieldcheck.auth.models import LoginFailure, RevokedToken, Role, User
from fieldcheck.auth.security import Passwords, Principal, Tokens, check_password_policy
from fieldcheck.db import insert_ignore, utcnow
from fieldcheck.errors import (
    Conflict,
    NotFound,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
    field_error,
)
from fieldcheck.i18n import _, text
from fieldcheck.organizations.models import Organization
from fieldcheck.pagination import paginate
from fieldcheck.settings import Settings


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"


class WrongPassword(Unprocessable):
    code = "wrong_password"


class AccountCloser(Protocol):
    """Closes a worker's account (fieldcheck.privacy, given by the app: it reaches reservations and
    the ledger, which auth does not know)."""

    def __call__(
        self,
        session: Session,
        passwords: Passwords,
        settings: Settings,
        *,
        user_id: uuid.UUID,
        password: str,
        address: str,
    ) -> object: ...


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
            text(_("a client account needs the organization it acts for")),
            code="organization_required",
            errors=[field_error("organization_id", text(_("required for role client")))],
        )
    if role is not Role.client and organization_id is not None:
        raise Unprocessable(
            text(_("only client accounts belong to an organization, not {role} accounts"), role=role.value),
            code="organization_not_allowed",
            errors=[field_error("organization_id", text(_("only for role client")))],
        )
    if organization_id is not None and session.get(Organization, organization_id) is None:
        raise Unprocessable(
            text(_("no organization has this id")),
            code="unknown_organization",
            errors=[field_error("organization_id", text(_("unknown organization")))],
        )
    user = User(
        email=email,
        password_hash=passwords.hash(password),
        display_name=display_name or email.split("@", 1)[0],
        role=role.value,
        organization_id=organization_id,
    )
    try:
        # The unique index decides, not a prior lookup: two sign-ups racing for one address
        # cannot both win. Added inside the savepoint, so that a refusal leaves nothing pending.
        with session.begin_nested():
            session.add(user)
            session.flush()
    except IntegrityError:
        raise Conflict(
            text(_("an account with this e-mail address already exists")), code="email_taken"
        ) from None
    return user


def register_worker(
    session: Session, passwords: Passwords, *, email: str, password: str, display_name: str
) -> None:
    """Sign up; says nothing about whether the address already had an account.

    Both ways cost the same (the password is hashed before the insert is tried) and answer the
    same, so sign-up cannot be used to learn who works here. The owner of a taken address is not
    touched: their account and password stay as they were.
    """
    with contextlib.suppress(Conflict):  # the address is taken: answered exactly like a new one
        create_user(
            session, passwords, email=email, password=password, role=Role.worker, display_name=display_name
        )


def authenticate(
    session: Session,
    passwords: Passwords,
    settings: Settings,
    *,
    email: str,
    password: str,
    address: str,
) -> User:
    """Check the password; failures are recorded (the caller commits them) and slow down guessing.

    Nothing locks an account: waits grow per (account, address) and per address, so somebody
    guessing from one place cannot shut the owner out from another. The right password from an
    address that has not failed always works, unless that address is itself guessing at many
    accounts.
    """
    email = normalize_email(email)
    address = address[:64]
    now = utcnow()
    refuse_while_throttled(session, settings, email=email, address=address, now=now)
    user = session.exec(select(User).where(User.email == email)).first()
    valid = passwords.verify(user.password_hash if user else None, password)
    if user is None or not valid or not user.is_active:
        session.add(LoginFailure(email=email[:320], address=address, at=now))
        raise InvalidCredentials(text(_("the e-mail address or the password is wrong")))
    # Only this address's failures on this account: a success elsewhere must not reset the count
    # of somebody guessing from here, and one's own account must not reset an address's count.
    session.exec(
        delete(LoginFailure).where(col(LoginFailure.email) == email, col(LoginFailure.address) == address)
    )
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash(password)
        session.add(user)
    return user


def throttle_delay(failures: int, free: int, settings: Settings) -> float:
    """Seconds to wait after the last of `failures`: none for the first `free`, then doubling."""
    if failures < free:
        return 0.0
    return float(min(settings.login_delay_max_s, settings.login_delay_base_s * 2 ** min(failures - free, 30)))


def refuse_while_throttled(
    session: Session, settings: Settings, *, email: str, address: str, now: datetime
) -> None:
    since = now - timedelta(seconds=settings.login_failure_window_s)
    recent = col(LoginFailure.at) > since
    pair, pair_last = session.exec(
        select(func.count(), func.max(LoginFailure.at)).where(
            col(LoginFailure.email) == email, col(LoginFailure.address) == address, recent
        )
    ).one()
    everywhere = 0
    if pair:
        everywhere = session.exec(select(func.count()).where(col(LoginFailure.email) == email, recent)).one()
    # An account under attack from many addresses: each address that has failed on it waits
    # after one failure. The owner, from an address that has not failed, is never slowed down.
    free = 1 if everywhere >= settings.login_account_alert_failures else settings.login_free_failures
    wait_until = pair_last + timedelta(seconds=throttle_delay(pair, free, settings)) if pair else now
    from_address, address_last = session.exec(
        select(func.count(), func.max(LoginFailure.at)).where(col(LoginFailure.address) == address, recent)
    ).one()
    if from_address:
        delay = throttle_delay(from_address, settings.login_free_failures_per_address, settings)
        wait_until = max(wait_until, address_last + timedelta(seconds=delay))
    if wait_until > now:
        retry_after = max(1, math.ceil((wait_until - now).total_seconds()))
        raise TooManyRequests(
            text(_("too many failed sign-ins from here; try again in {wait} seconds"), wait=retry_after),
            code="login_throttled",
            retry_after_s=retry_after,
        )


def change_password(
    session: Session,
    passwords: Passwords,
    settings: Settings,
    *,
    user_id: uuid.UUID,
    current_password: str,
    new_password: str,
    address: str,
) -> User:
    """A new password; every token and console sign-in of the account stops working.

    The current password is checked like a sign-in (same throttle), so a stolen token cannot be
    used to guess it.
    """
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise NotFound(text(_("this account no longer exists")), code="user_not_found")
    now = utcnow()
    refuse_while_throttled(session, settings, email=user.email, address=address[:64], now=now)
    if not passwords.verify(user.password_hash, current_password):
        session.add(LoginFailure(email=user.email, address=address[:64], at=now))
        raise WrongPassword(
            text(_("the current password is wrong")),
            errors=[field_error("current_password", text(_("does not match this account's password")))],
        )
    check_password_policy(new_password, email=user.email)
    if new_password == current_password:
        raise Unprocessable(
            text(_("the new password is the current one")),
            code="same_password",
            errors=[field_error("new_password", text(_("must differ from the current password")))],
        )
    user.password_hash = passwords.hash(new_password)
    session.add(user)
    revoke_all_tokens(session, user.id)
    session.refresh(user)
    return user


def revoke_all_tokens(session: Session, user_id: uuid.UUID) -> None:
    # In SQL, so that two revocations at once both count.
    session.exec(
        update(User).where(col(User.id) == user_id).values(token_version=col(User.token_version) + 1)
    )


def revoke_token(session: Session, principal: Principal) -> None:
    """Sign out: this token stops working, the account's other tokens do not."""
    if principal.token_id is None or principal.expires_at is None:
        return
    insert_ignore(
        session,
        RevokedToken,
        token_id=principal.token_id,
        user_id=principal.user_id,
        expires_at=datetime.fromtimestamp(principal.expires_at, UTC),
    )


def set_active(session: Session, *, actor: Principal, user_id: uuid.UUID, active: bool) -> User:
    """Deactivate (every token and console sign-in stops at once) or reactivate an account.

    Reactivation does not bring old tokens back: the person signs in again.
    """
    if user_id == actor.user_id:
        raise Conflict(text(_("you cannot deactivate or reactivate your own account")), code="own_account")
    user = session.exec(select(User).where(User.id == user_id).with_for_update()).first()
    if user is None:
        raise NotFound(text(_("no account has this id")), code="user_not_found")
    if user.closed_at is not None:
        raise Conflict(
            text(_("this account was closed by its owner; it cannot be reactivated")), code="account_closed"
        )
    if user.is_active != active:
        user.is_active = active
        session.add(user)
        if not active:
            session.flush()
            revoke_all_tokens(session, user.id)
    session.flush()
    session.refresh(user)
    return user


def list_users(
    session: Session,
    *,
    role: Role | None,
    email: str | None,
    active: bool | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[User], str | None]:
    query = select(User)
    if role is not None:
        query = query.where(User.role == role.value)
    if email:
        query = query.where(col(User.email).contains(normalize_email(email), autoescape=True))
    if active is not None:
        query = query.where(User.is_active == active)
    return paginate(
        session, query, time_column=User.created_at, id_column=User.id, limit=limit, cursor=cursor
    )


def users_by_id(session: Session, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, User]:
    """These accounts, read in one query (those that exist)."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    return {user.id: user for user in session.exec(select(User).where(col(User.id).in_(wanted))).all()}


def issue_token(tokens: Tokens, user: User) -> str:
    return tokens.issue(
        user_id=user.id, role=user.role, organization_id=user.organization_id, version=user.token_version
    )


def get_user(session: Session, principal: Principal) -> User:
    user = session.get(User, principal.user_id)
    if user is None or not user.is_active:
        raise NotFound(text(_("this account no longer exists")), code="user_not_found")
    return user


def purge_expired(session: Session, settings: Settings) -> None:
    """Failed sign-ins past their window, and revoked tokens past their expiry."""
    now = utcnow()
    cutoff = now - timedelta(seconds=settings.login_failure_window_s)
    session.exec(delete(LoginFailure).where(col(LoginFailure.at) < cutoff))
    session.exec(delete(RevokedToken).where(col(RevokedToken.expires_at) < now))
