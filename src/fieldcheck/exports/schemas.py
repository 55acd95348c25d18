from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from fieldcheck.exports.models import ExportFormat, ExportStatus


class ExportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: ExportFormat


class ExportOut(BaseModel):
    id: uuid.UUID
    campaign_id: uuid.UUID
    format: ExportFormat
    status: ExportStatus
    progress: float = Field(ge=0, le=1)
    stage: str | None
    error: str | None = Field(description="why it failed, when it did")
    download_url: str | None = Field(description="when done: signed, expiring; ask again for a fresh one")
    filename: str | None
    size_bytes: int | None
    row_count: int | None
    photo_count: int | None
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime | None = Field(description="when the file will be deleted")
