from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from sqlmodel import func, select

from fieldcheck.auth.models import Role, User
from fieldcheck.auth.security import Passwords
from fieldcheck.settings import Settings
from tests.support.factories import DEFAULT_PASSWORD, make_account, problem, runtime_of


def register(client: Any, email: str = "ana@example.com", password: str = DEFAULT_PASSWORD) -> Any:
    return client.post(
        "/api/v1/auth/register", json={"email": email, "password": password, "display_name": "Ana"}
    )


def token(client: Any, email: str, password: str = DEFAULT_PASSWORD) -> Any:
    return client.post("/api/v1/auth/token", json={"email": email, "password": password})


def user_count(client: Any) -> int:
    with runtime_of(client).db.transaction(read_only=True) as session:
        return int(session.exec(select(func.count()).select_from(User)).one())


def test_register_token_me(app_client: Any) -> None:
    created = register(app_client, email="Ana@Example.COM")
    assert created.status_code == 202, created.text
    assert created.json()["email"] == "ana@example.com"
    assert created.json()["sign_in"] == "/api/v1/auth/token"
    assert "password" not in created.text.replace("your password", "").replace("'s password", "")

    answer = token(app_client, "ANA@example.com")
    assert answer.status_code == 200, answer.text
    issued = answer.json()
    assert issued["token_type"] == "bearer"
    assert issued["role"] == "worker"
    assert issued["expires_in"] == 3600

    me = app_client.get("/api/v1/me", headers={"Authorization": f"Bearer {issued['access_token']}"})
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["email"] == "ana@example.com"
    assert body["role"] == "worker"
    assert body["is_active"] is True
    assert len(body["id"]) == 36  # an opaque UUID, not a counter
    assert body["organization"] is None
    assert body["created_at"].endswith(("Z", "+00:00"))
    assert "password" not in me.text and "hash" not in me.text


def test_sign_up_does_not_tell_whether_an_address_is_taken(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    hashed: list[str] = []
    real_hash = runtime.passwords.hash

    def counting_hash(password: str) -> str:
        hashed.append(password)
        return real_hash(password)

    runtime.passwords.hash = counting_hash  # type: ignore[method-assign]
    first = register(app_client)
    before = user_count(app_client)
    again = register(app_client, email="ANA@example.com", password="another-river-stone-42")
    # The same status and body, and the same work (one full password hash) either way.
    assert (first.status_code, first.json()) == (again.status_code, again.json()) == (202, first.json())
    assert hashed == [DEFAULT_PASSWORD, "another-river-stone-42"]
    assert user_count(app_client) == before
    # The owner's account is untouched: their password still works, the newcomer's does not.
    assert token(app_client, "ana@example.com").status_code == 200
    problem(token(app_client, "ana@example.com", "another-river-stone-42"), 401, "invalid_credentials")


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("aaaaaaaaaaaa", "different characters"),
        ("1234567890", "most common"),
        ("ana-example-99", "e-mail"),
    ],
)
def test_weak_passwords_are_refused(app_client: Any, password: str, reason: str) -> None:
    before = user_count(app_client)
    body = problem(
        register(app_client, email="ana-example@example.com", password=password), 422, "weak_password"
    )
    assert reason in body["detail"]
    assert body["errors"][0]["field"] == "password"
    assert user_count(app_client) == before


@pytest.mark.parametrize("password", ["", "short", "x" * 257])
def test_password_lengths_are_part_of_the_schema(app_client: Any, password: str) -> None:
    body = problem(register(app_client, password=password), 400, "validation_error")
    assert body["errors"][0]["field"] == "password"
    assert user_count(app_client) == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "not-an-email", "password": DEFAULT_PASSWORD, "display_name": "A"}, "email"),
        ({"email": "a@example.com", "password": 12345, "display_name": "A"}, "password"),
        ({"email": "a@example.com", "password": DEFAULT_PASSWORD}, "display_name"),
        ({"email": "a@example.com", "password": DEFAULT_PASSWORD, "display_name": "   "}, "display_name"),
        (
            {"email": "a@example.com", "password": DEFAULT_PASSWORD, "display_name": "A", "role": "admin"},
            "role",
        ),
    ],
)
def test_invalid_bodies_name_the_field(app_client: Any, payload: dict[str, Any], field: str) -> None:
    body = problem(app_client.post("/api/v1/auth/register", json=payload), 400, "validation_error")
    assert field in {error["field"] for error in body["errors"]}, body
    assert user_count(app_client) == 0


def test_malformed_json_is_a_problem(app_client: Any) -> None:
    answer = app_client.post(
        "/api/v1/auth/register", content=b'{"email": ', headers={"Content-Type": "application/json"}
    )
    problem(answer, 400)
    assert user_count(app_client) == 0


def test_wrong_password_and_unknown_email_look_alike(app_client: Any) -> None:
    assert register(app_client).status_code == 202
    wrong = problem(token(app_client, "ana@example.com", "not-the-password"), 401, "invalid_credentials")
    unknown = problem(token(app_client, "nobody@example.com"), 401, "invalid_credentials")
    assert wrong["detail"] == unknown["detail"]


