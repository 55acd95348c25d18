from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from fieldcheck.exports.models import ExportStatus


class DataExportOut(BaseModel):
    """The worker's own data export: poll it until `done`, then download it."""

    id: uuid.UUID
    status: ExportStatus
    progress: float = Field(ge=0, le=1)
    stage: str | None
    error: str | None = Field(description="why it failed, when it did")
    download_url: str | None = Field(
        description="when done: a signed link for this worker that expires; ask again for a fresh one"
    )
    filename: str | None
    size_bytes: int | None
    photo_count: int | None
    language: str = Field(description="the language of the texts inside (that of the request)")
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime | None = Field(description="when the file will be deleted")
