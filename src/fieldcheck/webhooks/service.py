"""Webhooks: the endpoints a client registers, `emit` for the other domains, and delivery attempts.

Delivery is a chain of jobs, one attempt each. An attempt that fails schedules the next one itself
(`webhooks.deliver` again, delayed by an exponential backoff) in the transaction that records it,
so retries are explicit, logged and visible in the delivery log, never the broker's own.
"""

from __future__ import annotations

import logging
import random
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import exists
from sqlmodel import Session, col, select, update

from fieldcheck import metrics
from fieldcheck.db import after_commit, new_id, utcnow
from fieldcheck.errors import Conflict, NotFound, Unprocessable, field_error
from fieldcheck.i18n import _, text
from fieldcheck.jobs import JobContext, JobExecution, enqueue
from fieldcheck.pagination import paginate
from fieldcheck.settings import Settings
from fieldcheck.webhooks import sending, targets
from fieldcheck.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookEvent
from fieldcheck.webhooks.schemas import EVENT_NAMES, WebhookEndpointCreate
from fieldcheck.webhooks.sending import AttemptResult

log = logging.getLogger("fieldcheck.webhooks")

DELIVER_JOB = "webhooks.deliver"
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
# Each delay is stretched by up to this share, so endpoints that failed together do not all come
# back at the same second.
BACKOFF_JITTER = 0.1
MAX_BACKOFF_DOUBLINGS = 40
ERROR_LENGTH = 500
DISABLED_ERROR = "not sent: the endpoint was disabled"
KNOWN_EVENTS = frozenset(event.value for event in WebhookEvent)


# Endpoints -------------------------------------------------------------------------------------
def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def _url_problem(exc: targets.TargetRefused) -> Unprocessable:
    return Unprocessable(exc.text, code=exc.code, errors=[field_error("url", exc.text)])


def register_endpoint(
    session: Session, organization_id: uuid.UUID, data: WebhookEndpointCreate, settings: Settings
) -> WebhookEndpoint:
    unknown = sorted(set(data.events) - KNOWN_EVENTS)
    if unknown:
        message = text(
            _("unknown event(s) {events}; known: {known}"), events=", ".join(unknown), known=EVENT_NAMES
        )
        raise Unprocessable(
            message,
            code="unknown_webhook_events",
            errors=[field_error("events", message)],
        )
    try:
        targets.resolve_target(data.url, allow_private=settings.webhook_allow_private_targets)
    except targets.TargetRefused as exc:
        raise _url_problem(exc) from None
    endpoint = WebhookEndpoint(
        organization_id=organization_id,
        url=data.url,
        events=sorted(set(data.events)),
        secret=new_secret(),
        description=(data.description or "").strip() or None,
    )
    session.add(endpoint)
    session.flush()
    return endpoint


def get_endpoint(session: Session, organization_id: uuid.UUID, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = session.exec(
        select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id, WebhookEndpoint.organization_id == organization_id
        )
    ).first()
    if endpoint is None:
        raise NotFound(text(_("no such webhook endpoint")), code="webhook_not_found")
    return endpoint


