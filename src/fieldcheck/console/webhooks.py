"""The clients' webhook pages: endpoints (create, rotate, disable), the delivery log, redelivery.

Every page calls the webhook service with the signed-in client's organization, as the API does:
another organization's endpoint or delivery is "not found", and what a page can do is what the
API allows. A signing secret is shown once, on the page that answers the POST which made it
(never through a redirect, a URL or a later page); the page's script then swaps its history entry
for the endpoint's plain page, so reloading it neither shows the secret again nor posts twice.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from litestar import Controller, Request
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template
from pydantic import ValidationError
from sqlmodel import Session

from fieldcheck.auth.models import Role
from fieldcheck.console.forms import Form, many, one
from fieldcheck.console.pages import NOTICES, check_csrf, page, redirect, viewer_of
from fieldcheck.console.sessions import Viewer
from fieldcheck.db import utcnow
from fieldcheck.errors import Conflict, Unprocessable
from fieldcheck.settings import Settings
from fieldcheck.web import get, post
from fieldcheck.webhooks import service
from fieldcheck.webhooks.models import DeliveryStatus, WebhookEndpoint, WebhookEvent
from fieldcheck.webhooks.schemas import WebhookEndpointCreate
from fieldcheck.webhooks.targets import MAX_URL_LENGTH

# The same form convention as console.controllers (which imports this module, so it cannot be
# imported from there without a cycle).

ENDPOINTS_PER_PAGE = 50
DELIVERIES_PER_PAGE = 25
MAX_DESCRIPTION_LENGTH = 500
# A delivery page refreshes itself while an attempt is due this soon (a redelivery: at once), not
# while it waits for a retry hours away.
REFRESH_WHEN_DUE_WITHIN = timedelta(seconds=60)
REFRESH_AFTER_S = 2

# What each event means, in the words of the people who pick them: (short name, when it is sent).
EVENT_TEXT: dict[WebhookEvent, tuple[str, str]] = {
    WebhookEvent.assignment_approved: (
        "Visit approved",
        "A worker's visit was approved (automatically or by a reviewer) and paid.",
    ),
    WebhookEvent.assignment_rejected: (
        "Visit rejected",
        "A worker's visit was rejected, with the reasons.",
    ),
    WebhookEvent.campaign_completed: (
        "Campaign completed",
        "Every store of a campaign has its approved visits, or the campaign was closed.",
    ),
    WebhookEvent.campaign_pay_below_floor: (
        "Campaign paused for its pay",
        "The platform paused a campaign: the measured pay per hour fell below the floor.",
    ),
    WebhookEvent.export_ready: (
        "Export ready",
        "An export (CSV, ZIP of photos or report) is built and can be downloaded.",
    ),
}

# A delivery's status as the log says it.
STATUS_TEXT = {
    DeliveryStatus.pending.value: "pending",
    DeliveryStatus.succeeded.value: "delivered",
    DeliveryStatus.failed.value: "failed",
}

# Field errors the form's own validation can give, in plain words (the service's come with theirs).
FORM_ERRORS = {
    "url": f"Give the full address of the receiving system, starting with https:// "
    f"(at most {MAX_URL_LENGTH} characters).",
    "events": "Pick at least one event.",
    "description": f"The description may be at most {MAX_DESCRIPTION_LENGTH} characters.",
}


def _sentence(message: str) -> str:
    message = message.strip()
    return message[:1].upper() + message[1:] + ("" if message.endswith((".", "!", "?")) else ".")


def event_choices() -> list[dict[str, str]]:
    """Every event the API accepts, in its order; one added without words here still shows."""
    return [
        {
            "value": event.value,
            "label": EVENT_TEXT.get(event, (event.value, ""))[0],
            "help": EVENT_TEXT.get(event, ("", ""))[1],
        }
        for event in WebhookEvent
    ]


def event_label(name: str) -> str:
    """The event's short name for people; its API name when it has none."""
    try:
        return EVENT_TEXT[WebhookEvent(name)][0]
    except (ValueError, KeyError):
        return name


