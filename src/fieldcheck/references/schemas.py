from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field


class ReferencePhotoOut(BaseModel):
    id: uuid.UUID
    status: str = Field(
        description="awaiting_upload, processing (uploaded; features being computed), ready (compared with "
        "every new photo of the campaign) or failed (see `problem`)."
    )
    problem: str | None = Field(default=None, description="Why the photo cannot serve as a reference.")
    width: int | None
    height: int | None
    thumbnail_url: str | None = None
    url: str | None = Field(default=None, description="The reference as workers' reviewers see it (signed).")
    created_at: datetime
