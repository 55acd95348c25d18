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


def make_store(
    client: Any, account: Account, *, lat: float = 48.8566, lon: float = 2.3522, **fields: Any
) -> dict[str, Any]:
    body = {"name": fields.pop("name", f"Store {secrets.token_hex(3)}"), "lat": lat, "lon": lon, **fields}
    answer = client.post("/api/v1/stores", json=body, headers=account.headers)
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


def make_campaign(
    client: Any,
    account: Account,
    store_ids: list[str],
    *,
    activate: bool = True,
    fund: bool | int = True,
    **fields: Any,
) -> dict[str, Any]:
    body = {
        "title": "Yoghurt shelf",
        "instructions": "Photograph the whole yoghurt shelf, facing it.",
        "reward_cents": 500,
        "currency": "EUR",
        "estimated_minutes": 15,
        "slots_per_store": 1,
        "store_ids": store_ids,
        **fields,
    }
    answer = client.post("/api/v1/campaigns", json=body, headers=account.headers)
    assert answer.status_code == 201, answer.text
    campaign: dict[str, Any] = answer.json()
    if activate and fund:
        deposit(client, account, fund if isinstance(fund, int) and not isinstance(fund, bool) else 5_000_000)
    if activate:
        activated = client.post(f"/api/v1/campaigns/{campaign['id']}/activate", headers=account.headers)
        assert activated.status_code == 200, activated.text
        campaign = activated.json()
    return campaign


def nearby(client: Any, worker: Account, lat: float, lon: float, **params: Any) -> list[dict[str, Any]]:
    answer = client.get(
        "/api/v1/tasks/nearby", params={"lat": lat, "lon": lon, **params}, headers=worker.headers
    )
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def reserve(client: Any, worker: Account, task_id: str) -> Any:
    return client.post(f"/api/v1/tasks/{task_id}/reservations", headers=worker.headers)


def task_ids_of(client: Any, campaign_id: str) -> list[str]:
    """Task ids of a campaign, read from the database (clients do not list tasks directly)."""
    from sqlmodel import select

    from fieldcheck.tasks.models import Task

    runtime = runtime_of(client)
    with runtime.db.transaction(read_only=True) as session:
        rows = session.exec(select(Task.id).where(Task.campaign_id == uuid.UUID(campaign_id))).all()
    return [str(r) for r in rows]


def task_of(client: Any, campaign_id: str, store_id: str) -> str:
    from sqlmodel import select

    from fieldcheck.tasks.models import Task

    with runtime_of(client).db.transaction(read_only=True) as session:
        return str(
            session.exec(
                select(Task.id).where(
                    Task.campaign_id == uuid.UUID(campaign_id), Task.store_id == uuid.UUID(store_id)
                )
            ).one()
        )


def deposit(
    client: Any, account: Account, amount_cents: int, currency: str = "EUR", key: str | None = None
) -> Any:
    answer = client.post(
        "/api/v1/organizations/me/deposits",
        json={"amount_cents": amount_cents, "currency": currency},
        headers={**account.headers, "Idempotency-Key": key or secrets.token_hex(8)},
    )
    assert answer.status_code == 201, answer.text
    return answer.json()
