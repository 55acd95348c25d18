"""Passwords (argon2id), bearer tokens (JWT) and the role guards every route uses."""

from __future__ import annotations

import functools
import math
import secrets
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import jwt
from argon2 import PasswordHasher as Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send
from sqlalchemy import false
from sqlmodel import select

from fieldcheck.auth.models import RevokedToken, Role, User
from fieldcheck.db import Database
from fieldcheck.errors import Forbidden, Unauthorized, Unprocessable, field_error
from fieldcheck.i18n import Text, _, text
from fieldcheck.settings import Settings

# OpenAPI: routes behind a guard declare that they take the bearer token.
BEARER_SECURITY: list[dict[str, list[str]]] = [{"BearerToken": []}]
TOKEN_ALGORITHM = "HS256"
TOKEN_ISSUER = "fieldcheck"
TOKEN_AUDIENCE = "fieldcheck-api"
MIN_PASSWORD_LENGTH = 10
VERIFIED_TOKEN_CACHE = 8192
MAX_PASSWORD_LENGTH = 256
MIN_DISTINCT_CHARACTERS = 5
# The most used passwords that pass the length rule (from public breach corpora).
COMMON_PASSWORDS = frozenset(
    {
        "1234567890",
        "12345678910",
        "123456789a",
        "0123456789",
        "1q2w3e4r5t",
        "qwertyuiop",
        "password12",
        "password123",
        "password1234",
        "passw0rd123",
        "iloveyou12",
        "qwerty1234",
        "1qaz2wsx3edc",
        "abcdefghij",
        "abc1234567",
        "letmein123",
        "welcome123",
        "football12",
        "baseball12",
        "superman12",
        "monkey1234",
        "dragon1234",
        "sunshine12",
        "princess12",
        "azertyuiop",
        "motdepasse",
        "motdepasse1",
        "changeme123",
        "administrator",
        "qwertyuiop1",
    }
)


@dataclass(frozen=True)
class Principal:
    """Who is calling, as the bearer token says."""

    user_id: uuid.UUID
    role: Role
    organization_id: uuid.UUID | None
    # Of the bearer token (none for a console session): what signing out and revocation act on.
    token_id: str | None = None
    token_version: int = 0
    expires_at: float | None = None

    def require_organization(self) -> uuid.UUID:
        if self.organization_id is None:
            raise Forbidden(text(_("this account does not act for an organization")), code="no_organization")
        return self.organization_id


class Passwords:
    def __init__(self, settings: Settings) -> None:
        self._hasher = Argon2Hasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
            type=Type.ID,
        )
        # Unknown e-mails are verified against this, so both paths take the same time.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._dummy_hash, password) and bool(password_hash)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)


def check_password_policy(password: str, *, email: str) -> None:
    problems: list[Text] = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(text(_("use at least {count} characters"), count=MIN_PASSWORD_LENGTH))
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(text(_("use at most {count} characters"), count=MAX_PASSWORD_LENGTH))
    if len(set(password)) < MIN_DISTINCT_CHARACTERS:
        problems.append(text(_("use at least {count} different characters"), count=MIN_DISTINCT_CHARACTERS))
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS:
        problems.append(text(_("this password is among the most common ones")))
    local_part = email.split("@", 1)[0].lower()
    if len(local_part) >= 4 and local_part in lowered:
        problems.append(text(_("do not build the password from your e-mail address")))
    if problems:
        raise Unprocessable(
            text(_("The password is too weak: {problems}."), problems=_joined(problems)),
            code="weak_password",
            errors=[field_error("password", p) for p in problems],
        )


def _joined(parts: list[Text]) -> Text:
    """Texts one after the other, separated by semicolons (each rendered in the reader's language)."""
    joined = parts[0]
    for part in parts[1:]:
        joined = text(_("{first}; {then}"), first=joined, then=part)
    return joined


class Tokens:
    def __init__(self, settings: Settings) -> None:
        self._key = settings.secret
        self.ttl_s = settings.token_ttl_s
        # A phone sends the same token with every request: its signature is checked once, and
        # its expiry every time (failures are not cached).
        self._verified = functools.lru_cache(maxsize=VERIFIED_TOKEN_CACHE)(self._verify)

    def issue(
        self, *, user_id: uuid.UUID, role: str, organization_id: uuid.UUID | None, version: int = 0
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": TOKEN_ISSUER,
            "aud": TOKEN_AUDIENCE,
            "sub": str(user_id),
            "role": role,
            "org": str(organization_id) if organization_id else None,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl_s,
            "jti": secrets.token_hex(16),
            "ver": version,
        }
        return jwt.encode(claims, self._key, algorithm=TOKEN_ALGORITHM)

    def read(self, token: str) -> Principal:
        principal, expires = self._verified(token)
        if expires <= time.time():
            raise Unauthorized(text(_("the access token has expired; sign in again")), code="token_expired")
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[TOKEN_ALGORITHM],
                audience=TOKEN_AUDIENCE,
                issuer=TOKEN_ISSUER,
                options={"require": ["exp", "sub", "iat", "jti"]},
            )
            expires = float(claims["exp"])
            principal = Principal(
                user_id=uuid.UUID(claims["sub"]),
                role=Role(claims["role"]),
                organization_id=uuid.UUID(claims["org"]) if claims.get("org") else None,
                token_id=str(claims["jti"])[:64],
                token_version=int(claims.get("ver", 0)),
                expires_at=expires,
            )
            return principal, expires
        except jwt.ExpiredSignatureError:
            raise Unauthorized(
                text(_("the access token has expired; sign in again")), code="token_expired"
            ) from None
        except (jwt.InvalidTokenError, ValueError, KeyError, TypeError):
            raise Unauthorized(text(_("the access token is not valid")), code="invalid_token") from None


