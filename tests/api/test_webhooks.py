"""Webhooks: registration rules, signed deliveries, retries with backoff, the log, redelivery."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from typing import Any

import pytest
from sqlalchemy import event, func
from sqlmodel import select

from fieldcheck.auth.models import Role
from fieldcheck.jobs import OutboxMessage
from fieldcheck.settings import Settings
from fieldcheck.webhooks import service
from fieldcheck.webhooks.models import WebhookDelivery
from fieldcheck.webhooks.sending import body_bytes
from fieldcheck.webhooks.targets import is_public
from tests.support.backends import BackendFactory
from tests.support.factories import Account, make_account, problem, runtime_of

BACKOFF_BASE_S = 0.3
MAX_ATTEMPTS = 4
WEBHOOK_SETTINGS: dict[str, Any] = {
    # The receiver below listens on loopback, which real deployments refuse.
    "webhook_allow_private_targets": True,
    "webhook_backoff_base_s": BACKOFF_BASE_S,
    "webhook_backoff_max_s": 5.0,
    "webhook_max_attempts": MAX_ATTEMPTS,
    "webhook_timeout_s": 2.0,
}


@pytest.fixture(
    params=[
        pytest.param("embedded", id="embedded"),
        pytest.param("services", id="services", marks=pytest.mark.services),
    ]
)
def settings(request: pytest.FixtureRequest, backends: BackendFactory) -> Settings:
    return backends.make(request.param, **WEBHOOK_SETTINGS)


# A receiver on loopback --------------------------------------------------------------------------
@dataclass
class Received:
    at: float
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool

    @property
    def payload(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.body)
        return value


@dataclass
class Receiver:
    """A client's webhook endpoint: checks every signature, answers `failing_status` to the first
    `failures` requests and 200 afterwards, and records what came."""

    failures: int = 0
    failing_status: int = 500
    delay_s: float = 0.0
    secret: str = ""
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received = Received(
                    at=time.monotonic(),
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    signature_ok=verify_signature(
                        receiver.secret, self.headers.get("Fieldcheck-Signature"), body
                    ),
                )
                with receiver.lock:
                    receiver.requests.append(received)
                    failing = len(receiver.requests) <= receiver.failures
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                status = receiver.failing_status if failing else 200
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "2")
                self.end_headers()
                with contextlib.suppress(OSError):  # fieldcheck does not read answers (or gave up)
                    self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/fieldcheck?source=test"

    def count(self) -> int:
        with self.lock:
            return len(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def verify_signature(secret: str, header: str | None, body: bytes, tolerance_s: int = 300) -> bool:
    """What a client does (the README's snippet): recompute the HMAC, compare in constant time."""
    if not header:
        return False
    parts = dict(item.split("=", 1) for item in header.split(","))
    timestamp = int(parts["t"])
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return abs(time.time() - timestamp) <= tolerance_s and hmac.compare_digest(expected, parts["v1"])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


# Helpers --------------------------------------------------------------------------------------
def register(client: Any, account: Account, url: str, events: list[str] | None = None, **fields: Any) -> Any:
    return client.post(
        "/api/v1/webhooks",
        json={"url": url, "events": ["assignment.approved"] if events is None else events, **fields},
        headers=account.headers,
    )


def registered(
    client: Any, account: Account, receiver: Receiver, events: list[str] | None = None
) -> dict[str, Any]:
    answer = register(client, account, receiver.url, events)
    assert answer.status_code == 201, answer.text
    endpoint: dict[str, Any] = answer.json()
    receiver.secret = endpoint["secret"]
    return endpoint


def emit(
    client: Any, organization_id: uuid.UUID | None, event_name: str = "assignment.approved", **data: Any
) -> int:
    assert organization_id is not None
    with runtime_of(client).db.transaction() as session:
        return service.emit(session, organization_id, event_name, data or {"assignment_id": uuid.uuid4()})


def deliveries(client: Any, account: Account, endpoint_id: str, **params: Any) -> dict[str, Any]:
    answer = client.get(f"/api/v1/webhooks/{endpoint_id}/deliveries", params=params, headers=account.headers)
    assert answer.status_code == 200, answer.text
    page: dict[str, Any] = answer.json()
    return page


def settled(client: Any, account: Account, delivery_id: str, timeout_s: float = 30) -> dict[str, Any]:
    """The delivery once it is no longer pending."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = client.get(f"/api/v1/webhooks/deliveries/{delivery_id}", headers=account.headers)
        assert answer.status_code == 200, answer.text
        delivery: dict[str, Any] = answer.json()
        if delivery["status"] != "pending":
            return delivery
        assert time.monotonic() < deadline, delivery
        time.sleep(0.05)


def only_delivery(client: Any, account: Account, endpoint_id: str) -> dict[str, Any]:
    items = deliveries(client, account, endpoint_id)["items"]
    assert len(items) == 1, items
    return settled(client, account, items[0]["id"])


# Tests ----------------------------------------------------------------------------------------
def test_register_list_rotate_and_disable(app_client: Any, receiver: Receiver) -> None:
    client = make_account(runtime_of(app_client), Role.client)
    answer = register(
        app_client,
        client,
        receiver.url,
        ["export.ready", "assignment.approved", "export.ready"],
        description=" ERP ",
    )
    assert answer.status_code == 201, answer.text
    endpoint = answer.json()
    assert endpoint["secret"].startswith("whsec_") and len(endpoint["secret"]) > 40
    assert endpoint["events"] == ["assignment.approved", "export.ready"]
    assert endpoint["description"] == "ERP"
    assert endpoint["active"] is True and endpoint["disabled_at"] is None

    listed = app_client.get("/api/v1/webhooks", headers=client.headers).json()
    assert [e["id"] for e in listed["items"]] == [endpoint["id"]]
    assert "secret" not in listed["items"][0]  # shown when made and when rotated, never again
    one = app_client.get(f"/api/v1/webhooks/{endpoint['id']}", headers=client.headers).json()
    assert "secret" not in one and one["url"] == receiver.url

    rotated = app_client.post(f"/api/v1/webhooks/{endpoint['id']}/secret", headers=client.headers)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["secret"].startswith("whsec_") and rotated.json()["secret"] != endpoint["secret"]
    receiver.secret = rotated.json()["secret"]
    assert emit(app_client, client.organization_id) == 1
    assert only_delivery(app_client, client, endpoint["id"])["status"] == "succeeded"
    assert receiver.requests[0].signature_ok  # signed with the new secret

    disabled = app_client.delete(f"/api/v1/webhooks/{endpoint['id']}", headers=client.headers)
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["active"] is False and disabled.json()["disabled_at"]
    again = app_client.delete(f"/api/v1/webhooks/{endpoint['id']}", headers=client.headers)
    assert again.status_code == 200 and again.json()["disabled_at"] == disabled.json()["disabled_at"]
    problem(
        app_client.post(f"/api/v1/webhooks/{endpoint['id']}/secret", headers=client.headers),
        409,
        "webhook_disabled",
    )
    assert emit(app_client, client.organization_id) == 0  # nothing goes to a disabled endpoint
    assert len(deliveries(app_client, client, endpoint["id"])["items"]) == 1  # the log stays readable


def test_a_delivery_is_signed_and_retried_with_growing_delays(app_client: Any, receiver: Receiver) -> None:
    client = make_account(runtime_of(app_client), Role.client)
    endpoint = registered(app_client, client, receiver)
    receiver.failures = 2
    assignment_id = uuid.uuid4()
    assert (
        emit(
            app_client,
            client.organization_id,
            "assignment.approved",
            assignment_id=assignment_id,
            reward_cents=500,
        )
        == 1
    )

    delivery = only_delivery(app_client, client, endpoint["id"])
    assert delivery["status"] == "succeeded"
    assert delivery["attempts"] == 3
    assert delivery["last_status_code"] == 200 and delivery["last_error"] is None
    assert delivery["delivered_at"] and delivery["next_attempt_at"] is None

    assert len(receiver.requests) == 3
    first = receiver.requests[0]
    assert all(r.signature_ok for r in receiver.requests)
    assert {r.body for r in receiver.requests} == {first.body}  # the same body every time
    assert first.headers["content-type"] == "application/json"
    assert first.headers["user-agent"] == "fieldcheck-webhooks/1"
    assert first.headers["fieldcheck-event"] == "assignment.approved"
    assert first.headers["fieldcheck-delivery"] == delivery["id"]
    assert first.path == "/hooks/fieldcheck?source=test"
    assert first.headers["host"] == f"127.0.0.1:{receiver.server.server_address[1]}"
    body = first.payload
    assert body == {
        "id": delivery["id"],
        "type": "assignment.approved",
        "created_at": body["created_at"],
        "data": {"assignment_id": str(assignment_id), "reward_cents": 500},
    }
    assert body == delivery["payload"]
    assert first.body == body_bytes(body)  # compact JSON

    # Exponential backoff: base, then twice the base (never sooner; jitter and a busy machine
    # only add, so the observed waits are compared with these floors, not with each other).
    waits = [b.at - a.at for a, b in zip(receiver.requests, receiver.requests[1:], strict=False)]
    assert waits[0] >= BACKOFF_BASE_S and waits[1] >= 2 * BACKOFF_BASE_S, waits


def test_giving_up_after_the_last_attempt_then_redelivering(app_client: Any, receiver: Receiver) -> None:
    client = make_account(runtime_of(app_client), Role.client)
    endpoint = registered(app_client, client, receiver)
    receiver.failures = 1000
    emit(app_client, client.organization_id)

    failed = only_delivery(app_client, client, endpoint["id"])
    assert failed["status"] == "failed"
    assert failed["attempts"] == MAX_ATTEMPTS == receiver.count()
    assert failed["last_status_code"] == 500
    assert failed["last_error"] == "the endpoint answered 500"
    assert failed["next_attempt_at"] is None and failed["delivered_at"] is None and failed["last_attempt_at"]
    waits = [b.at - a.at for a, b in zip(receiver.requests, receiver.requests[1:], strict=False)]
    assert [w >= BACKOFF_BASE_S * 2**i for i, w in enumerate(waits)] == [True] * (MAX_ATTEMPTS - 1), waits

    receiver.failures = 0
    again = app_client.post(f"/api/v1/webhooks/deliveries/{failed['id']}/redeliver", headers=client.headers)
    assert again.status_code == 202, again.text
    assert again.json()["status"] == "pending" and again.json()["id"] == failed["id"]
    delivered = settled(app_client, client, failed["id"])
    assert delivered["status"] == "succeeded" and delivered["attempts"] == MAX_ATTEMPTS + 1
    assert delivered["last_status_code"] == 200 and delivered["last_error"] is None
    assert receiver.count() == MAX_ATTEMPTS + 1
    assert receiver.requests[-1].headers["fieldcheck-delivery"] == failed["id"]  # receivers deduplicate on it
    assert receiver.requests[-1].body == receiver.requests[0].body

    # A redelivery is one attempt: when it fails, the delivery fails again at once.
    receiver.failures = 10_000
    app_client.post(f"/api/v1/webhooks/deliveries/{failed['id']}/redeliver", headers=client.headers)
    once = settled(app_client, client, failed["id"])
    assert once["status"] == "failed" and once["attempts"] == MAX_ATTEMPTS + 2
    assert once["delivered_at"] == delivered["delivered_at"]

    app_client.delete(f"/api/v1/webhooks/{endpoint['id']}", headers=client.headers)
    problem(
        app_client.post(f"/api/v1/webhooks/deliveries/{failed['id']}/redeliver", headers=client.headers),
        409,
        "webhook_disabled",
    )


def test_a_pending_delivery_cannot_be_redelivered(
    app_client: Any, receiver: Receiver, settings: Settings
) -> None:
    settings.webhook_backoff_base_s = 1.0
    client = make_account(runtime_of(app_client), Role.client)
    endpoint = registered(app_client, client, receiver)
    receiver.failures = 1
    emit(app_client, client.organization_id)
    delivery_id = deliveries(app_client, client, endpoint["id"])["items"][0]["id"]
    deadline = time.monotonic() + 30
    while (
        waiting := app_client.get(f"/api/v1/webhooks/deliveries/{delivery_id}", headers=client.headers).json()
    )["attempts"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert waiting["status"] == "pending" and waiting["last_error"] == "the endpoint answered 500"
    assert waiting["next_attempt_at"] > waiting["last_attempt_at"]
    body = problem(
        app_client.post(f"/api/v1/webhooks/deliveries/{delivery_id}/redeliver", headers=client.headers),
        409,
        "delivery_in_progress",
    )
    assert body["next_attempt_at"]
    assert settled(app_client, client, delivery_id)["attempts"] == 2


def test_redirects_are_failures_and_are_not_followed(
    app_client: Any, receiver: Receiver, settings: Settings
) -> None:
    settings.webhook_max_attempts = 1
    client = make_account(runtime_of(app_client), Role.client)
    endpoint = registered(app_client, client, receiver)
    receiver.failures, receiver.failing_status = 1000, 302
    emit(app_client, client.organization_id)
    delivery = only_delivery(app_client, client, endpoint["id"])
    assert delivery["status"] == "failed" and delivery["attempts"] == 1
    assert delivery["last_status_code"] == 302
    assert "redirects are not followed" in delivery["last_error"]
    assert [r.path for r in receiver.requests] == ["/hooks/fieldcheck?source=test"]


def test_a_slow_endpoint_times_out(app_client: Any, receiver: Receiver, settings: Settings) -> None:
    settings.webhook_max_attempts = 1
    settings.webhook_timeout_s = 0.3
    client = make_account(runtime_of(app_client), Role.client)
    endpoint = registered(app_client, client, receiver)
    receiver.delay_s = 1.5
    emit(app_client, client.organization_id)
    delivery = only_delivery(app_client, client, endpoint["id"])
    assert delivery["status"] == "failed"
    assert delivery["last_status_code"] is None
    assert delivery["last_error"] == "no answer within 0.3 s"


def test_private_targets_are_refused_at_registration(app_client: Any, settings: Settings) -> None:
    settings.webhook_allow_private_targets = False
    client = make_account(runtime_of(app_client), Role.client)
    for url in (
        "http://127.0.0.1:8080/hook",
        "http://localhost:8080/hook",  # a name resolving to loopback
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fe80::1]/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://100.64.0.1/hook",
        "http://2130706433/hook",  # 127.0.0.1 as one number
    ):
        body = problem(register(app_client, client, url), 422, "private_webhook_target")
        assert [e["field"] for e in body["errors"]] == ["url"], url

    for url in (
        "ftp://example.com/hook",
        "https://user:pw@example.com/hook",
        "example.com/hook",
        "http:///hook",
    ):
        body = problem(register(app_client, client, url), 422, "invalid_webhook_url")
        assert [e["field"] for e in body["errors"]] == ["url"], url
    problem(
        register(app_client, client, "https://no-such-host.invalid/hook"), 422, "unresolvable_webhook_host"
    )
    body = problem(
        register(app_client, client, "http://127.0.0.1/hook", ["assignment.approved", "assignment.paid"]),
        422,
        "unknown_webhook_events",
    )
    assert [e["field"] for e in body["errors"]] == ["events"]
    problem(register(app_client, client, "http://127.0.0.1/hook", []), 400, "validation_error")
    assert app_client.get("/api/v1/webhooks", headers=client.headers).json()["items"] == []


def test_the_address_is_checked_again_before_each_attempt(
    app_client: Any, receiver: Receiver, settings: Settings
) -> None:
    client = make_account(runtime_of(app_client), Role.client)
    endpoint = registered(app_client, client, receiver)  # allowed while the setting is on
    settings.webhook_allow_private_targets = False  # now as if the name had been re-pointed inward
    settings.webhook_max_attempts = 1
    emit(app_client, client.organization_id)
    delivery = only_delivery(app_client, client, endpoint["id"])
    assert delivery["status"] == "failed"
    assert delivery["last_error"].startswith("not sent: the host 127.0.0.1 points at 127.0.0.1")
    assert receiver.count() == 0


def test_public_addresses(app_client: Any) -> None:
    for public in ("8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"):
        assert is_public(ip_address(public)), public
    for private in (
        "127.0.0.2",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.1.1",
        "100.64.1.1",
        "0.0.0.0",  # noqa: S104 (an address checked, not bound)
        "255.255.255.255",
        "240.0.0.1",
        "224.0.0.251",
        "198.18.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:10.0.0.1",
        "2002:a00:1::1",
        "64:ff9b::a00:1",
        "2001:db8::1",
    ):
        assert not is_public(ip_address(private)), private


def test_another_organization_gets_404(app_client: Any, receiver: Receiver) -> None:
    runtime = runtime_of(app_client)
    owner = make_account(runtime, Role.client)
    other = make_account(runtime, Role.client)
    endpoint = registered(app_client, owner, receiver)
    emit(app_client, owner.organization_id)
    delivery = only_delivery(app_client, owner, endpoint["id"])

    base = f"/api/v1/webhooks/{endpoint['id']}"
    problem(app_client.get(base, headers=other.headers), 404, "webhook_not_found")
    problem(app_client.get(f"{base}/deliveries", headers=other.headers), 404, "webhook_not_found")
    problem(app_client.post(f"{base}/secret", headers=other.headers), 404, "webhook_not_found")
    problem(app_client.delete(base, headers=other.headers), 404, "webhook_not_found")
    problem(app_client.get(f"/api/v1/webhooks/deliveries/{delivery['id']}", headers=other.headers), 404)
    problem(
        app_client.post(f"/api/v1/webhooks/deliveries/{delivery['id']}/redeliver", headers=other.headers),
        404,
        "delivery_not_found",
    )
    assert app_client.get("/api/v1/webhooks", headers=other.headers).json()["items"] == []
    assert app_client.get(base, headers=owner.headers).json()["active"] is True  # untouched
    assert emit(app_client, other.organization_id) == 0

    worker = make_account(runtime, Role.worker)
    problem(app_client.get("/api/v1/webhooks", headers=worker.headers), 403, "wrong_role")


def test_emit_without_endpoints_is_one_query_and_writes_nothing(app_client: Any, receiver: Receiver) -> None:
    runtime = runtime_of(app_client)
    client = make_account(runtime, Role.client)
    lonely = make_account(runtime, Role.client)
    registered(app_client, client, receiver, ["export.ready"])

    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    with runtime.db.transaction() as session:
        outbox_before = session.exec(select(func.count()).select_from(OutboxMessage)).one()
        event.listen(runtime.db.engine, "before_cursor_execute", count)
        try:
            assert service.emit(session, lonely.organization_id, "assignment.approved", {"x": 1}) == 0  # type: ignore[arg-type]
            assert service.emit(session, client.organization_id, "campaign.completed", {"x": 1}) == 0  # type: ignore[arg-type]
        finally:
            event.remove(runtime.db.engine, "before_cursor_execute", count)
        assert len([s for s in statements if "webhook_endpoints" in s]) == 2
        assert len(statements) == 2, statements
        assert session.exec(select(func.count()).select_from(WebhookDelivery)).one() == 0
        assert session.exec(select(func.count()).select_from(OutboxMessage)).one() == outbox_before
    with pytest.raises(ValueError, match=r"assignment\.paid"):
        emit(app_client, client.organization_id, "assignment.paid")
    assert receiver.count() == 0


def test_the_delivery_log_is_paginated_newest_first(app_client: Any, receiver: Receiver) -> None:
    client = make_account(runtime_of(app_client), Role.client)
    endpoint = registered(app_client, client, receiver, ["campaign.completed", "export.ready"])
    for n in range(3):
        assert emit(app_client, client.organization_id, "export.ready", n=n) == 1
    emit(app_client, client.organization_id, "campaign.completed", n=3)
    runtime_of(app_client).jobs.join()

    first = deliveries(app_client, client, endpoint["id"], limit=3)
    assert [d["payload"]["data"]["n"] for d in first["items"]] == [3, 2, 1]
    assert first["next_cursor"]
    rest = deliveries(app_client, client, endpoint["id"], limit=3, cursor=first["next_cursor"])
    assert [d["payload"]["data"]["n"] for d in rest["items"]] == [0] and rest["next_cursor"] is None
    for item in [*first["items"], *rest["items"]]:
        assert settled(app_client, client, item["id"])["status"] == "succeeded"
    succeeded = deliveries(app_client, client, endpoint["id"], status="succeeded")["items"]
    assert len(succeeded) == 4
    assert deliveries(app_client, client, endpoint["id"], status="failed")["items"] == []
    assert sorted(r.headers["fieldcheck-event"] for r in receiver.requests) == [
        "campaign.completed",
        *["export.ready"] * 3,
    ]
