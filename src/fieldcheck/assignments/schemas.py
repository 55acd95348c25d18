from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from fieldcheck.tasks.schemas import StoreSummary


class AssignmentEventOut(BaseModel):
    at: datetime
    from_status: str | None
    to_status: str
    by: str
    reason: str


class AssignmentOut(BaseModel):
    id: uuid.UUID
    task_id: uuid.UUID
    campaign_id: uuid.UUID
    status: str
    title: str
    instructions: str
    store: StoreSummary
    reward_cents: int
    currency: str
    created_at: datetime
    expires_at: datetime
    submitted_at: datetime | None
    decided_at: datetime | None
    history: list[AssignmentEventOut]