def _form_errors(exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "url"
        errors.setdefault(
            field if field in FORM_ERRORS else "url", FORM_ERRORS.get(field, FORM_ERRORS["url"])
        )
    return errors


def _service_errors(exc: Unprocessable) -> dict[str, str]:
    errors: dict[str, str] = {}
    for item in exc.extra.get("errors") or []:
        field = str(item.get("field", ""))
        errors.setdefault(field if field in FORM_ERRORS else "url", _sentence(str(item.get("message", ""))))
    return errors or {"url": _sentence(exc.detail)}


class WebhookConsoleController(Controller):
    path = "/console/webhooks"
    include_in_schema = False

    @get("/")
    def endpoints(self, request: Request[Any, Any, Any], db_session: NamedDependency[Session]) -> Template:
        viewer = viewer_of(request, db_session, Role.client)
        organization_id = viewer.principal.require_organization()
        listed, next_cursor = service.list_endpoints(
            db_session, organization_id, limit=ENDPOINTS_PER_PAGE, cursor=request.query_params.get("cursor")
        )
        return page(
            "webhooks.html.j2",
            request,
            viewer,
            endpoints=listed,
            last=service.last_deliveries(db_session, organization_id, [e.id for e in listed]),
            next_cursor=next_cursor,
            status_text=STATUS_TEXT,
            event_label=event_label,
        )

    @get("/new")
    def new_endpoint(self, request: Request[Any, Any, Any], db_session: NamedDependency[Session]) -> Template:
        viewer = viewer_of(request, db_session, Role.client)
        viewer.principal.require_organization()
        return self._form(request, viewer, values={"url": "", "description": "", "events": []}, errors={})

    def _form(
        self,
        request: Request[Any, Any, Any],
        viewer: Viewer,
        *,
        values: dict[str, Any],
        errors: dict[str, str],
        status: int = 200,
    ) -> Template:
        return page(
            "webhooks_new.html.j2",
            request,
            viewer,
            status_code=status,
            values=values,
            errors=errors,
            events=event_choices(),
            max_url_length=MAX_URL_LENGTH,
            max_description_length=MAX_DESCRIPTION_LENGTH,
        )

    @post("/", status_code=201)
    def create(
        self,
        request: Request[Any, Any, Any],
        data: Form,
        db_session: NamedDependency[Session],
        settings: NamedDependency[Settings],
    ) -> Template:
        """Register the endpoint; the answer is its page with the secret, the only time it shows."""
        viewer = viewer_of(request, db_session, Role.client)
        check_csrf(viewer, request, data)
        organization_id = viewer.principal.require_organization()
        url, events, description = one(data, "url").strip(), many(data, "events"), one(data, "description")
        values: dict[str, Any] = {"url": url, "events": events, "description": description}
        try:
            wanted = WebhookEndpointCreate(url=url, events=events, description=description.strip() or None)
        except ValidationError as exc:
            return self._form(request, viewer, values=values, errors=_form_errors(exc), status=422)
        try:
            with db_session.begin_nested():
                endpoint = service.register_endpoint(db_session, organization_id, wanted, settings)
        except Unprocessable as exc:
            return self._form(request, viewer, values=values, errors=_service_errors(exc), status=422)
        return self._endpoint_page(
            request,
            viewer,
            db_session,
            endpoint,
            secret=endpoint.secret,
            notice="webhook_created",
            status=201,
        )

    @get("/{webhook_id:uuid}")
    def endpoint(
        self,
        request: Request[Any, Any, Any],
        webhook_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
    ) -> Template:
        viewer = viewer_of(request, db_session, Role.client)
        endpoint = service.get_endpoint(db_session, viewer.principal.require_organization(), webhook_id)
        return self._endpoint_page(request, viewer, db_session, endpoint)

    def _endpoint_page(
        self,
        request: Request[Any, Any, Any],
        viewer: Viewer,
        db_session: Session,
        endpoint: WebhookEndpoint,
        *,
        secret: str | None = None,
        notice: str | None = None,
        status: int = 200,
    ) -> Template:
        """The endpoint and its delivery log (newest first, filtered by status, paged)."""
        wanted = request.query_params.get("status") or ""
        status_filter = wanted if wanted in STATUS_TEXT else None
        deliveries, next_cursor = service.list_deliveries(
            db_session,
            endpoint.organization_id,
            endpoint.id,
            status=status_filter,
            limit=DELIVERIES_PER_PAGE,
            cursor=request.query_params.get("cursor") if secret is None else None,
        )
        extra: dict[str, Any] = {"notice": NOTICES[notice]} if notice else {}
        return page(
            "webhooks_endpoint.html.j2",
            request,
            viewer,
            status_code=status,
            endpoint=endpoint,
            secret=secret,
            deliveries=deliveries,
            next_cursor=next_cursor,
            first_page=not request.query_params.get("cursor"),
            status_filter=status_filter,
            status_text=STATUS_TEXT,
            event_label=event_label,
            **extra,
        )

    @get("/{webhook_id:uuid}/secret")
    def confirm_rotation(
        self,
        request: Request[Any, Any, Any],
        webhook_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
    ) -> Template | Redirect:
        return self._confirmation(request, webhook_id, db_session, "rotate")

    @post("/{webhook_id:uuid}/secret", status_code=200)
    def rotate(
        self,
        request: Request[Any, Any, Any],
        webhook_id: FromPath[uuid.UUID],
        data: Form,
        db_session: NamedDependency[Session],
    ) -> Template | Redirect:
        """A new secret at once; the answer is the endpoint's page with it, the only time it shows."""
        viewer = viewer_of(request, db_session, Role.client)
        check_csrf(viewer, request, data)
        try:
            with db_session.begin_nested():
                endpoint = service.rotate_secret(
                    db_session, viewer.principal.require_organization(), webhook_id
                )
        except Conflict as exc:
            return redirect(
                f"/console/webhooks/{webhook_id}", notice=exc.code if exc.code in NOTICES else None
            )
        return self._endpoint_page(
            request, viewer, db_session, endpoint, secret=endpoint.secret, notice="secret_rotated"
        )

    @get("/{webhook_id:uuid}/disable")
    def confirm_disabling(
        self,
        request: Request[Any, Any, Any],
        webhook_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
    ) -> Template | Redirect:
        return self._confirmation(request, webhook_id, db_session, "disable")

    def _confirmation(
        self, request: Request[Any, Any, Any], webhook_id: uuid.UUID, db_session: Session, action: str
    ) -> Template | Redirect:
        """The page that asks before rotating or disabling: only for an endpoint still enabled."""
        viewer = viewer_of(request, db_session, Role.client)
        endpoint = service.get_endpoint(db_session, viewer.principal.require_organization(), webhook_id)
        if not endpoint.active:
            return redirect(f"/console/webhooks/{endpoint.id}", notice="webhook_disabled")
        return page("webhooks_confirm.html.j2", request, viewer, endpoint=endpoint, action=action)

    @post("/{webhook_id:uuid}/disable", status_code=303)
    def disable(
        self,
        request: Request[Any, Any, Any],
        webhook_id: FromPath[uuid.UUID],
        data: Form,
        db_session: NamedDependency[Session],
    ) -> Redirect:
        viewer = viewer_of(request, db_session, Role.client)
        check_csrf(viewer, request, data)
        service.disable_endpoint(db_session, viewer.principal.require_organization(), webhook_id)
        return redirect(f"/console/webhooks/{webhook_id}", notice="endpoint_disabled")

    @get("/deliveries/{delivery_id:uuid}")
    def delivery(
        self,
        request: Request[Any, Any, Any],
        delivery_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
    ) -> Template:
        viewer = viewer_of(request, db_session, Role.client)
        organization_id = viewer.principal.require_organization()
        found = service.get_delivery(db_session, organization_id, delivery_id)
        endpoint = service.get_endpoint(db_session, organization_id, found.endpoint_id)
        due_soon = found.status == DeliveryStatus.pending.value and (
            found.next_attempt_at is None or found.next_attempt_at <= utcnow() + REFRESH_WHEN_DUE_WITHIN
        )
        return page(
            "webhooks_delivery.html.j2",
            request,
            viewer,
            delivery=found,
            endpoint=endpoint,
            body=json.dumps(found.payload, indent=2, ensure_ascii=False),
            status_text=STATUS_TEXT,
            event_label=event_label,
            can_redeliver=endpoint.active and found.status != DeliveryStatus.pending.value,
            refresh=REFRESH_AFTER_S if due_soon else None,
        )

    @post("/deliveries/{delivery_id:uuid}/redeliver", status_code=303)
    def redeliver(
        self,
        request: Request[Any, Any, Any],
        delivery_id: FromPath[uuid.UUID],
        data: Form,
        db_session: NamedDependency[Session],
    ) -> Redirect:
        """Send it once more (the same id and body); the delivery's page tells what became of it."""
        viewer = viewer_of(request, db_session, Role.client)
        check_csrf(viewer, request, data)
        target = f"/console/webhooks/deliveries/{delivery_id}"
        try:
            with db_session.begin_nested():
                service.redeliver(db_session, viewer.principal.require_organization(), delivery_id)
        except Conflict as exc:
            return redirect(target, notice=exc.code if exc.code in NOTICES else None)
        return redirect(target, notice="redelivery_started")


ROUTES: list[Any] = [WebhookConsoleController]
