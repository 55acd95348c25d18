from __future__ import annotations

import uuid

from litestar import Controller
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from sqlmodel import Session

from fieldcheck.auth.models import Role
from fieldcheck.auth.security import BEARER_SECURITY, Principal, requires
from fieldcheck.settings import Settings
from fieldcheck.web import DEFAULT_PAGE_LIMIT, Page, PageCursor, PageLimit, delete, get, post
from fieldcheck.webhooks import service
from fieldcheck.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from fieldcheck.webhooks.schemas import (
    WebhookDeliveryOut,
    WebhookEndpointCreate,
    WebhookEndpointOut,
    WebhookEndpointWithSecret,
)


def endpoint_out(endpoint: WebhookEndpoint) -> WebhookEndpointOut:
    return WebhookEndpointOut.model_validate(endpoint, from_attributes=True)


def endpoint_with_secret(endpoint: WebhookEndpoint) -> WebhookEndpointWithSecret:
    return WebhookEndpointWithSecret.model_validate(endpoint, from_attributes=True)


def delivery_out(delivery: WebhookDelivery) -> WebhookDeliveryOut:
    return WebhookDeliveryOut.model_validate(delivery, from_attributes=True)


class WebhookController(Controller):
    path = "/api/v1/webhooks"
    tags = ["webhooks"]
    guards = [requires(Role.client)]
    security = BEARER_SECURITY

    @post(
        "/",
        summary="Register a webhook endpoint",
        description="Answers the endpoint with its signing secret (shown only now and at rotation). 422 "
        "invalid_webhook_url, private_webhook_target, unresolvable_webhook_host (field url) or "
        "unknown_webhook_events (field events).",
    )
    def create(
        self,
        data: JSONBody[WebhookEndpointCreate],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
    ) -> WebhookEndpointWithSecret:
        endpoint = service.register_endpoint(db_session, principal.require_organization(), data, settings)
        return endpoint_with_secret(endpoint)

    @get("/", summary="The organization's webhook endpoints, newest first (disabled ones too)")
    def list_endpoints(
        self,
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        limit: PageLimit = DEFAULT_PAGE_LIMIT,
        cursor: PageCursor = None,
    ) -> Page[WebhookEndpointOut]:
        endpoints, next_cursor = service.list_endpoints(
            db_session, principal.require_organization(), limit=limit, cursor=cursor
        )
        return Page[WebhookEndpointOut](items=[endpoint_out(e) for e in endpoints], next_cursor=next_cursor)

    @get("/{webhook_id:uuid}", summary="One webhook endpoint")
    def get_one(
        self,
        webhook_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
    ) -> WebhookEndpointOut:
        return endpoint_out(service.get_endpoint(db_session, principal.require_organization(), webhook_id))

    @delete(
        "/{webhook_id:uuid}",
        status_code=200,
        summary="Disable a webhook endpoint",
        description="Nothing more is sent to it; attempts still scheduled are given up. Its delivery "
        "log stays readable.",
    )
    def disable(
        self,
        webhook_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
    ) -> WebhookEndpointOut:
        return endpoint_out(
            service.disable_endpoint(db_session, principal.require_organization(), webhook_id)
        )

    @post(
        "/{webhook_id:uuid}/secret",
        status_code=200,
        summary="Rotate the signing secret",
        description="The old secret stops at once; every later attempt is signed with the new one. 409 "
        "webhook_disabled.",
    )
    def rotate_secret(
        self,
        webhook_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
    ) -> WebhookEndpointWithSecret:
        endpoint = service.rotate_secret(db_session, principal.require_organization(), webhook_id)
        return endpoint_with_secret(endpoint)

    @get("/{webhook_id:uuid}/deliveries", summary="The endpoint's delivery log, newest first")
    def list_deliveries(
        self,
        webhook_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
        status: FromQuery[DeliveryStatus | None] = None,
        limit: PageLimit = DEFAULT_PAGE_LIMIT,
        cursor: PageCursor = None,
    ) -> Page[WebhookDeliveryOut]:
        deliveries, next_cursor = service.list_deliveries(
            db_session,
            principal.require_organization(),
            webhook_id,
            status=status.value if status else None,
            limit=limit,
            cursor=cursor,
        )
        return Page[WebhookDeliveryOut](items=[delivery_out(d) for d in deliveries], next_cursor=next_cursor)

    @get("/deliveries/{delivery_id:uuid}", summary="One delivery")
    def get_delivery(
        self,
        delivery_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
    ) -> WebhookDeliveryOut:
        return delivery_out(service.get_delivery(db_session, principal.require_organization(), delivery_id))

    @post(
        "/deliveries/{delivery_id:uuid}/redeliver",
        status_code=202,
        summary="Send a delivery again (one attempt)",
        description="The same delivery (same id and body) goes back to pending and is attempted once more; "
        "its attempts count on. 409 delivery_in_progress while attempts are still scheduled, "
        "webhook_disabled when its endpoint is disabled.",
    )
    def redeliver(
        self,
        delivery_id: FromPath[uuid.UUID],
        db_session: NamedDependency[Session],
        principal: NamedDependency[Principal],
    ) -> WebhookDeliveryOut:
        return delivery_out(service.redeliver(db_session, principal.require_organization(), delivery_id))
