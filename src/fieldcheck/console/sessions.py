"""Console sign-in: a server-side session behind an HttpOnly cookie, and CSRF tokens.

The cookie is a random 256-bit token; the database keeps its SHA-256, so a leaked table signs
nobody in. Every state-changing request carries the session's CSRF token (a hidden form field,
or a header from the console's script) and is refused without it; the sign-in form, which has
no session yet, uses a double-submit cookie. Signing out deletes the session row; a new password
or a deactivation of the account ends every session (they carry the account's token version).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete
from sqlmodel import Session, col, select

from fieldcheck.auth.models import Role, User
from fieldcheck.auth.security import Principal
from fieldcheck.console.models import ConsoleSession
from fieldcheck.db import utcnow
from fieldcheck.settings import Settings

SESSION_COOKIE = "fieldcheck_console"
LOGIN_CSRF_COOKIE = "fieldcheck_console_login"
COOKIE_PATH = "/console"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
# Who may use the console, and where each lands after signing in.
HOME_OF = {Role.reviewer: "/console/review", Role.admin: "/console/admin", Role.client: "/console/campaigns"}


@dataclass(frozen=True)
class Viewer:
    """The signed-in person of a console request."""

    user: User
    csrf_token: str

    @property
    def role(self) -> Role:
        return Role(self.user.role)

    @property
    def principal(self) -> Principal:
        return Principal(user_id=self.user.id, role=self.role, organization_id=self.user.organization_id)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def start(session: Session, user: User, settings: Settings, *, user_agent: str | None) -> str:
    """A new session for this user; returns the cookie's token."""
    token = new_token()
    now = utcnow()
    session.add(
        ConsoleSession(
            token_hash=_hash(token),
            user_id=user.id,
            csrf_token=new_token(),
            created_at=now,
            expires_at=now + timedelta(hours=settings.console_session_hours),
            token_version=user.token_version,
            user_agent=(user_agent or "")[:300] or None,
        )
    )
    return token


def load(session: Session, token: str | None) -> Viewer | None:
    if not token or len(token) > 100:
        return None
    row = session.exec(
        select(ConsoleSession, User)
        .join(User, col(User.id) == col(ConsoleSession.user_id))
        .where(ConsoleSession.token_hash == _hash(token), col(ConsoleSession.expires_at) > utcnow())
    ).first()
    if row is None:
        return None
    console_session, user = row
    if not user.is_active or Role(user.role) not in HOME_OF:
        return None
    if console_session.token_version != user.token_version:  # a new password since this sign-in
        return None
    return Viewer(user=user, csrf_token=console_session.csrf_token)


def end(session: Session, token: str | None) -> None:
    if token:
        session.exec(delete(ConsoleSession).where(col(ConsoleSession.token_hash) == _hash(token)))


def end_all_expired(session: Session) -> int:
    result = session.exec(delete(ConsoleSession).where(col(ConsoleSession.expires_at) <= utcnow()))
    return int(result.rowcount or 0)


def csrf_matches(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


def cookie_options(settings: Settings) -> dict[str, Any]:
    secure = settings.console_secure_cookies
    if secure is None:
        secure = settings.base_url.startswith("https://")
    return {"path": COOKIE_PATH, "httponly": True, "samesite": "lax", "secure": secure}
