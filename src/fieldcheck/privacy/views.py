from __future__ import annotations

from fieldcheck.exports.models import ExportStatus
from fieldcheck.i18n import translate
from fieldcheck.privacy import export as service
from fieldcheck.privacy.models import DataExport
from fieldcheck.privacy.schemas import DataExportOut
from fieldcheck.settings import Settings
from fieldcheck.storage import ObjectStorage


def data_export_out(export: DataExport, storage: ObjectStorage, settings: Settings) -> DataExportOut:
    return DataExportOut(
        id=export.id,
        status=ExportStatus(export.status),
        progress=round(export.progress, 4),
        stage=export.stage,
        error=translate(export.error) if export.error else None,  # stored as a message id
        download_url=service.download_url(export, storage, settings),
        filename=export.filename,
        size_bytes=export.size_bytes,
        photo_count=export.photo_count,
        language=export.language,
        created_at=export.created_at,
        finished_at=export.finished_at,
        expires_at=export.expires_at,
    )