def list_endpoints(
    session: Session, organization_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[list[WebhookEndpoint], str | None]:
    return paginate(
        session,
        select(WebhookEndpoint).where(WebhookEndpoint.organization_id == organization_id),
        time_column=col(WebhookEndpoint.created_at),
        id_column=col(WebhookEndpoint.id),
        limit=limit,
        cursor=cursor,
        newest_first=True,
    )


def disable_endpoint(session: Session, organization_id: uuid.UUID, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    """Stop sending to an endpoint (its log stays readable). Disabling twice changes nothing."""
    now = utcnow()
    disabled = session.exec(
        update(WebhookEndpoint)
        .where(
            col(WebhookEndpoint.id) == endpoint_id,
            col(WebhookEndpoint.organization_id) == organization_id,
            col(WebhookEndpoint.active).is_(True),
        )
        .values(active=False, disabled_at=now)
        .returning(col(WebhookEndpoint.id))
    ).first()
    if disabled is not None:
        # Attempts still scheduled will not be made: the log says so now rather than later.
        session.exec(
            update(WebhookDelivery)
            .where(
                col(WebhookDelivery.endpoint_id) == endpoint_id,
                col(WebhookDelivery.status) == DeliveryStatus.pending.value,
            )
            .values(status=DeliveryStatus.failed.value, next_attempt_at=None, last_error=DISABLED_ERROR)
        )
    endpoint = get_endpoint(session, organization_id, endpoint_id)
    session.refresh(endpoint)
    return endpoint


def rotate_secret(session: Session, organization_id: uuid.UUID, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    """A new secret, at once: attempts from now on (retries included) are signed with it."""
    rotated = session.exec(
        update(WebhookEndpoint)
        .where(
            col(WebhookEndpoint.id) == endpoint_id,
            col(WebhookEndpoint.organization_id) == organization_id,
            col(WebhookEndpoint.active).is_(True),
        )
        .values(secret=new_secret())
        .returning(col(WebhookEndpoint.id))
    ).first()
    endpoint = get_endpoint(session, organization_id, endpoint_id)
    if rotated is None:
        raise Conflict(text(_("this webhook endpoint is disabled")), code="webhook_disabled")
    session.refresh(endpoint)
    return endpoint


# Events ----------------------------------------------------------------------------------------
def emit(session: Session, organization_id: uuid.UUID, event: WebhookEvent, data: dict[str, Any]) -> int:
    """Send `event` to the organization's active endpoints that subscribed to it; returns how many.

    Call it inside the transaction that makes the event true: the deliveries and their jobs are
    written there, so nothing is sent if it rolls back. Without endpoints it costs one indexed
    query. `data` may hold ids, times and enums: it is turned into JSON here.
    """
    name = WebhookEvent(event).value
    endpoints = session.exec(
        select(WebhookEndpoint.id, WebhookEndpoint.events).where(
            WebhookEndpoint.organization_id == organization_id, col(WebhookEndpoint.active).is_(True)
        )
    ).all()
    subscribed = [endpoint_id for endpoint_id, events in endpoints if name in events]
    if not subscribed:
        return 0
    now = utcnow()
    body_data = to_jsonable_python(data)
    for endpoint_id in subscribed:
        delivery_id = new_id()
        payload = {"id": str(delivery_id), "type": name, "created_at": now.isoformat(), "data": body_data}
        session.add(
            WebhookDelivery(
                id=delivery_id,
                endpoint_id=endpoint_id,
                organization_id=organization_id,
                event=name,
                payload=payload,
                next_attempt_at=now,
                created_at=now,
            )
        )
        enqueue(session, DELIVER_JOB, delivery_id=str(delivery_id))
    session.flush()
    return len(subscribed)


# The delivery log ------------------------------------------------------------------------------
def get_delivery(session: Session, organization_id: uuid.UUID, delivery_id: uuid.UUID) -> WebhookDelivery:
    delivery = session.exec(
        select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.organization_id == organization_id
        )
    ).first()
    if delivery is None:
        raise NotFound(text(_("no such webhook delivery")), code="delivery_not_found")
    return delivery


def list_deliveries(
    session: Session,
    organization_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    *,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[WebhookDelivery], str | None]:
    get_endpoint(session, organization_id, endpoint_id)  # 404 for another organization's endpoint
    query = select(WebhookDelivery).where(
        WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.organization_id == organization_id
    )
    if status:
        query = query.where(WebhookDelivery.status == status)
    return paginate(
        session,
        query,
        time_column=col(WebhookDelivery.created_at),
        id_column=col(WebhookDelivery.id),
        limit=limit,
        cursor=cursor,
        newest_first=True,
    )


def redeliver(session: Session, organization_id: uuid.UUID, delivery_id: uuid.UUID) -> WebhookDelivery:
    """Send a finished delivery again, once: the same row, body and id (receivers deduplicate on
    it), back to pending with its attempts counted on; its outcome becomes the delivery's status.

    A delivery still pending has its next attempt scheduled already (409), and a disabled endpoint
    gets nothing (409).
    """
    endpoint_active = exists().where(
        col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id), col(WebhookEndpoint.active).is_(True)
    )
    reset = session.exec(
        update(WebhookDelivery)
        .where(
            col(WebhookDelivery.id) == delivery_id,
            col(WebhookDelivery.organization_id) == organization_id,
            col(WebhookDelivery.status).in_([DeliveryStatus.succeeded.value, DeliveryStatus.failed.value]),
            endpoint_active,
        )
        .values(status=DeliveryStatus.pending.value, next_attempt_at=utcnow())
        .returning(col(WebhookDelivery.id))
    ).first()
    delivery = get_delivery(session, organization_id, delivery_id)
    if reset is None:
        if delivery.status == DeliveryStatus.pending.value:
            raise Conflict(
                text(_("this delivery is still being attempted; its next attempt is scheduled")),
                code="delivery_in_progress",
                next_attempt_at=delivery.next_attempt_at.isoformat() if delivery.next_attempt_at else None,
            )
        raise Conflict(text(_("the webhook endpoint of this delivery is disabled")), code="webhook_disabled")
    enqueue(session, DELIVER_JOB, delivery_id=str(delivery_id), retry=False)
    session.refresh(delivery)
    return delivery


# Attempts --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DueAttempt:
    attempts: int
    url: str
    secret: str
    event: str
    payload: dict[str, Any]
    endpoint_active: bool


def backoff(attempts: int, settings: Settings) -> timedelta:
    """The wait after the `attempts`-th failed attempt: base x 2^(attempts-1), capped, plus jitter."""
    doublings = min(max(attempts - 1, 0), MAX_BACKOFF_DOUBLINGS)
    delay = min(settings.webhook_backoff_base_s * 2**doublings, settings.webhook_backoff_max_s)
    return timedelta(seconds=delay * (1 + BACKOFF_JITTER * random.random()))  # noqa: S311 (not a secret)


def attempt_delivery(ctx: JobContext, delivery_id: uuid.UUID, *, retry: bool) -> None:
    """One attempt of one delivery. The HTTP call happens outside any write transaction; the
    outcome is then recorded (and the next attempt scheduled) in the job's own transaction."""
    with ctx.reading() as session:
        # A message delivered again after its job committed would only be refused at the claim,
        # after the POST: look first, and spare the receiver the repeat.
        if session.get(JobExecution, ctx.job_id) is not None:
            return
        due = _due_attempt(session, delivery_id)
    if due is None:
        return
    if not due.endpoint_active:
        _record(ctx.session, delivery_id, due.attempts, AttemptResult(False, None, DISABLED_ERROR), None)
        return
    settings = ctx.settings
    result = sending.attempt(
        due.url,
        secret=due.secret,
        event=due.event,
        delivery_id=str(delivery_id),
        payload=due.payload,
        timeout_s=settings.webhook_timeout_s,
        allow_private=settings.webhook_allow_private_targets,
    )
    attempts = due.attempts + 1
    wait = None
    if not result.succeeded and retry and attempts < settings.webhook_max_attempts:
        wait = backoff(attempts, settings)
    if not _record(ctx.session, delivery_id, due.attempts, result, wait):
        log.info("webhook delivery %s: attempt %d was recorded by another run", delivery_id, attempts)
        return
    outcome = "succeeded" if result.succeeded else "retrying" if wait is not None else "failed"
    after_commit(ctx.session, metrics.WEBHOOK_DELIVERIES.labels(outcome).inc)
    if result.succeeded:
        log.info(
            "webhook delivery %s succeeded (attempt %d, HTTP %s)", delivery_id, attempts, result.status_code
        )
    elif wait is not None:
        enqueue(ctx.session, DELIVER_JOB, delay=wait, delivery_id=str(delivery_id))
        log.warning(
            "webhook delivery %s attempt %d failed (%s); next attempt in %.1f s",
            delivery_id,
            attempts,
            result.error,
            wait.total_seconds(),
        )
    else:
        log.warning(
            "webhook delivery %s failed for good after attempt %d (%s)", delivery_id, attempts, result.error
        )


def _due_attempt(session: Session, delivery_id: uuid.UUID) -> DueAttempt | None:
    row = session.exec(
        select(WebhookDelivery, WebhookEndpoint)
        .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id))
        .where(WebhookDelivery.id == delivery_id)
    ).first()
    if row is None or row[0].status != DeliveryStatus.pending.value:
        return None  # gone, or finished by an earlier run of this attempt
    delivery, endpoint = row
    return DueAttempt(
        attempts=delivery.attempts,
        url=endpoint.url,
        secret=endpoint.secret,
        event=delivery.event,
        payload=dict(delivery.payload),
        endpoint_active=endpoint.active,
    )


