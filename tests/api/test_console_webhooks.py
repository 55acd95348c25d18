"""The clients' webhook pages over plain HTTP: the secret shown once, rotation and disabling behind a
confirmation, the delivery log, one delivery, redelivery, field errors, CSRF and owner scoping."""

from __future__ import annotations

import html
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import col, select, update

from fieldcheck.auth.models import Role
from fieldcheck.settings import Settings
from fieldcheck.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.api.test_webhooks import WEBHOOK_SETTINGS, Receiver, deliveries, emit, settled
from tests.support.backends import BackendFactory
from tests.support.console import csrf_of, sign_in
from tests.support.factories import Account, make_account, runtime_of

SECRET = re.compile(r'<code id="secret" class="secret"[^>]*>(whsec_[^<]+)</code>')
ENDPOINT_PAGE = re.compile(r'data-page="/console/webhooks/([0-9a-f-]{36})"')
DELIVERY_ROW = re.compile(r'data-delivery="([0-9a-f-]{36})"')
BODY = re.compile(r'<pre class="body"[^>]*><code>(.*?)</code></pre>', re.S)


@pytest.fixture(
    params=[
        pytest.param("embedded", id="embedded"),
        pytest.param("services", id="services", marks=pytest.mark.services),
    ]
)
def settings(request: pytest.FixtureRequest, backends: BackendFactory) -> Settings:
    # One attempt per delivery: a failure is final at once, and redelivery can be tried.
    return backends.make(request.param, **{**WEBHOOK_SETTINGS, "webhook_max_attempts": 1})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def console_token(client: Any, account: Account) -> str:
    """Sign in to the console; the session's CSRF token."""
    client.cookies.clear()
    assert sign_in(client, account).status_code == 303
    return csrf_of(client.get("/console/webhooks").text)


def create(
    client: Any, token: str | None, url: str, events: list[str], description: str = "", **extra: Any
) -> Any:
    form: dict[str, Any] = {"url": url, "events": events, "description": description, **extra}
    if token is not None:
        form["csrf_token"] = token
    return client.post("/console/webhooks", data=form, follow_redirects=False)


def created(client: Any, token: str, receiver: Receiver, events: list[str] | None = None) -> tuple[str, str]:
    """A new endpoint for the receiver through the console: (its id, the secret the page showed)."""
    answer = create(client, token, receiver.url, events or ["assignment.approved"])
    assert answer.status_code == 201, answer.text
    secret, endpoint = SECRET.search(answer.text), ENDPOINT_PAGE.search(answer.text)
    assert secret is not None and endpoint is not None
    receiver.secret = secret.group(1)
    return endpoint.group(1), secret.group(1)


def stored(client: Any, endpoint_id: str) -> WebhookEndpoint:
    with runtime_of(client).db.transaction(read_only=True) as session:
        endpoint = session.get(WebhookEndpoint, uuid.UUID(endpoint_id))
        assert endpoint is not None
        session.expunge(endpoint)
        return endpoint


def test_the_secret_is_shown_once_and_the_endpoint_listed(app_client: Any, receiver: Receiver) -> None:
    owner = make_account(runtime_of(app_client), Role.client)
    token = console_token(app_client, owner)
    empty = app_client.get("/console/webhooks")
    assert empty.status_code == 200 and "No endpoint yet" in empty.text
    form = app_client.get("/console/webhooks/new")
    assert form.status_code == 200
    for event in ("assignment.approved", "assignment.rejected", "campaign.completed", "export.ready"):
        assert f'value="{event}"' in form.text
    assert 'for="f-url"' in form.text and 'for="f-description"' in form.text

    answer = create(
        app_client, token, receiver.url, ["export.ready", "assignment.approved"], "Head office ERP"
    )
    assert answer.status_code == 201, answer.text
    assert answer.headers["cache-control"] == "no-store"
    assert "shown only this once" in answer.text
    secret = SECRET.search(answer.text)
    endpoint_match = ENDPOINT_PAGE.search(answer.text)
    assert secret is not None and endpoint_match is not None
    endpoint_id = endpoint_match.group(1)
    endpoint = stored(app_client, endpoint_id)
    assert secret.group(1) == endpoint.secret and endpoint.secret.startswith("whsec_")
    assert endpoint.events == ["assignment.approved", "export.ready"]
    assert endpoint.description == "Head office ERP" and endpoint.organization_id == owner.organization_id
    assert 'id="copy-secret"' in answer.text and 'aria-describedby="copy-status"' in answer.text
    assert "/console/static/webhooks.js" in answer.text

    # Never again: not on the endpoint's page (what a reload shows), not in the list.
    again = app_client.get(f"/console/webhooks/{endpoint_id}")
    assert again.status_code == 200 and receiver.url in again.text
    assert endpoint.secret not in again.text and "whsec_" not in again.text
    assert "Nothing sent yet" in again.text
    listed = app_client.get("/console/webhooks")
    assert endpoint.secret not in listed.text
    assert f'href="/console/webhooks/{endpoint_id}"' in listed.text
    for words in ("Visit approved", "Export ready", "enabled", "Head office ERP", "none yet"):
        assert words in listed.text, words
    api = app_client.get(f"/api/v1/webhooks/{endpoint_id}", headers=owner.headers)
    assert api.status_code == 200 and api.json()["active"] is True

    # The secret the page showed is the one that signs: the receiver checks it.
    receiver.secret = secret.group(1)
    assert emit(app_client, owner.organization_id) == 1
    delivery_id = deliveries(app_client, owner, endpoint_id)["items"][0]["id"]
    assert settled(app_client, owner, delivery_id)["status"] == "succeeded"
    assert receiver.requests[0].signature_ok
    listed = app_client.get("/console/webhooks")
    assert "delivered" in listed.text and f"/console/webhooks/deliveries/{delivery_id}" in listed.text


