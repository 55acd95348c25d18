"""Tokens that stop working: sign-out, a new password, a deactivated account; on every route."""

from __future__ import annotations

import time
from typing import Any

from litestar.testing import TestClient

from fieldcheck.app import create_app
from fieldcheck.auth.models import Role
from fieldcheck.settings import Settings
from tests.support.console import sign_in as console_sign_in
from tests.support.factories import DEFAULT_PASSWORD, Account, make_account, problem, runtime_of

NEW_PASSWORD = "quiet-harbour-lantern-7"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_in(client: Any, account: Account, password: str = DEFAULT_PASSWORD) -> str:
    answer = client.post("/api/v1/auth/token", json={"email": account.email, "password": password})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def works(client: Any, token: str) -> bool:
    answer = client.get("/api/v1/me", headers=bearer(token))
    assert answer.status_code in (200, 401), answer.text
    return answer.status_code == 200


def test_sign_out_revokes_this_token_only(app_client: Any) -> None:
    worker = make_account(runtime_of(app_client), Role.worker)
    other = sign_in(app_client, worker)
    answer = app_client.post("/api/v1/auth/logout", headers=worker.headers)
    assert answer.status_code == 204, answer.text
    problem(app_client.get("/api/v1/me", headers=worker.headers), 401, "token_revoked")
    problem(app_client.get("/api/v1/me/balance", headers=worker.headers), 401, "token_revoked")
    problem(app_client.post("/api/v1/auth/logout", headers=worker.headers), 401, "token_revoked")
    assert works(app_client, other)
    problem(app_client.post("/api/v1/auth/logout"), 401, "not_authenticated")


def test_a_new_password_revokes_every_token_and_console_sign_in(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    client = make_account(runtime, Role.client)
    second = sign_in(app_client, client)
    assert console_sign_in(app_client, client).status_code == 303
    assert app_client.get("/console/campaigns", follow_redirects=False).status_code == 200

    def change(current: str, new: str) -> Any:
        return app_client.post(
            "/api/v1/me/password",
            json={"current_password": current, "new_password": new},
            headers=bearer(second),
        )

    wrong = problem(change("not-my-password", NEW_PASSWORD), 422, "wrong_password")
    assert wrong["errors"][0]["field"] == "current_password"
    problem(change(DEFAULT_PASSWORD, "azertyuiop"), 422, "weak_password")
    problem(change(DEFAULT_PASSWORD, DEFAULT_PASSWORD), 422, "same_password")
    body = problem(change(DEFAULT_PASSWORD, "short"), 400, "validation_error")
    assert body["errors"][0]["field"] == "new_password"
    assert works(app_client, second)  # nothing changed so far

    assert change(DEFAULT_PASSWORD, NEW_PASSWORD).status_code == 204
    for token in (client.token, second):
        problem(app_client.get("/api/v1/me", headers=bearer(token)), 401, "token_revoked")
    # The console sign-in ended too.
    assert app_client.get("/console/campaigns", follow_redirects=False).status_code in (302, 303)
    problem(
        app_client.post("/api/v1/auth/token", json={"email": client.email, "password": DEFAULT_PASSWORD}),
        401,
        "invalid_credentials",
    )
    assert works(app_client, sign_in(app_client, client, NEW_PASSWORD))


def test_guessing_the_current_password_with_a_stolen_token_is_throttled(
    app_client: Any, settings: Settings
) -> None:
    worker = make_account(runtime_of(app_client), Role.worker)
    for _ in range(settings.login_free_failures):
        problem(
            app_client.post(
                "/api/v1/me/password",
                json={"current_password": "guess-guess-guess", "new_password": NEW_PASSWORD},
                headers=worker.headers,
            ),
            422,
            "wrong_password",
        )
    problem(
        app_client.post(
            "/api/v1/me/password",
            json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
            headers=worker.headers,
        ),
        429,
        "login_throttled",
    )


def test_admins_deactivate_and_reactivate_accounts(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    admin, worker = make_account(runtime, Role.admin), make_account(runtime, Role.worker)
    reviewer = make_account(runtime, Role.reviewer)
    assert console_sign_in(app_client, reviewer).status_code == 303
    assert app_client.get("/console/review", follow_redirects=False).status_code == 200

    for account in (worker, reviewer):
        answer = app_client.post(f"/api/v1/admin/users/{account.id}/deactivate", headers=admin.headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["is_active"] is False
    # At once, on every route: reading money, reserving, the console.
    problem(app_client.get("/api/v1/me/balance", headers=worker.headers), 401, "account_inactive")
    problem(
        app_client.post(
            "/api/v1/tasks/00000000-0000-4000-8000-000000000000/reservations", headers=worker.headers
        ),
        401,
        "account_inactive",
    )
    assert app_client.get("/console/review", follow_redirects=False).status_code in (302, 303)
    problem(
        app_client.post("/api/v1/auth/token", json={"email": worker.email, "password": worker.password}),
        401,
        "invalid_credentials",
    )
    listed = app_client.get("/api/v1/admin/users", params={"active": "false"}, headers=admin.headers).json()
    assert {item["id"] for item in listed["items"]} == {str(worker.id), str(reviewer.id)}

    again = app_client.post(f"/api/v1/admin/users/{worker.id}/reactivate", headers=admin.headers)
    assert again.status_code == 200, again.text
    assert again.json()["is_active"] is True
    # Old tokens stay revoked; the worker signs in again.
    problem(app_client.get("/api/v1/me", headers=worker.headers), 401, "token_revoked")
    assert works(app_client, sign_in(app_client, worker))

    problem(
        app_client.post(f"/api/v1/admin/users/{admin.id}/deactivate", headers=admin.headers),
        409,
        "own_account",
    )
    problem(
        app_client.post(
            "/api/v1/admin/users/00000000-0000-4000-8000-000000000000/deactivate", headers=admin.headers
        ),
        404,
        "user_not_found",
    )
    problem(app_client.post(f"/api/v1/admin/users/{admin.id}/deactivate", headers=worker.headers), 401)
    other = make_account(runtime, Role.worker)
    problem(
        app_client.post(f"/api/v1/admin/users/{worker.id}/deactivate", headers=other.headers),
        403,
        "wrong_role",
    )


def test_admins_find_accounts_page_by_page(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    admin = make_account(runtime, Role.admin)
    workers = [make_account(runtime, Role.worker, email=f"field-{i}@example.com") for i in range(5)]
    make_account(runtime, Role.reviewer, email="field-reviewer@example.com")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"role": "worker", "email": "FIELD-", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = app_client.get("/api/v1/admin/users", params=params, headers=admin.headers).json()
        seen += [item["email"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [w.email for w in workers]
    # The wildcard characters of LIKE are plain characters in a search.
    assert (
        app_client.get("/api/v1/admin/users", params={"email": "%"}, headers=admin.headers).json()["items"]
        == []
    )


def test_other_processes_refuse_a_revoked_token_within_the_cache_period(settings: Settings) -> None:
    settings.account_check_cache_s = 0.2
    with TestClient(create_app(settings)) as first, TestClient(create_app(settings)) as second:
        worker = make_account(runtime_of(first), Role.worker)
        assert works(second, worker.token)  # now in the second process's cache
        assert first.post("/api/v1/auth/logout", headers=worker.headers).status_code == 204
        time.sleep(0.3)
        problem(second.get("/api/v1/me", headers=worker.headers), 401, "token_revoked")
