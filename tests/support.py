"""Factories: each test builds the accounts and objects it needs, through the real services."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from litestar.testing import TestClient

from fieldcheck.auth.models import Role
from fieldcheck.auth.service import create_user, issue_token
from fieldcheck.organizations.service import create_organization
from fieldcheck.runtime import Runtime

DEFAULT_PASSWORD = "river-stone-lantern-42"


@dataclass
class Account:
    id: uuid.UUID
    email: str
    password: str
    role: Role
    organization_id: uuid.UUID | None
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def runtime_of(client: TestClient[Any]) -> Runtime:
    runtime: Runtime = client.app.state.runtime
    return runtime


def make_organization(runtime: Runtime, name: str = "Acme Retail") -> uuid.UUID:
    with runtime.db.transaction() as session:
        return create_organization(session, name=name).id


def make_account(
    runtime: Runtime,
    role: Role,
    *,
    organization_id: uuid.UUID | None = None,
    email: str | None = None,
    password: str = DEFAULT_PASSWORD,
    display_name: str | None = None,
) -> Account:
    if role is Role.client and organization_id is None:
        organization_id = make_organization(runtime)
    email = email or f"{role.value}-{secrets.token_hex(4)}@example.com"
    with runtime.db.transaction() as session:
        user = create_user(
            session,
            runtime.passwords,
            email=email,
            password=password,
            role=role,
            display_name=display_name,
            organization_id=organization_id,
        )
        token = issue_token(runtime.tokens, user)
        return Account(user.id, user.email, password, role, organization_id, token)


def problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert a problem-details answer and return its body."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["detail"]
    if code is not None:
        assert body["code"] == code, body
    return body