def _record(
    session: Session,
    delivery_id: uuid.UUID,
    attempts_before: int,
    result: AttemptResult,
    wait: timedelta | None,
) -> bool:
    """Write the attempt's outcome; False when another run recorded this attempt first."""
    now = utcnow()
    values: dict[str, Any] = {
        "attempts": attempts_before + 1,
        "last_attempt_at": now,
        "last_status_code": result.status_code,
        "last_error": result.error[:ERROR_LENGTH] if result.error else None,
        "next_attempt_at": now + wait if wait is not None else None,
    }
    if result.succeeded:
        values.update(status=DeliveryStatus.succeeded.value, delivered_at=now)
    elif wait is None:
        values["status"] = DeliveryStatus.failed.value
    # The attempt count in the WHERE clause: of two runs of the same attempt, one records it.
    recorded = session.exec(
        update(WebhookDelivery)
        .where(
            col(WebhookDelivery.id) == delivery_id,
            col(WebhookDelivery.status) == DeliveryStatus.pending.value,
            col(WebhookDelivery.attempts) == attempts_before,
        )
        .values(**values)
        .returning(col(WebhookDelivery.id))
    ).first()
    return recorded is not None


def last_deliveries(
    session: Session, organization_id: uuid.UUID, endpoint_ids: list[uuid.UUID]
) -> dict[uuid.UUID, WebhookDelivery]:
    """The newest delivery of each endpoint: one statement, one index probe per endpoint."""
    if not endpoint_ids:
        return {}
    newest = (
        select(WebhookDelivery.id)
        .where(col(WebhookDelivery.endpoint_id) == col(WebhookEndpoint.id))
        .order_by(col(WebhookDelivery.created_at).desc(), col(WebhookDelivery.id).desc())
        .limit(1)
        .correlate(WebhookEndpoint)
        .scalar_subquery()
    )
    wanted = select(newest).where(
        col(WebhookEndpoint.id).in_(endpoint_ids), WebhookEndpoint.organization_id == organization_id
    )
    found = session.exec(
        select(WebhookDelivery).where(
            col(WebhookDelivery.id).in_(wanted), WebhookDelivery.organization_id == organization_id
        )
    ).all()
    return {delivery.endpoint_id: delivery for delivery in found}
