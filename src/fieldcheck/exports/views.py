"""An export as its client sees it: status, progress and, when done, a fresh signed link."""

from __future__ import annotations

from fieldcheck.exports import service
from fieldcheck.exports.models import Export, ExportFormat, ExportStatus
from fieldcheck.exports.schemas import ExportOut
from fieldcheck.settings import Settings
from fieldcheck.storage import ObjectStorage


def export_out(export: Export, storage: ObjectStorage, settings: Settings) -> ExportOut:
    return ExportOut(
        id=export.id,
        campaign_id=export.campaign_id,
        format=ExportFormat(export.format),
        status=ExportStatus(export.status),
        progress=round(export.progress, 4),
        stage=export.stage,
        error=export.error,
        download_url=service.download_url(export, storage, settings),
        filename=export.filename,
        size_bytes=export.size_bytes,
        row_count=export.row_count,
        photo_count=export.photo_count,
        created_at=export.created_at,
        finished_at=export.finished_at,
        expires_at=export.expires_at,
    )