def test_field_errors_are_shown_beside_their_fields_with_the_values_kept(
    app_client: Any, settings: Settings
) -> None:
    owner = make_account(runtime_of(app_client), Role.client)
    token = console_token(app_client, owner)

    wrong_scheme = create(app_client, token, "ftp://example.com/hook", ["export.ready"], "<ERP & co>")
    assert wrong_scheme.status_code == 422
    page = wrong_scheme.text
    assert re.search(r'id="e-url">The URL must start with https:// or http://\.</p>', page), page
    assert 'value="ftp://example.com/hook"' in page and 'aria-invalid="true"' in page
    assert re.search(r'value="export\.ready" id="event-\d+" checked', page)
    assert not re.search(r'value="assignment\.approved" id="event-\d+" checked', page)
    assert 'value="&lt;ERP &amp; co&gt;"' in page  # kept, and escaped
    assert 'role="alert"' in page and 'href="#f-url"' in page

    no_events = create(app_client, token, "https://hooks.example.com/in", [])
    assert no_events.status_code == 422
    assert 'id="e-events">Pick at least one event.</p>' in no_events.text
    assert 'value="https://hooks.example.com/in"' in no_events.text and 'id="e-url"' not in no_events.text

    settings.webhook_allow_private_targets = False
    private = create(app_client, token, "http://10.1.2.3/hook", ["assignment.rejected"])
    assert private.status_code == 422
    assert "webhooks go to public internet addresses only" in private.text
    assert re.search(r'value="assignment\.rejected" id="event-\d+" checked', private.text)

    forged = create(app_client, token, "https://hooks.example.com/in", ["assignment.paid"])
    assert forged.status_code == 422 and 'id="e-events">Unknown event(s) assignment.paid' in forged.text
    assert app_client.get("/api/v1/webhooks", headers=owner.headers).json()["items"] == []


def test_rotating_and_disabling_ask_first(app_client: Any, receiver: Receiver) -> None:
    owner = make_account(runtime_of(app_client), Role.client)
    token = console_token(app_client, owner)
    endpoint_id, first_secret = created(app_client, token, receiver)
    base = f"/console/webhooks/{endpoint_id}"

    confirm = app_client.get(f"{base}/secret")
    assert confirm.status_code == 200 and "Rotate the signing secret?" in confirm.text
    assert f'action="{base}/secret"' in confirm.text
    assert stored(app_client, endpoint_id).secret == first_secret  # asking changes nothing

    rotated = app_client.post(f"{base}/secret", data={"csrf_token": token}, follow_redirects=False)
    assert rotated.status_code == 200, rotated.text
    new_secret = SECRET.search(rotated.text)
    assert new_secret is not None and new_secret.group(1) != first_secret
    assert stored(app_client, endpoint_id).secret == new_secret.group(1)
    assert "The secret is rotated" in rotated.text
    after = app_client.get(base)
    assert new_secret.group(1) not in after.text and "whsec_" not in after.text

    confirm = app_client.get(f"{base}/disable")
    assert confirm.status_code == 200 and "Disable this endpoint?" in confirm.text
    assert stored(app_client, endpoint_id).active
    disabled = app_client.post(f"{base}/disable", data={"csrf_token": token}, follow_redirects=False)
    assert disabled.status_code == 303
    assert disabled.headers["location"] == f"{base}?notice=endpoint_disabled"
    assert not stored(app_client, endpoint_id).active
    shown = app_client.get(disabled.headers["location"])
    assert "The endpoint is disabled" in shown.text and "hook-off" in shown.text
    assert f'href="{base}/secret"' not in shown.text and f'href="{base}/disable"' not in shown.text
    assert "disabled" in app_client.get("/console/webhooks").text

    # A disabled endpoint keeps its secret: no rotation, asked or posted.
    assert (
        app_client.get(f"{base}/secret", follow_redirects=False)
        .headers["location"]
        .endswith("notice=webhook_disabled")
    )
    refused = app_client.post(f"{base}/secret", data={"csrf_token": token}, follow_redirects=False)
    assert refused.status_code == 303 and refused.headers["location"] == f"{base}?notice=webhook_disabled"
    assert stored(app_client, endpoint_id).secret == new_secret.group(1)
    twice = app_client.post(f"{base}/disable", data={"csrf_token": token}, follow_redirects=False)
    assert twice.status_code == 303  # as the API: disabling twice changes nothing