def test_repeated_failures_make_this_address_wait_for_this_account(
    app_client: Any, settings: Settings
) -> None:
    assert register(app_client).status_code == 202
    for _ in range(settings.login_free_failures):
        problem(token(app_client, "ana@example.com", "guess-guess-guess"), 401)
    refused = token(app_client, "ana@example.com")  # from here, even the right password waits now
    problem(refused, 429, "login_throttled")
    assert int(refused.headers["Retry-After"]) == settings.login_delay_base_s
    # Another account from the same address is not slowed down by it.
    make_account(runtime_of(app_client), Role.worker, email="bo@example.com")
    assert token(app_client, "bo@example.com").status_code == 200


def test_tokens_expire_and_cannot_be_forged(app_client: Any, settings: Settings) -> None:
    worker = make_account(runtime_of(app_client), Role.worker)
    claims = jwt.decode(worker.token, options={"verify_signature": False})

    forged = jwt.encode(
        {**claims, "role": "admin"}, "not-the-secret-but-long-enough-for-hs256-0123456789", algorithm="HS256"
    )
    problem(app_client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"}), 401, "invalid_token")

    expired = jwt.encode(
        {
            **claims,
            "iat": int(time.time()) - 7200,
            "nbf": int(time.time()) - 7200,
            "exp": int(time.time()) - 3600,
        },
        settings.secret,
        algorithm="HS256",
    )
    problem(
        app_client.get("/api/v1/me", headers={"Authorization": f"Bearer {expired}"}), 401, "token_expired"
    )
    problem(app_client.get("/api/v1/me", headers={"Authorization": "Bearer garbage"}), 401, "invalid_token")
    problem(app_client.get("/api/v1/me", headers={"Authorization": "Basic abc"}), 401, "invalid_token")
    answer = problem(app_client.get("/api/v1/me"), 401, "not_authenticated")
    assert answer["instance"] == "/api/v1/me"


def test_admin_creates_organizations_and_users(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    admin = make_account(runtime, Role.admin)
    created = app_client.post(
        "/api/v1/admin/organizations", json={"name": "Yoghurt Co"}, headers=admin.headers
    )
    assert created.status_code == 201, created.text
    organization_id = created.json()["id"]

    client_user = app_client.post(
        "/api/v1/admin/users",
        json={
            "email": "buyer@yoghurt.example.com",
            "password": DEFAULT_PASSWORD,
            "role": "client",
            "organization_id": organization_id,
        },
        headers=admin.headers,
    )
    assert client_user.status_code == 201, client_user.text
    signed_in = token(app_client, "buyer@yoghurt.example.com").json()
    me = app_client.get("/api/v1/me", headers={"Authorization": f"Bearer {signed_in['access_token']}"}).json()
    assert me["role"] == "client"
    assert me["organization"]["name"] == "Yoghurt Co"

    reviewer = app_client.post(
        "/api/v1/admin/users",
        json={"email": "rev@fieldcheck.example.com", "password": DEFAULT_PASSWORD, "role": "reviewer"},
        headers=admin.headers,
    )
    assert reviewer.status_code == 201


def test_admin_user_creation_refuses_bad_input(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    admin = make_account(runtime, Role.admin)
    before = user_count(app_client)

    def create(**body: Any) -> Any:
        payload = {"email": "x@example.com", "password": DEFAULT_PASSWORD, **body}
        return app_client.post("/api/v1/admin/users", json=payload, headers=admin.headers)

    body = problem(create(role="superuser"), 400, "validation_error")
    assert "role" in {e["field"] for e in body["errors"]}
    problem(create(role="client"), 422, "organization_required")
    problem(
        create(role="client", organization_id="8b0e3a35-0d0d-4b0c-9d57-4a1c2c6a9d11"),
        422,
        "unknown_organization",
    )
    problem(
        create(role="worker", organization_id="8b0e3a35-0d0d-4b0c-9d57-4a1c2c6a9d11"),
        422,
        "organization_not_allowed",
    )
    assert user_count(app_client) == before


def test_roles_are_guarded(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    worker = make_account(runtime, Role.worker)
    client = make_account(runtime, Role.client)
    for account in (worker, client):
        problem(
            app_client.post("/api/v1/admin/organizations", json={"name": "X"}, headers=account.headers),
            403,
            "wrong_role",
        )
    problem(app_client.post("/api/v1/admin/organizations", json={"name": "X"}), 401, "not_authenticated")


def test_sign_in_upgrades_an_old_hash(app_client: Any, settings: Settings) -> None:
    runtime = runtime_of(app_client)
    worker = make_account(runtime, Role.worker)
    weaker = Passwords(settings.model_copy(update={"argon2_time_cost": 2}))
    with runtime.db.transaction() as session:
        user = session.get(User, worker.id)
        assert user is not None
        user.password_hash = weaker.hash(worker.password)
        session.add(user)
    assert token(app_client, worker.email).status_code == 200
    with runtime.db.transaction(read_only=True) as session:
        user = session.get(User, worker.id)
        assert user is not None
        assert "t=1" in user.password_hash
