"""The admins' console pages over plain HTTP: the overview's money and `ledger verify`, accounts and
organizations, deactivation (tokens and sessions end), payout batches and their files, reversals."""

from __future__ import annotations

import html
import re
import uuid
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func
from sqlmodel import select

from fieldcheck.auth.models import Role
from fieldcheck.console import admin
from fieldcheck.ledger.models import AccountKind, LedgerAccount, LedgerEntry, Payout, PayoutStatus
from tests.api.test_money import IBAN, RefusingBank, _earn, _payout
from tests.api.test_review import flagged
from tests.support.console import csrf_of, sign_in
from tests.support.factories import Account, make_account, make_organization, problem, runtime_of
from tests.support.submissions import Field, jobs_held

FIELD_ERROR = re.compile(r'<p class="field-error" id="e-([a-z_]+)">([^<]+)</p>')


def admin_session(client: Any, account: Account | None = None) -> tuple[Account, str]:
    """An admin signed in to the console; the session's CSRF token."""
    account = account or make_account(runtime_of(client), Role.admin, display_name="Ada Admin")
    client.cookies.clear()
    answer = sign_in(client, account)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/console/admin"  # an admin's home
    return account, csrf_of(client.get("/console/admin").text)


def field_errors(page: str) -> dict[str, str]:
    return {name: html.unescape(message) for name, message in FIELD_ERROR.findall(page)}


def balance_of_kind(client: Any, kind: AccountKind, currency: str = "EUR") -> int:
    with runtime_of(client).db.transaction(read_only=True) as session:
        return int(
            session.exec(
                select(func.coalesce(func.sum(LedgerAccount.balance), 0)).where(
                    LedgerAccount.kind == kind.value, LedgerAccount.currency == currency
                )
            ).one()
        )


def test_money_is_shown_exactly() -> None:
    assert admin.money(123_456_789, "EUR") == "1,234,567.89 EUR"
    assert admin.money(5, "EUR") == "0.05 EUR"
    assert admin.money(-1_000, "USD") == "-10.00 USD"
    assert admin.money(0, "EUR") == "0.00 EUR"


def test_the_overview_shows_the_platforms_money_and_what_waits(app_client: Any) -> None:
    _earn(app_client)  # a campaign in escrow, one approved visit paid with its fee
    field = Field(app_client)
    flagged(app_client, field)  # waits for a reviewer
    fees, escrow = (
        balance_of_kind(app_client, kind) for kind in (AccountKind.platform_fees, AccountKind.client_escrow)
    )
    assert fees > 0 and escrow > 0
    admin_session(app_client)
    page = app_client.get("/console/admin")
    assert page.status_code == 200
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    money = page.text[page.text.index('data-currency="EUR"') :]
    assert f"<b>{admin.money(fees, 'EUR')}</b><span>Fee income</span>" in money
    assert f"<b>{admin.money(escrow, 'EUR')}</b><span>Held in escrow for campaigns</span>" in money
    assert '<b id="reviews-flagged">1</b>' in page.text
    assert '<b id="payouts-requested">0</b>' in page.text
    assert "No verification has run yet" in page.text
    assert '<link rel="stylesheet" href="/console/static/admin.css">' in page.text
    assert app_client.get("/console/static/admin.css").status_code == 200
    assert 'href="/console/admin" aria-current="page"' in page.text