def test_the_delivery_log_a_delivery_and_redelivery(app_client: Any, receiver: Receiver) -> None:
    owner = make_account(runtime_of(app_client), Role.client)
    token = console_token(app_client, owner)
    endpoint_id, _secret = created(app_client, token, receiver)
    receiver.failures = 10_000
    for n in range(27):
        emit(app_client, owner.organization_id, assignment_id=uuid.uuid4(), n=n, note="<b>bold</b>")
    runtime_of(app_client).jobs.join()
    with runtime_of(app_client).db.transaction(read_only=True) as session:
        newest_first = [
            str(d.id)
            for d in session.exec(
                select(WebhookDelivery)
                .where(WebhookDelivery.endpoint_id == uuid.UUID(endpoint_id))
                .order_by(col(WebhookDelivery.created_at).desc(), col(WebhookDelivery.id).desc())
            ).all()
        ]
    assert len(newest_first) == 27
    for delivery_id in newest_first:
        assert settled(app_client, owner, delivery_id)["status"] == "failed"

    base = f"/console/webhooks/{endpoint_id}"
    first = app_client.get(base)
    assert first.status_code == 200
    assert DELIVERY_ROW.findall(first.text) == newest_first[:25]
    assert first.text.count("HTTP 500") == 25 and "the endpoint answered 500" in first.text
    assert 'hook-failed">failed</span>' in first.text
    older = re.search(r'href="(\?cursor=[^"]+)" id="older"', first.text)
    assert older is not None
    second = app_client.get(base + html.unescape(older.group(1)))
    assert DELIVERY_ROW.findall(second.text) == newest_first[25:]
    assert 'id="older"' not in second.text
    assert len(DELIVERY_ROW.findall(app_client.get(f"{base}?status=failed").text)) == 25
    none_delivered = app_client.get(f"{base}?status=succeeded").text
    assert DELIVERY_ROW.findall(none_delivered) == [] and "No delivered delivery." in none_delivered
    assert 'href="/console/webhooks/deliveries/' in first.text

    # One delivery: the body as sent, pretty and escaped; the answer it got.
    delivery_id = newest_first[0]
    page = app_client.get(f"/console/webhooks/deliveries/{delivery_id}")
    assert page.status_code == 200
    body = BODY.search(page.text)
    assert body is not None
    assert "<b>" not in body.group(1) and "&lt;b&gt;bold&lt;/b&gt;" in body.group(1)
    sent = json.loads(html.unescape(body.group(1)))
    assert sent["id"] == delivery_id and sent["type"] == "assignment.approved" and sent["data"]["n"] == 26
    assert html.unescape(body.group(1)).startswith('{\n  "id": ')  # indented
    assert "HTTP 500" in page.text and "the endpoint answered 500" in page.text
    assert 'id="redeliver"' in page.text

    # Redeliver: one more attempt, the notice says so, the page then shows the outcome.
    receiver.failures = 0
    again = app_client.post(
        f"/console/webhooks/deliveries/{delivery_id}/redeliver",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert again.status_code == 303
    assert (
        again.headers["location"] == f"/console/webhooks/deliveries/{delivery_id}?notice=redelivery_started"
    )
    assert "Sent again" in app_client.get(again.headers["location"]).text
    delivered = settled(app_client, owner, delivery_id)
    assert delivered["status"] == "succeeded" and delivered["attempts"] == 2
    page = app_client.get(f"/console/webhooks/deliveries/{delivery_id}")
    assert "HTTP 200" in page.text and 'hook-succeeded">delivered</span>' in page.text
    assert receiver.requests[-1].headers["fieldcheck-delivery"] == delivery_id
    assert receiver.requests[-1].signature_ok

    # A delivery still being attempted cannot be sent again: a notice, not an error page.
    with runtime_of(app_client).db.transaction() as session:
        session.exec(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.id) == uuid.UUID(newest_first[1]))
            .values(status="pending", next_attempt_at=None)
        )
    waiting = app_client.get(f"/console/webhooks/deliveries/{newest_first[1]}")
    assert 'id="redeliver"' not in waiting.text and "Still being attempted" in waiting.text
    busy = app_client.post(
        f"/console/webhooks/deliveries/{newest_first[1]}/redeliver",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert busy.status_code == 303 and busy.headers["location"].endswith("notice=delivery_in_progress")


def test_forms_without_the_sessions_token_are_refused(app_client: Any, receiver: Receiver) -> None:
    owner = make_account(runtime_of(app_client), Role.client)
    token = console_token(app_client, owner)
    endpoint_id, secret = created(app_client, token, receiver)
    emit(app_client, owner.organization_id)
    delivery_id = deliveries(app_client, owner, endpoint_id)["items"][0]["id"]
    settled(app_client, owner, delivery_id)
    attempts = len(receiver.requests)

    for form in ({}, {"csrf_token": "not-the-token"}):
        assert create(app_client, None, receiver.url, ["export.ready"], **form).status_code == 403
        for path in (
            f"/console/webhooks/{endpoint_id}/secret",
            f"/console/webhooks/{endpoint_id}/disable",
            f"/console/webhooks/deliveries/{delivery_id}/redeliver",
        ):
            refused = app_client.post(path, data=form, follow_redirects=False)
            assert refused.status_code == 403, path
            assert "This form is stale" in refused.text
    endpoint = stored(app_client, endpoint_id)
    assert endpoint.secret == secret and endpoint.active
    assert len(app_client.get("/api/v1/webhooks", headers=owner.headers).json()["items"]) == 1
    runtime_of(app_client).jobs.join()
    assert len(receiver.requests) == attempts


def test_other_organizations_and_other_roles_get_nothing(app_client: Any, receiver: Receiver) -> None:
    runtime = runtime_of(app_client)
    owner = make_account(runtime, Role.client)
    endpoint_id, secret = created(app_client, console_token(app_client, owner), receiver)
    emit(app_client, owner.organization_id)
    delivery_id = deliveries(app_client, owner, endpoint_id)["items"][0]["id"]
    settled(app_client, owner, delivery_id)

    stranger = make_account(runtime, Role.client)
    token = console_token(app_client, stranger)
    listed = app_client.get("/console/webhooks")
    assert listed.status_code == 200 and receiver.url not in listed.text and "No endpoint yet" in listed.text
    base = f"/console/webhooks/{endpoint_id}"
    for path in (base, f"{base}/secret", f"{base}/disable", f"/console/webhooks/deliveries/{delivery_id}"):
        answer = app_client.get(path, follow_redirects=False)
        assert answer.status_code == 404 and "Not found" in answer.text, path
        assert receiver.url not in answer.text
    for path in (
        f"{base}/secret",
        f"{base}/disable",
        f"/console/webhooks/deliveries/{delivery_id}/redeliver",
    ):
        answer = app_client.post(path, data={"csrf_token": token}, follow_redirects=False)
        assert answer.status_code == 404, path
        assert secret not in answer.text
    assert app_client.get(f"/console/webhooks/{uuid.uuid4()}").status_code == 404
    endpoint = stored(app_client, endpoint_id)
    assert endpoint.secret == secret and endpoint.active  # untouched
    assert len(receiver.requests) == 1  # no redelivery either

    for role in (Role.reviewer, Role.admin):
        other = make_account(runtime, role)
        app_client.cookies.clear()
        assert sign_in(app_client, other).status_code == 303
        refused = app_client.get("/console/webhooks")
        assert refused.status_code == 403 and "this page is not for your account" in refused.text.lower()
        assert app_client.get(base).status_code == 403
    app_client.cookies.clear()
    worker = make_account(runtime, Role.worker)
    assert sign_in(app_client, worker).status_code == 403
    signed_out = app_client.get("/console/webhooks/new", follow_redirects=False)
    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == "/console/login?next=/console/webhooks/new"
