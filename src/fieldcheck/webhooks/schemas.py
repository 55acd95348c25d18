from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fieldcheck.webhooks.models import WebhookEvent
from fieldcheck.webhooks.targets import MAX_URL_LENGTH

EVENT_NAMES = ", ".join(event.value for event in WebhookEvent)


class WebhookEndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The URL and the event names are checked by the service (422 naming the field).
    url: str = Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="https:// (or http://) URL of a public internet address; no user name or password.",
    )
    events: list[str] = Field(min_length=1, max_length=20, description=f"Any of: {EVENT_NAMES}.")
    description: str | None = Field(default=None, max_length=500)


class WebhookEndpointOut(BaseModel):
    id: uuid.UUID
    url: str
    events: list[str]
    description: str | None
    active: bool
    created_at: datetime
    disabled_at: datetime | None


class WebhookEndpointWithSecret(WebhookEndpointOut):
    secret: str = Field(
        description="Signs every delivery (Fieldcheck-Signature). Shown only now: keep it safe."
    )


class WebhookDeliveryOut(BaseModel):
    id: uuid.UUID = Field(description="Also the body's `id` and the Fieldcheck-Delivery header.")
    endpoint_id: uuid.UUID
    event: str
    status: str = Field(description="pending, succeeded, or failed (gave up)")
    attempts: int
    last_status_code: int | None = Field(description="HTTP status of the last attempt, when one came")
    last_error: str | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime
    payload: dict[str, Any] = Field(description="The body sent")