def test_only_admins_reach_the_admin_pages(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    paths = [
        "/console/admin",
        "/console/admin/users",
        "/console/admin/users/new",
        "/console/admin/payouts",
        "/console/admin/rejections",
        f"/console/admin/users/{uuid.uuid4()}/deactivate",
        "/console/admin/payouts/file?key=payouts/batches/x.csv",
    ]
    for path in paths:  # signed out: to the sign-in page, and back
        answer = app_client.get(path, follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/console/login?next=")
    for role in (Role.reviewer, Role.client):
        app_client.cookies.clear()
        sign_in(app_client, make_account(runtime, role))
        for path in paths:
            assert app_client.get(path).status_code == 403, (role, path)
    worker = make_account(runtime, Role.worker)
    token = csrf_of(app_client.get("/console/campaigns/").text)  # the client's own, valid token
    refused = app_client.post(f"/console/admin/users/{worker.id}/deactivate", data={"csrf_token": token})
    assert refused.status_code == 403
    assert app_client.get("/api/v1/me", headers=worker.headers).status_code == 200


@pytest.mark.corrupts_ledger
def test_ledger_verify_on_demand_reports_clean_then_the_problem(app_client: Any) -> None:
    _earn(app_client)
    runtime = runtime_of(app_client)
    _, token = admin_session(app_client)
    assert app_client.post("/console/admin/verify", data={}).status_code == 403  # no form token
    asked = app_client.post("/console/admin/verify", data={"csrf_token": token}, follow_redirects=False)
    assert asked.status_code == 303
    target = asked.headers["location"]
    assert target.startswith("/console/admin/verify?after=")
    runtime.jobs.join()
    report = app_client.get(target)
    assert report.status_code == 200
    assert "Clean: every invariant of the ledger holds." in report.text
    assert "http-equiv" not in report.text  # done: no more reloading
    overview = app_client.get("/console/admin").text
    assert re.search(
        r"Last run \d{4}-\d\d-\d\d \d\d:\d\d UTC:\s*<span class=\"tag approved\">clean</span>", overview
    )

    with runtime.db.transaction() as session:  # an entry without its counterpart: appended, not edited
        some = session.exec(select(LedgerEntry)).first()
        assert some is not None
        session.add(LedgerEntry(transaction_id=some.transaction_id, account_id=some.account_id, amount=7))
    with jobs_held(app_client):  # asked for, not run yet: the page waits and reloads itself
        waiting = app_client.get(
            app_client.post(
                "/console/admin/verify", data={"csrf_token": token}, follow_redirects=False
            ).headers["location"]
        )
        assert "Verifying…" in waiting.text and '<meta http-equiv="refresh" content="2">' in waiting.text
    runtime.jobs.join()
    found = app_client.get(waiting.url)
    assert "problem" in found.text and "does not balance" in found.text, found.text
    assert 'class="tag rejected"' in app_client.get("/console/admin").text
    # A time that is not one goes back to the overview.
    assert app_client.get("/console/admin/verify?after=yesterday", follow_redirects=False).status_code == 303


def test_accounts_are_listed_searched_filtered_and_paged(
    app_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = runtime_of(app_client)
    ana = make_account(runtime, Role.worker, email="ana.lopez@example.com")
    bob = make_account(runtime, Role.reviewer, email="bob.martin@example.com")
    make_account(runtime, Role.client, email="carla@acme.example")
    me, _ = admin_session(app_client)
    found = app_client.get("/console/admin/users", params={"email": "LOPEZ"})
    assert found.status_code == 200
    assert "ana.lopez@example.com" in found.text and "bob.martin" not in found.text
    reviewers = app_client.get("/console/admin/users", params={"role": "reviewer"}).text
    assert "bob.martin@example.com" in reviewers and "ana.lopez" not in reviewers
    assert '<option value="reviewer" selected>' in reviewers
    mine = app_client.get("/console/admin/users", params={"email": me.email}).text
    assert '<span class="muted">you</span>' in mine and f"/users/{me.id}/deactivate" not in mine
    token = csrf_of(mine)
    app_client.post(f"/console/admin/users/{bob.id}/deactivate", data={"csrf_token": token})
    inactive = app_client.get("/console/admin/users", params={"active": "no"}).text
    assert "bob.martin@example.com" in inactive and "ana.lopez" not in inactive
    assert f"/console/admin/users/{bob.id}/reactivate" in inactive
    # Pages of two, with the filters kept from one page to the next.
    monkeypatch.setattr(admin, "USERS_PER_PAGE", 2)
    seen: list[str] = []
    page = app_client.get("/console/admin/users", params={"email": "example"})
    while True:
        seen += re.findall(r'<tr data-user="([0-9a-f-]{36})">', page.text)
        link = re.search(r'<a href="\?([^"]+)" rel="next">', page.text)
        if link is None:
            break
        query = parse_qs(html.unescape(link.group(1)))
        assert query["email"] == ["example"]
        page = app_client.get("/console/admin/users", params={k: v[0] for k, v in query.items()})
    assert str(ana.id) in seen and str(bob.id) in seen
    assert str(me.id) in seen
    assert len(seen) == len(set(seen)) == 4  # ana, bob, carla at acme.example, the admin: each once


def test_admins_create_organizations_and_accounts_with_the_apis_rules(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    make_organization(runtime, "Zeta Stores")
    _, token = admin_session(app_client)
    form = app_client.get("/console/admin/users/new")
    assert form.status_code == 200 and "Zeta Stores" in form.text
    # An organization without a name: said next to its field.
    blank = app_client.post("/console/admin/organizations", data={"csrf_token": token, "name": "  "})
    assert blank.status_code == 422 and "organization_name" in field_errors(blank.text)
    made = app_client.post(
        "/console/admin/organizations",
        data={"csrf_token": token, "name": "Acme Retail"},
        follow_redirects=False,
    )
    assert made.status_code == 303
    target = urlsplit(made.headers["location"])
    assert target.path == "/console/admin/users/new"
    organization_id = parse_qs(target.query)["organization"][0]
    chosen = app_client.get(made.headers["location"])
    assert "The organization is created" in chosen.text
    assert f'<option value="{organization_id}" selected>Acme Retail</option>' in chosen.text

    def create(**fields: str) -> Any:
        return app_client.post(
            "/console/admin/users", data={"csrf_token": token, **fields}, follow_redirects=False
        )

    # A client needs its organization; the typed values stay.
    missing = create(role="client", email="Carla@Acme.example", display_name="Carla")
    assert missing.status_code == 422
    assert field_errors(missing.text) == {"organization_id": "required for role client"}
    assert 'value="Carla@Acme.example"' in missing.text and 'value="Carla"' in missing.text
    # Workers belong to no organization; e-mail addresses and passwords are checked as the API does.
    assert "organization_id" in field_errors(
        create(role="worker", email="w@example.com", organization_id=organization_id).text
    )
    assert "email" in field_errors(create(role="worker", email="not-an-address").text)
    weak = create(role="reviewer", email="rita@example.com", password="aaaaaaaaaa")
    assert weak.status_code == 422 and "password" in field_errors(weak.text)
    assert "aaaaaaaaaa" not in weak.text  # a typed password is never written back into the page
    assert "role" in field_errors(create(role="boss", email="x@example.com").text)

    created = create(
        role="client", email="Carla@Acme.example", display_name="Carla", organization_id=organization_id
    )
    assert created.status_code == 201, created.text
    password = re.search(r'<code class="secret" id="initial-password">([^<]+)</code>', created.text)
    assert password is not None and "Initial password (generated)" in created.text
    assert "Acme Retail" in created.text
    signed = app_client.post(
        "/api/v1/auth/token",
        json={"email": "carla@acme.example", "password": html.unescape(password.group(1))},
    )
    assert signed.status_code == 200 and signed.json()["role"] == "client"
    me = app_client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {signed.json()['access_token']}"}
    ).json()
    assert me["organization"]["id"] == organization_id and me["display_name"] == "Carla"
    taken = create(role="worker", email="carla@acme.example")
    assert taken.status_code == 422
    assert field_errors(taken.text) == {"email": "an account with this e-mail address already exists"}
    # A password typed by the admin is the one the account gets.
    typed = create(role="reviewer", email="rita@example.com", password="amber-quartz-river-71")
    assert (
        typed.status_code == 201 and "amber-quartz-river-71" in typed.text and "as you typed it" in typed.text
    )
    # Without the form's token nothing is created.
    assert (
        app_client.post("/console/admin/users", data={"role": "worker", "email": "z@example.com"}).status_code
        == 403
    )
    listed = app_client.get(
        "/api/v1/admin/users", params={"email": "z@example.com"}, headers=admin_headers(app_client)
    )
    assert listed.json()["items"] == []


def admin_headers(client: Any) -> dict[str, str]:
    return make_account(runtime_of(client), Role.admin).headers


def test_deactivation_ends_the_accounts_tokens_and_console_sessions(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    worker = make_account(runtime, Role.worker, email="will.worker@example.com")
    reviewer = make_account(runtime, Role.reviewer)
    assert sign_in(app_client, reviewer).status_code == 303
    reviewers_cookie = app_client.cookies.get("fieldcheck_console")
    assert app_client.get("/console/review/").status_code == 200
    assert app_client.get("/api/v1/me", headers=worker.headers).status_code == 200
    me, token = admin_session(app_client)

    confirm = app_client.get(f"/console/admin/users/{worker.id}/deactivate")
    assert confirm.status_code == 200
    assert "Deactivate will.worker@example.com?" in confirm.text and "stops working at once" in confirm.text
    assert app_client.post(f"/console/admin/users/{worker.id}/deactivate", data={}).status_code == 403
    done = app_client.post(
        f"/console/admin/users/{worker.id}/deactivate", data={"csrf_token": token}, follow_redirects=False
    )
    assert done.status_code == 303
    assert (
        done.headers["location"]
        == "/console/admin/users?email=will.worker%40example.com&notice=user_deactivated"
    )
    shown = app_client.get(done.headers["location"])
    assert (
        "The account is deactivated" in shown.text
        and '<span class="tag rejected">deactivated</span>' in shown.text
    )
    problem(app_client.get("/api/v1/me", headers=worker.headers), 401, "account_inactive")

    app_client.post(f"/console/admin/users/{reviewer.id}/deactivate", data={"csrf_token": token})
    admins_cookie = app_client.cookies.get("fieldcheck_console")
    app_client.cookies.set("fieldcheck_console", reviewers_cookie, path="/console")
    ended = app_client.get("/console/review/", follow_redirects=False)
    assert ended.status_code == 303 and ended.headers["location"].startswith("/console/login")
    app_client.cookies.set("fieldcheck_console", admins_cookie, path="/console")

    # Not one's own account; an unknown one is not found.
    own = app_client.post(
        f"/console/admin/users/{me.id}/deactivate", data={"csrf_token": token}, follow_redirects=False
    )
    assert own.headers["location"] == "/console/admin/users?notice=own_account"
    assert (
        "You cannot deactivate or reactivate your own account."
        in app_client.get(own.headers["location"]).text
    )
    assert (
        app_client.get(f"/console/admin/users/{me.id}/deactivate").text.count("another admin must change it")
        == 1
    )
    assert app_client.get(f"/console/admin/users/{uuid.uuid4()}/deactivate").status_code == 404

    # Reactivated: the old token stays revoked; a new sign-in works.
    back = app_client.post(
        f"/console/admin/users/{worker.id}/reactivate", data={"csrf_token": token}, follow_redirects=False
    )
    assert back.headers["location"].endswith("notice=user_reactivated")
    problem(app_client.get("/api/v1/me", headers=worker.headers), 401, "token_revoked")
    again = app_client.post("/api/v1/auth/token", json={"email": worker.email, "password": worker.password})
    assert again.status_code == 200


def test_payout_batches_their_files_and_failed_payouts(
    app_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = runtime_of(app_client)
    # Different rewards: different shelf photos (the same one twice would be a duplicate).
    sent_by, refused_for, waiting_for = (_earn(app_client, reward) for reward in (2_500, 2_510, 2_520))
    for worker, holder in ((sent_by, "Ana Sent"), (refused_for, "Bo Refused"), (waiting_for, "Cy Waiting")):
        answer = app_client.put(
            "/api/v1/me/payout-details", json={"account_holder": holder, "iban": IBAN}, headers=worker.headers
        )
        assert answer.status_code == 200, answer.text
    assert _payout(app_client, sent_by, 2_000, "a1").status_code == 201
    runtime.jobs.join()
    with monkeypatch.context() as patched:
        patched.setattr(runtime, "payout_provider", RefusingBank())
        assert _payout(app_client, refused_for, 1_234, "b1").status_code == 201
        runtime.jobs.join()
    with runtime.db.transaction(read_only=True) as session:
        sent = session.exec(select(Payout).where(Payout.worker_id == sent_by.id)).one()
        refused = session.exec(select(Payout).where(Payout.worker_id == refused_for.id)).one()
    assert sent.status == PayoutStatus.sent.value and sent.batch_key
    assert refused.status == PayoutStatus.failed.value and refused.batch_key
    admin_session(app_client)
    with jobs_held(app_client):
        assert _payout(app_client, waiting_for, 1_500, "c1").status_code == 201
        page = app_client.get("/console/admin/payouts")
        overview = app_client.get("/console/admin").text
    assert page.status_code == 200
    assert '<b id="payouts-requested">1</b>' in overview and '<b id="payouts-failed">1</b>' in overview
    batches = page.text[page.text.index('id="batches-h"') : page.text.index('id="requested-h"')]
    sent_row = batches[batches.index(f'data-batch="{sent.batch_key}"') :].split("</tr>")[0]
    assert (
        "20.00 EUR" in sent_row
        and '<span class="tag sent">sent</span>' in sent_row
        and "Download" in sent_row
    )
    refused_row = batches[batches.index(f'data-batch="{refused.batch_key}"') :].split("</tr>")[0]
    assert '<span class="tag failed">failed</span>' in refused_row and "Download" not in refused_row
    requested = page.text[page.text.index('id="requested-h"') : page.text.index('id="failed-h"')]
    assert waiting_for.email in requested and "Cy Waiting" in requested and "15.00 EUR" in requested
    assert f"…{IBAN[-4:]}" in requested and IBAN not in page.text  # the IBAN's last four only
    failed = page.text[page.text.index('id="failed-h"') :]
    assert refused_for.email in failed and "12.34 EUR" in failed and "account closed" in failed

    link = re.search(r'<a href="(/console/admin/payouts/file\?key=[^"]+)" download>', sent_row)
    assert link is not None
    download = app_client.get(html.unescape(link.group(1)))
    assert download.status_code == 200
    suffix = PurePosixPath(sent.batch_key).suffix
    assert download.headers["content-type"].startswith(
        {".xml": "application/xml", ".csv": "text/csv"}[suffix]
    )
    assert (
        download.headers["content-disposition"]
        == f'attachment; filename="{PurePosixPath(sent.batch_key).name}"'
    )
    assert str(sent.id) in download.text or sent.id.hex in download.text
    assert download.content == runtime.storage.get_bytes(sent.batch_key)
    # Only the keys payouts were sent under, and only files that exist.
    for key in ("exports/some-export.csv", "payouts/batches/none.csv", ""):
        assert app_client.get("/console/admin/payouts/file", params={"key": key}).status_code == 404
    assert app_client.get("/console/admin/payouts/file", params={"key": refused.batch_key}).status_code == 404
    runtime.jobs.join()


def test_an_admin_reverses_a_rejection_with_a_reason_and_a_confirmation(app_client: Any) -> None:
    field = Field(app_client)
    worker, item = flagged(app_client, field, is_mock=True)  # rejected by the checks
    assert (
        app_client.get(f"/api/v1/assignments/{item}", headers=worker.headers).json()["status"] == "rejected"
    )
    _, token = admin_session(app_client)
    overview = app_client.get("/console/admin").text
    assert f'href="/console/admin/rejections/{item}"' in overview and worker.email in overview
    listed = app_client.get("/console/admin/rejections")
    assert f'data-assignment="{item}"' in listed.text and field.campaign["title"] in listed.text
    bad = app_client.get("/console/admin/rejections", params={"assignment": "12-34"})
    assert bad.status_code == 422 and "assignment" in field_errors(bad.text) and 'value="12-34"' in bad.text
    opened = app_client.get(
        "/console/admin/rejections", params={"assignment": f" {item} "}, follow_redirects=False
    )
    assert opened.headers["location"] == f"/console/admin/rejections/{item}"
    confirm = app_client.get(opened.headers["location"])
    assert (
        confirm.status_code == 200
        and "Reverse this rejection?" in confirm.text
        and "by system" in confirm.text
    )

    refused = app_client.post(f"/console/admin/rejections/{item}", data={"csrf_token": token, "reason": "no"})
    assert refused.status_code == 422
    assert set(field_errors(refused.text)) == {"reason", "confirm"}
    assert ">no</textarea>" in refused.text  # the typed reason is kept
    unconfirmed = app_client.post(
        f"/console/admin/rejections/{item}",
        data={"csrf_token": token, "reason": "the mock-location flag was a phone bug"},
    )
    assert unconfirmed.status_code == 422 and set(field_errors(unconfirmed.text)) == {"confirm"}
    assert (
        app_client.get(f"/api/v1/assignments/{item}", headers=worker.headers).json()["status"] == "rejected"
    )

    done = app_client.post(
        f"/console/admin/rejections/{item}",
        data={"csrf_token": token, "reason": "the mock-location flag was a phone bug", "confirm": "yes"},
        follow_redirects=False,
    )
    assert done.headers["location"] == "/console/admin/rejections?notice=rejection_reversed"
    assert "The rejection is reversed" in app_client.get(done.headers["location"]).text
    result = app_client.get(f"/api/v1/assignments/{item}", headers=worker.headers).json()
    assert result["status"] == "approved" and result["payment"]["status"] == "released"
    assert "phone bug" in result["decision"]["reasons"][0]
    # Once reversed it is no longer a rejection: neither listed nor reversed twice.
    assert f'data-assignment="{item}"' not in app_client.get("/console/admin/rejections").text
    again = app_client.post(
        f"/console/admin/rejections/{item}",
        data={"csrf_token": token, "reason": "again and again", "confirm": "yes"},
        follow_redirects=False,
    )
    assert again.headers["location"] == "/console/admin/rejections?notice=not_rejected"
    assert app_client.get(f"/console/admin/rejections/{item}", follow_redirects=False).headers[
        "location"
    ] == ("/console/admin/rejections?notice=not_rejected")
    assert app_client.get(f"/console/admin/rejections/{uuid.uuid4()}").status_code == 404
