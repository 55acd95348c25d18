"""Exports: asked for over HTTP, built by a job, downloaded through an expiring URL, then removed.

The build runs outside any long transaction: it marks the export running, streams the file into
object storage while it records progress in short transactions, and finishes in the job's own
transaction (with the export.ready webhook, so that goes out only once the file is there).
"""

from __future__ import annotations

import io
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import IO

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from fieldcheck import metrics
from fieldcheck.assignments.models import Assignment, AssignmentStatus
from fieldcheck.campaigns.models import Campaign
from fieldcheck.campaigns.service import get_campaign
from fieldcheck.db import Database, after_commit, insert_ignore, new_id, utcnow
from fieldcheck.errors import NotFound
from fieldcheck.exports import files
from fieldcheck.exports.models import Export, ExportFormat, ExportStatus
from fieldcheck.exports.report import THUMBNAILS_PER_STORE, StoreCard, write_report
from fieldcheck.i18n import _, text
from fieldcheck.jobs import JobContext, enqueue
from fieldcheck.pagination import paginate
from fieldcheck.photos.models import Photo
from fieldcheck.results import views as results
from fieldcheck.results.views import ResultRow
from fieldcheck.settings import Settings
from fieldcheck.storage import ObjectStorage, put_stream
from fieldcheck.stores.models import Store
from fieldcheck.tasks.models import Task
from fieldcheck.webhooks.models import WebhookEvent
from fieldcheck.webhooks.service import emit

log = logging.getLogger("fieldcheck.exports")

BUILD_JOB = "exports.build"
MAX_ATTEMPTS = 3
PROGRESS_EVERY_S = 0.5
# A running build writes progress at least this often while it works (each row, each photo); a
# build silent for longer was abandoned (its worker died) and may be taken over.
ABANDONED_AFTER = timedelta(minutes=10)
CONTENT_TYPES = {
    ExportFormat.csv: "text/csv; charset=utf-8",
    ExportFormat.zip: "application/zip",
    ExportFormat.report: "text/html; charset=utf-8",
}
EXTENSIONS = {ExportFormat.csv: "csv", ExportFormat.zip: "zip", ExportFormat.report: "html"}
UNFINISHED = (ExportStatus.queued.value, ExportStatus.running.value)


class ExportFailed(Exception):
    """A reason the export cannot be built, in words for the client."""


# Requests ------------------------------------------------------------------------------------
def request_export(
    session: Session,
    *,
    organization_id: uuid.UUID,
    user_id: uuid.UUID,
    campaign_id: uuid.UUID,
    format: ExportFormat,
) -> Export:
    """Queue an export; while one of the same format is unfinished, that one is the answer.

    A partial unique index allows one unfinished export per (campaign, format): of two requests
    at the same moment, one inserts and the other finds its row.
    """
    campaign = get_campaign(session, organization_id, campaign_id)
    export_id = new_id()
    inserted = insert_ignore(
        session,
        Export,
        id=export_id,
        organization_id=organization_id,
        campaign_id=campaign.id,
        requested_by=user_id,
        format=format.value,
        status=ExportStatus.queued.value,
        progress=0.0,
        attempts=0,
        created_at=utcnow(),
    )
    if inserted:
        enqueue(session, BUILD_JOB, export_id=str(export_id))
        found = session.get(Export, export_id)
    else:
        found = session.exec(
            select(Export).where(
                Export.campaign_id == campaign.id,
                Export.format == format.value,
                col(Export.status).in_(UNFINISHED),
            )
        ).first()
    if found is None:  # it finished between the two statements: ask again
        return request_export(
            session, organization_id=organization_id, user_id=user_id, campaign_id=campaign_id, format=format
        )
    return found


def get_export(session: Session, organization_id: uuid.UUID, export_id: uuid.UUID) -> Export:
    export = session.exec(
        select(Export).where(Export.id == export_id, Export.organization_id == organization_id)
    ).first()
    if export is None:
        raise NotFound(text(_("no such export")), code="export_not_found")
    return export


