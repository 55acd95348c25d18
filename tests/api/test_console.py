"""The console's rules over plain HTTP: sign-in, cookies, CSRF, who reaches what, lease feedback."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, update

from fieldcheck.auth.models import Role
from fieldcheck.db import utcnow
from fieldcheck.reviews.models import ReviewClaim
from fieldcheck.settings import Settings
from tests.api.test_review import flagged
from tests.support.backends import BackendFactory
from tests.support.console import csrf_of, sign_in
from tests.support.factories import make_account, runtime_of
from tests.support.submissions import Field


@pytest.fixture(params=[pytest.param("embedded", id="embedded")])
def settings(request: pytest.FixtureRequest, backends: BackendFactory) -> Settings:
    return backends.make(request.param)


def test_sign_in_sets_a_safe_cookie_and_sign_out_ends_the_session(app_client: Any) -> None:
    reviewer = make_account(runtime_of(app_client), Role.reviewer)
    assert (
        app_client.get("/console/review/", follow_redirects=False)
        .headers["location"]
        .startswith("/console/login?next=/console/review")
    )
    answer = sign_in(app_client, reviewer, next_path="https://evil.example/steal")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/review"  # never to another site
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("fieldcheck_console="))
    for flag in ("HttpOnly", "Path=/console", "SameSite=lax"):
        assert flag in cookie, cookie
    assert "Secure" not in cookie  # http://127.0.0.1: a Secure cookie would never come back
    queue = app_client.get("/console/review/")
    assert queue.status_code == 200 and "Review queue" in queue.text
    assert queue.headers["content-security-policy"].startswith("default-src 'self'")
    assert queue.headers["x-frame-options"] == "DENY"
    # Sign out without the form's token: refused; with it: the session is gone for good.
    assert app_client.post("/console/logout", data={}, follow_redirects=False).status_code == 403
    token = csrf_of(queue.text)
    stolen = app_client.cookies.get("fieldcheck_console")
    out = app_client.post("/console/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303 and "signed_out" in out.headers["location"]
    app_client.cookies.set("fieldcheck_console", stolen, path="/console")
    assert app_client.get("/console/review/", follow_redirects=False).status_code == 303


def test_secure_cookies_behind_https(backends: BackendFactory) -> None:
    from litestar.testing import TestClient

    from fieldcheck.app import create_app
    from fieldcheck.migrations import upgrade

    settings = backends.embedded(public_base_url="https://fieldcheck.example")
    upgrade(settings)
    with TestClient(create_app(settings), base_url="https://fieldcheck.example") as client:
        reviewer = make_account(runtime_of(client), Role.reviewer)
        answer = sign_in(client, reviewer)
        cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("fieldcheck_console="))
        assert "Secure" in cookie


def test_workers_wrong_passwords_and_forged_forms_get_nothing(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    worker = make_account(runtime, Role.worker)
    refused = sign_in(app_client, worker)
    assert refused.status_code == 403 and "workers use the fieldcheck app" in refused.text
    assert "fieldcheck_console=" not in refused.headers.get("set-cookie", "").replace(
        'fieldcheck_console=""', ""
    )
    assert app_client.get("/console/review/", follow_redirects=False).status_code == 303
    reviewer = make_account(runtime, Role.reviewer)
    reviewer.password = "not the password at all"
    wrong = sign_in(app_client, reviewer)
    assert wrong.status_code == 401 and "wrong" in wrong.text
    # A sign-in form posted from elsewhere (no matching double-submit cookie) is refused.
    app_client.cookies.clear()
    forged = app_client.post(
        "/console/login",
        data={"email": reviewer.email, "password": "x", "login_csrf": "guess"},
        follow_redirects=False,
    )
    assert forged.status_code == 403


def test_roles_and_organizations_stay_apart(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    field = Field(app_client)
    campaign_id = field.campaign["id"]
    stranger = make_account(runtime, Role.client)
    assert sign_in(app_client, stranger).status_code == 303
    assert app_client.get("/console/campaigns/").status_code == 200
    other = app_client.get(f"/console/campaigns/{campaign_id}")
    assert other.status_code == 404 and "Not found" in other.text
    assert app_client.get("/console/review/").status_code == 403
    assert app_client.get(f"/console/exports/{uuid.uuid4()}").status_code == 404
    page = app_client.get("/console/campaigns/")
    forged_export = app_client.post(
        f"/console/campaigns/{campaign_id}/exports",
        data={"format": "csv", "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert forged_export.status_code == 404
    app_client.cookies.clear()
    owner_answer = sign_in(app_client, field.owner)
    assert owner_answer.headers["location"] == "/console/campaigns"
    mine = app_client.get(f"/console/campaigns/{campaign_id}")
    assert mine.status_code == 200 and field.campaign["title"] in mine.text
    app_client.cookies.clear()
    reviewer = make_account(runtime, Role.reviewer)
    sign_in(app_client, reviewer)
    assert app_client.get(f"/console/campaigns/{campaign_id}").status_code == 403


def test_a_decision_needs_the_form_token_and_a_live_lease(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    field = Field(app_client)
    _, first = flagged(app_client, field)
    _, second = flagged(app_client, field)
    reviewer, rival = make_account(runtime, Role.reviewer), make_account(runtime, Role.reviewer)
    sign_in(app_client, reviewer)
    queue = app_client.get("/console/review/")
    token = csrf_of(queue.text)
    claimed = app_client.post(
        f"/console/review/{first}/claim", data={"csrf_token": token}, follow_redirects=False
    )
    assert claimed.headers["location"] == f"/console/review/{first}"
    item = app_client.get(f"/console/review/{first}")
    assert item.status_code == 200 and "Your lease ends" in item.text
    no_token = app_client.post(f"/console/review/{first}/decision", data={"decision": "approve"})
    assert no_token.status_code == 403 and "stale" in no_token.text
    # The lease runs out; a rival takes the item; the late decision is told so and moves on.
    with runtime.db.transaction() as session:
        session.exec(
            update(ReviewClaim)
            .where(col(ReviewClaim.assignment_id) == uuid.UUID(first))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    late = app_client.post(
        f"/console/review/{first}/decision",
        data={"decision": "approve", "csrf_token": token},
        follow_redirects=False,
    )
    assert "notice=lease_expired" in late.headers["location"]
    assert late.headers["location"].startswith(f"/console/review/{second}")  # the next item opened
    app_client.cookies.clear()
    sign_in(app_client, rival)
    rival_token = csrf_of(app_client.get("/console/review/").text)
    taken = app_client.post(
        f"/console/review/{first}/claim", data={"csrf_token": rival_token}, follow_redirects=False
    )
    assert taken.headers["location"] == f"/console/review/{first}"
    app_client.cookies.clear()
    sign_in(app_client, reviewer)
    token = csrf_of(app_client.get("/console/review/").text)  # a new session, a new token
    again = app_client.post(
        f"/console/review/{first}/claim", data={"csrf_token": token}, follow_redirects=False
    )
    assert "notice=claimed_by_another" in again.headers["location"]
    shown = app_client.get(again.headers["location"])
    assert "Another reviewer took that item first." in shown.text
    # A rejection without a reason stays on the item and says why.
    no_reason = app_client.post(
        f"/console/review/{second}/decision",
        data={"decision": "reject", "csrf_token": token},
        follow_redirects=False,
    )
    assert no_reason.headers["location"] == f"/console/review/{second}?notice=reason_required"
