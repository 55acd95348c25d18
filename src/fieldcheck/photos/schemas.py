from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from fieldcheck.web import JsonInt


class PhotoUploadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content_type: str = Field(min_length=1, max_length=100, examples=["image/jpeg"])
    size_bytes: JsonInt = Field(gt=0, le=2**40, description="Size of the file the phone will upload.")


class UploadOut(BaseModel):
    method: str = Field(
        description="POST (a form: send `fields` then the file as `file`) or PUT (the raw bytes)."
    )
    url: str
    headers: dict[str, str]
    fields: dict[str, str]
    expires_at: datetime


class PhotoUploadOut(BaseModel):
    photo_id: uuid.UUID
    upload: UploadOut


class PhotoOut(BaseModel):
    id: uuid.UUID
    status: str
    width: int | None
    height: int | None
    thumbnail_url: str | None = None
    url: str | None = Field(
        default=None,
        description="The worker's own photo (signed, expiring); once the original was deleted, its "
        "client-safe copy (null when there is none).",
    )
    originals_removed_at: datetime | None = Field(
        default=None,
        description="When the photo as sent and its GPS position were deleted: "
        "FIELDCHECK_ORIGINAL_RETENTION_DAYS after the decision became final.",
    )


class PhotoCheckOut(BaseModel):
    """One check of a photo, in the reader's language."""

    name: str
    outcome: str = Field(description="pass, warn (a person will look) or fail")
    value: str | None
    threshold: str | None
    explanation: str


class PhotoChecksOut(PhotoOut):
    """A photo with its instant checks (run when the phone said the upload finished)."""

    assignment_id: uuid.UUID
    check_status: str | None = Field(
        description="pending, checked or failed_to_check; null until the phone says the upload finished"
    )
    checks: list[PhotoCheckOut] = Field(
        default_factory=list,
        description="The photo's own checks (file, resolution, blur, exposure, screen, reference match) "
        "and a first comparison with earlier photos: a hint, the check at submission decides.",
    )
    checked_at: datetime | None = None