def list_exports(
    session: Session, organization_id: uuid.UUID, campaign_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[list[Export], str | None]:
    get_campaign(session, organization_id, campaign_id)
    query = select(Export).where(Export.organization_id == organization_id, Export.campaign_id == campaign_id)
    return paginate(
        session,
        query,
        time_column=col(Export.created_at),
        id_column=col(Export.id),
        limit=limit,
        cursor=cursor,
        newest_first=True,
    )


def download_url(export: Export, storage: ObjectStorage, settings: Settings) -> str | None:
    if export.status != ExportStatus.done.value or export.storage_key is None:
        return None
    return storage.presign_download(
        export.storage_key, expires_s=settings.signed_url_ttl_s, filename=export.filename
    )


# Building ------------------------------------------------------------------------------------
def build(ctx: JobContext, export_id: uuid.UUID) -> None:
    runtime = ctx.runtime
    db, storage, settings = runtime.db, runtime.storage, runtime.settings
    started = _start(db, export_id, ctx.job_id)
    if started is None:
        return  # done, failed or expired already: a repeated delivery
    export, campaign = started
    fmt = ExportFormat(export.format)
    # One key per attempt: an abandoned attempt still writing can never touch this one's file.
    key = f"exports/{campaign.organization_id}/{campaign.id}/{export.id}-{export.attempts}.{EXTENSIONS[fmt]}"
    filename = f"{_slug(campaign.title)}-{export.created_at:%Y%m%d-%H%M}.{EXTENSIONS[fmt]}"
    try:
        with db.transaction(read_only=True) as session:
            total = max(1, _work_units(session, campaign, fmt))
        progress = _ProgressRecorder(db, export.id, total)
        produce = _producer(db, storage, settings, campaign, fmt, progress)
        size = put_stream(storage, key, content_type=CONTENT_TYPES[fmt], produce=produce)
    except Exception as exc:
        _failed(db, export, exc)
        if export.attempts < MAX_ATTEMPTS and not isinstance(exc, ExportFailed):
            raise  # the job system tries again, with backoff
        return
    except BaseException as exc:  # the job's time limit, a shutdown: say so, then let it go on
        _failed(db, export, RuntimeError(f"stopped: {type(exc).__name__}"))
        raise
    now = utcnow()
    session = ctx.session
    finished = session.exec(
        update(Export)
        # Still this attempt's build: a later attempt that took it over owns the export now.
        .where(col(Export.id) == export.id, col(Export.attempts) == export.attempts)
        .values(
            status=ExportStatus.done.value,
            progress=1.0,
            stage="done",
            storage_key=key,
            filename=filename,
            size_bytes=size,
            row_count=progress.rows,
            photo_count=progress.photos,
            error=None,
            finished_at=now,
            expires_at=now + timedelta(hours=settings.export_retention_hours),
        )
        .execution_options(synchronize_session=False)
    )
    if not finished.rowcount:
        storage.delete(key)  # taken over meanwhile: this attempt's file is nobody's
        return
    _announce(session, export, campaign)
    after_commit(session, metrics.EXPORTS.labels("campaign", "done").inc)


def _announce(session: Session, export: Export, campaign: Campaign) -> None:
    emit(
        session,
        campaign.organization_id,
        WebhookEvent.export_ready,
        {"export_id": str(export.id), "campaign_id": str(campaign.id), "format": export.format},
    )


def _start(db: Database, export_id: uuid.UUID, job_id: uuid.UUID) -> tuple[Export, Campaign] | None:
    now = utcnow()
    with db.transaction() as session:
        # Queued; or running but silent too long (abandoned); or running for an earlier delivery of
        # this very job, which has ended (a retry; a claim whose answer a network cut lost): a live
        # build is never run twice.
        running = col(Export.status) == ExportStatus.running.value
        claimable = (
            (col(Export.status) == ExportStatus.queued.value)
            | (running & (col(Export.heartbeat_at) < now - ABANDONED_AFTER))
            | (running & (col(Export.claimed_by_job) == job_id))
        )
        claimed = session.exec(
            update(Export)
            .where(col(Export.id) == export_id, claimable)
            .values(
                status=ExportStatus.running.value,
                started_at=now,
                heartbeat_at=now,
                attempts=col(Export.attempts) + 1,
                claimed_by_job=job_id,
                stage="starting",
                error=None,
            )
            .returning(col(Export.id))
            .execution_options(synchronize_session=False)
        ).first()
        if claimed is None:
            return None
        export = session.get(Export, export_id, populate_existing=True)
        assert export is not None
        campaign = session.get(Campaign, export.campaign_id)
        assert campaign is not None
        session.expunge_all()
        return export, campaign


def _failed(db: Database, export: Export, exc: Exception) -> None:
    final = export.attempts >= MAX_ATTEMPTS or isinstance(exc, ExportFailed)
    reason = str(exc) if isinstance(exc, ExportFailed) else _describe(exc)
    log.warning("export %s attempt %d failed: %s", export.id, export.attempts, reason, exc_info=exc)
    if final:
        metrics.EXPORTS.labels("campaign", "failed").inc()

    def record(session: Session) -> None:
        session.exec(
            update(Export)
            .where(col(Export.id) == export.id)
            .values(
                status=ExportStatus.failed.value if final else ExportStatus.queued.value,
                error=reason[:500],
                stage=None if final else f"attempt {export.attempts} failed; trying again",
                finished_at=utcnow() if final else None,
            )
            .execution_options(synchronize_session=False)
        )

    # Whatever failed (the database itself, for a few seconds): a build left "running" would be
    # skipped by its own retry and only failed by the abandoned-build sweep 10 minutes later.
    db.write_through_outages(record)


def _describe(exc: Exception) -> str:
    """An error a client can act on, without internals."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError | BotoCoreError | OSError):
        return "the file could not be written to storage; please try again later"
    return "the export could not be built because of an internal error; it has been logged"


class _ProgressRecorder:
    """Progress 0..1 written at most twice a second, each time in its own short transaction."""

    def __init__(self, db: Database, export_id: uuid.UUID, total: int) -> None:
        self.db, self.export_id, self.total = db, export_id, total
        self.rows = 0
        self.photos = 0
        self._last = 0.0

    def __call__(self, done: int, stage: str) -> None:
        now = time.monotonic()
        if now - self._last < PROGRESS_EVERY_S:
            return
        self._last = now
        with self.db.transaction() as session:
            session.exec(
                update(Export)
                .where(col(Export.id) == self.export_id, col(Export.status) == ExportStatus.running.value)
                .values(progress=min(0.99, done / self.total), stage=stage[:200], heartbeat_at=utcnow())
                .execution_options(synchronize_session=False)
            )


def _work_units(session: Session, campaign: Campaign, fmt: ExportFormat) -> int:
    rows = results.count(session, campaign)
    if fmt == ExportFormat.csv:
        return rows
    photos = int(
        session.exec(
            select(func.count())
            .select_from(Photo)
            .join(Assignment, col(Assignment.id) == col(Photo.assignment_id))
            .where(
                Assignment.campaign_id == campaign.id,
                Assignment.status == AssignmentStatus.approved.value,
                col(Photo.safe_key).is_not(None),
            )
        ).one()
    )
    if fmt == ExportFormat.zip:
        return rows + photos
    return rows + min(photos, len(_store_slots(session, campaign)) * THUMBNAILS_PER_STORE)


def _producer(
    db: Database,
    storage: ObjectStorage,
    settings: Settings,
    campaign: Campaign,
    fmt: ExportFormat,
    progress: _ProgressRecorder,
) -> Callable[[IO[bytes]], None]:
    def rows() -> Iterable[ResultRow]:
        # A read-only session per pass: results are read in batches, never all at once.
        with db.transaction(read_only=True) as session:
            yield from results.iterate(session, campaign)

    def read_object(key: str) -> bytes:
        try:
            return storage.get_bytes(key)
        except NotFound:
            log.error("export of campaign %s: stored object %s is missing", campaign.id, key)
            raise ExportFailed(
                "a photo of this campaign is missing from storage, so the export would be incomplete; "
                "the operators have been told"
            ) from None

    def produce(out: IO[bytes]) -> None:
        if fmt == ExportFormat.csv:
            ttl = settings.export_link_ttl_s

            def links(row: ResultRow) -> list[str]:
                return [storage.presign_download(p.safe_key, expires_s=ttl) for p in row.photos if p.safe_key]

            writer = io.TextIOWrapper(out, encoding="utf-8", newline="")
            progress.rows = files.write_csv(writer, rows(), links, progress)
            writer.flush()
            writer.detach()
        elif fmt == ExportFormat.zip:
            progress.rows, progress.photos = files.write_zip(out, rows, read_object, progress)
        else:
            with db.transaction(read_only=True) as session:
                summary = results.summary(session, campaign)
                slots = _store_slots(session, campaign)
            cards = {store.id: StoreCard(store=store, slots=n) for store, n in slots}
            for row in rows():
                cards[row.store.id].rows.append(row)
                progress.rows += 1
                progress(progress.rows, f"rows {progress.rows}")
            read = progress.rows
            progress.photos = write_report(
                out,
                title=campaign.title,
                instructions=campaign.instructions,
                generated_at=utcnow(),
                summary=summary,
                cards=list(cards.values()),
                read_object=read_object,
                progress=lambda n, stage: progress(read + n, stage),
            )

    return produce


def _store_slots(session: Session, campaign: Campaign) -> list[tuple[results.StoreRef, int]]:
    rows = session.exec(
        select(Store, Task.slots_total)
        .join(Task, col(Task.store_id) == col(Store.id))
        .where(Task.campaign_id == campaign.id)
        .order_by(col(Store.name))
    ).all()
    return [(results.StoreRef.of(store), int(slots)) for store, slots in rows]


def _slug(title: str) -> str:
    return files.SAFE_NAME.sub("-", title).strip("-.").lower()[:60] or "campaign"


def fail_abandoned(db: Database) -> int:
    """Running exports whose build went silent (a worker died) fail with a reason, freeing their format."""
    with db.transaction() as session:
        failed = session.exec(
            update(Export)
            .where(
                col(Export.status) == ExportStatus.running.value,
                col(Export.heartbeat_at) < utcnow() - 3 * ABANDONED_AFTER,
            )
            .values(
                status=ExportStatus.failed.value,
                error="the build stopped without finishing (its worker was restarted); please ask again",
                stage=None,
                finished_at=utcnow(),
            )
            .returning(col(Export.id))
            .execution_options(synchronize_session=False)
        ).all()
    return len(failed)


# Retention -----------------------------------------------------------------------------------
CLEANUP_BATCH = 200


def remove_expired(db: Database, storage: ObjectStorage) -> int:
    """Delete the files of exports past their retention; the rows stay, marked expired."""
    removed = 0
    while True:
        with db.transaction(read_only=True) as session:
            due = session.exec(
                select(Export.id, Export.storage_key)
                .where(Export.status == ExportStatus.done.value, col(Export.expires_at) < utcnow())
                .limit(CLEANUP_BATCH)
            ).all()
        if not due:
            return removed
        for export_id, key in due:
            if key:
                storage.delete(key)  # deleting twice is harmless: storage deletes are idempotent
            with db.transaction() as session:
                session.exec(
                    update(Export)
                    .where(col(Export.id) == export_id, col(Export.status) == ExportStatus.done.value)
                    .values(status=ExportStatus.expired.value, storage_key=None, stage="file removed")
                    .execution_options(synchronize_session=False)
                )
            removed += 1
