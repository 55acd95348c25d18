"""Passwords (argon2id), bearer tokens (JWT) and the role guards every route uses."""

from __future__ import annotations

import functools
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from argon2 import PasswordHasher as Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send

from fieldcheck.auth.models import Role
from fieldcheck.errors import Forbidden, Unauthorized, Unprocessable
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

    def require_organization(self) -> uuid.UUID:
        if self.organization_id is None:
            raise Forbidden("this account does not act for an organization", code="no_organization")
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
    problems: list[str] = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"use at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(f"use at most {MAX_PASSWORD_LENGTH} characters")
    if len(set(password)) < MIN_DISTINCT_CHARACTERS:
        problems.append(f"use at least {MIN_DISTINCT_CHARACTERS} different characters")
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS:
        problems.append("this password is among the most common ones")
    local_part = email.split("@", 1)[0].lower()
    if len(local_part) >= 4 and local_part in lowered:
        problems.append("do not build the password from your e-mail address")
    if problems:
        raise Unprocessable(
            "The password is too weak: " + "; ".join(problems) + ".",
            code="weak_password",
            errors=[{"field": "password", "message": p, "source": "body"} for p in problems],
        )


class Tokens:
    def __init__(self, settings: Settings) -> None:
        self._key = settings.secret
        self.ttl_s = settings.token_ttl_s
        # A phone sends the same token with every request: its signature is checked once, and
        # its expiry every time (failures are not cached).
        self._verified = functools.lru_cache(maxsize=VERIFIED_TOKEN_CACHE)(self._verify)

    def issue(self, *, user_id: uuid.UUID, role: str, organization_id: uuid.UUID | None) -> str:
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
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self._key, algorithm=TOKEN_ALGORITHM)

    def read(self, token: str) -> Principal:
        principal, expires = self._verified(token)
        if expires <= time.time():
            raise Unauthorized("the access token has expired; sign in again", code="token_expired")
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[TOKEN_ALGORITHM],
                audience=TOKEN_AUDIENCE,
                issuer=TOKEN_ISSUER,
                options={"require": ["exp", "sub", "iat"]},
            )
            principal = Principal(
                user_id=uuid.UUID(claims["sub"]),
                role=Role(claims["role"]),
                organization_id=uuid.UUID(claims["org"]) if claims.get("org") else None,
            )
            return principal, float(claims["exp"])
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the access token has expired; sign in again", code="token_expired") from None
        except (jwt.InvalidTokenError, ValueError, KeyError):
            raise Unauthorized("the access token is not valid", code="invalid_token") from None


def bearer_auth_middleware(tokens: Tokens) -> Callable[[ASGIApp], ASGIApp]:
    """Read the bearer token into `request.user` (a Principal or None); guards decide what it may do."""

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] in ("http", "websocket"):
                scope["user"] = None
                scope["auth"] = None
                header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
                if header is not None:
                    scheme, _, value = header.decode("latin-1").partition(" ")
                    if scheme.lower() != "bearer" or not value.strip():
                        scope["auth"] = Unauthorized(
                            "use the header Authorization: Bearer <access_token>", code="invalid_token"
                        )
                    else:
                        try:
                            scope["user"] = tokens.read(value.strip())
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
        "sign in first: this needs Authorization: Bearer <access_token>", code="not_authenticated"
    )


def requires(*roles: Role) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], None]:
    """Guard: the caller is signed in and has one of these roles."""
    allowed = frozenset(roles)

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = current_principal(connection)
        if allowed and principal.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise Forbidden(f"this needs the role {names}", code="wrong_role")

    guard.__name__ = f"requires_{'_'.join(sorted(r.value for r in allowed)) or 'any'}"
    return guard


signed_in = requires()