class AccountGate:
    """Refuses the tokens of deactivated accounts, revoked tokens and tokens older than a new password.

    Every authenticated request passes here. A process trusts a good answer for
    `account_check_cache_s` seconds (so a token used many times a second costs one query per
    period), a revoked token's refusal for good (it never comes back: deactivation raises the
    account's token version, so reactivating it does not revive old tokens). Revocations made by
    this process take effect here at once; other processes see them within the cache period.
    """

    MAX_ENTRIES = 65536

    def __init__(self, database: Database, ttl_s: float) -> None:
        self._database = database
        self._ttl_s = ttl_s
        self._good: dict[tuple[uuid.UUID, str | None, int], float] = {}
        self._refused: dict[tuple[uuid.UUID, str | None, int], tuple[Unauthorized, float]] = {}
        self._lock = threading.Lock()

    async def check(self, principal: Principal) -> None:
        key = (principal.user_id, principal.token_id, principal.token_version)
        refused = self._refused.get(key)
        if refused is not None and refused[1] > time.monotonic():
            raise refused[0]
        checked = self._good.get(key)
        if checked is not None and time.monotonic() - checked < self._ttl_s:
            return
        await anyio.to_thread.run_sync(self.check_now, principal)

    def check_now(self, principal: Principal) -> None:
        key = (principal.user_id, principal.token_id, principal.token_version)
        revoked = (
            select(RevokedToken.token_id).where(RevokedToken.token_id == principal.token_id).exists()
            if principal.token_id
            else false()
        )
        with self._database.transaction(read_only=True) as session:
            row = session.exec(
                select(User.is_active, User.token_version, revoked).where(User.id == principal.user_id)
            ).first()
        refusal: Unauthorized | None = None
        # A revoked token never comes back; an account's state may change, so that is asked again.
        refused_until = math.inf
        if principal.token_version != (row[1] if row else None) or (row and row[2]):
            refusal = Unauthorized(
                text(_("this access token was revoked; sign in again")), code="token_revoked"
            )
        if row is None or not row[0]:
            refusal = Unauthorized(text(_("this account is deactivated")), code="account_inactive")
            refused_until = time.monotonic() + self._ttl_s
        with self._lock:
            if len(self._good) >= self.MAX_ENTRIES:
                self._good.clear()
            if len(self._refused) >= self.MAX_ENTRIES:
                self._refused.clear()
            if refusal is None:
                self._good[key] = time.monotonic()
            else:
                self._good.pop(key, None)
                self._refused[key] = (refusal, refused_until)
        if refusal is not None:
            raise refusal

    def forget(self, user_id: uuid.UUID) -> None:
        """This account changed (signed out, new password, deactivated): ask the database again."""
        with self._lock:
            for cache in (self._good, self._refused):
                for key in [k for k in cache if k[0] == user_id]:
                    del cache[key]


def bearer_auth_middleware(tokens: Tokens, gate: AccountGate) -> Callable[[ASGIApp], ASGIApp]:
    """Read the bearer token into `request.user` (a Principal or None); guards decide what it may do."""

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] in ("http", "websocket"):
                scope["user"] = None
                scope["auth"] = None
                header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
                if header is not None:
                    scheme, _sep, value = header.decode("latin-1").partition(" ")
                    if scheme.lower() != "bearer" or not value.strip():
                        scope["auth"] = Unauthorized(
                            text(_("use the header Authorization: Bearer <access_token>")),
                            code="invalid_token",
                        )
                    else:
                        try:
                            principal = tokens.read(value.strip())
                            await gate.check(principal)
                            scope["user"] = principal
                        except Unauthorized as exc:
                            scope["auth"] = exc
            await app(scope, receive, send)

        return middleware

    return factory


def current_principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    principal = connection.scope.get("user")
    if isinstance(principal, Principal):
        return principal
    error = connection.scope.get("auth")
    if isinstance(error, Unauthorized):
        raise error
    raise Unauthorized(
        text(_("sign in first: this needs Authorization: Bearer <access_token>")), code="not_authenticated"
    )


def requires(
    *roles: Role,
) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]:
    """Guard: the caller is signed in and has one of these roles.

    A coroutine function, though it never waits: Litestar runs a plain function guard in a worker
    thread, a round trip to the thread pool on every request for a dictionary lookup.
    """
    allowed = frozenset(roles)

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
        principal = current_principal(connection)
        if allowed and principal.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise Forbidden(text(_("this needs the role {names}"), names=names), code="wrong_role")

    guard.__name__ = f"requires_{'_'.join(sorted(r.value for r in allowed)) or 'any'}"
    return guard


signed_in = requires()
