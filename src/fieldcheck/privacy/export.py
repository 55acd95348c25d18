"""A worker's own data (GDPR Arts. 15 and 20): one ZIP of everything fieldcheck holds about them.

Asked for over HTTP (POST /api/v1/me/export), built by a job on the exports queue, downloaded by
that worker only (the status answer carries a signed link that expires), then removed after the
export retention. Like client exports, the build streams into object storage while it records
progress in short transactions, and finishes in the job's own transaction.

Inside: README.txt (what each file holds, in English and French), account.json, assignments.json,
checks.json, decisions.json, appeals.json, statements.json, ledger.json, payouts.json, and
photos/<assignment>/<photo>.<ext>: the photos as the worker sent them (after the retention of
originals, the copy clients receive, and the file says so). The texts (check explanations,
decisions, statements) are in the language of the request that asked for it.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from fieldcheck import metrics
from fieldcheck.assignments import service as assignments
from fieldcheck.assignments.models import DECISIONS, Assignment, AssignmentStatus
from fieldcheck.assignments.transitions import reference
from fieldcheck.assignments.views import (
    appeal_until,
    check_out,
    decision_out,
    event_out,
    payment_of,
    statement_out,
)
from fieldcheck.auth.models import User
from fieldcheck.checks.photo import Check
from fieldcheck.checks.service import results_of
from fieldcheck.db import Database, after_commit, insert_ignore, new_id, utcnow
from fieldcheck.errors import NotFound
from fieldcheck.exports.models import ExportStatus
from fieldcheck.i18n import _, language_var, text
from fieldcheck.jobs import JobContext, enqueue
from fieldcheck.ledger import service as ledger
from fieldcheck.pagination import paginate
from fieldcheck.photos.models import Photo, PhotoStatus
from fieldcheck.privacy.models import DataExport
from fieldcheck.reviews.models import Appeal
from fieldcheck.settings import Settings
from fieldcheck.storage import ObjectStorage, put_stream

log = logging.getLogger("fieldcheck.privacy")

BUILD_JOB = "privacy.build_data_export"
MAX_ATTEMPTS = 3
PROGRESS_EVERY_S = 0.5
ABANDONED_AFTER = timedelta(minutes=10)
# A finished export this recent is the answer to a new request: a retry or a second tap builds once.
REUSE_FOR = timedelta(minutes=10)
UNFINISHED = (ExportStatus.queued.value, ExportStatus.running.value)
FORMAT_VERSION = 1
EXTENSIONS = {"jpeg": "jpg", "png": "png", "heic": "heic", "image/jpeg": "jpg", "image/png": "png"}

README = """fieldcheck: your data / vos données
======================================

English
-------
This archive holds everything fieldcheck keeps about you, as of {generated_at} (UTC).
All files are JSON (UTF-8); amounts are in cents of their currency; times are ISO 8601 in UTC.
The texts (check explanations, decisions, statements) are in the language you asked in.

- account.json: your account (e-mail, name, role, dates), the bank account on file (its last four
  characters, as the app shows it) and your balances.
- assignments.json: every task you reserved: campaign, instructions, store, status, when, the
  position your phone gave at submission (when still kept) and its distance to the store, the
  photos (with what their files said: size, date, GPS), the payment and the whole history.
- checks.json: every automated check on your work and on each photo as you uploaded it, with its
  measured value, threshold and explanation.
- decisions.json: every decision (approved, rejected), by the system or by a person (never who),
  with its reasons.
- appeals.json: your appeals, their message and outcome.
- statements.json: the written statement of reasons of each rejection.
- ledger.json: every entry on your accounts in the ledger (what you earned, what was paid out).
- payouts.json: every payout you asked for and where it stands.
- photos/: your photos as you sent them, one folder per assignment. Original photos and phone
  positions are deleted {retention_days} days after a decision is final; for those, the folder holds
  the copy the client received (no metadata, faces blurred), and assignments.json says so.

Français
--------
Cette archive contient tout ce que fieldcheck conserve à votre sujet, au {generated_at} (UTC).
Tous les fichiers sont en JSON (UTF-8) ; les montants sont en centimes de leur devise ; les dates
sont en ISO 8601, en UTC. Les textes (explications des contrôles, décisions, exposés des motifs)
sont dans la langue de votre demande.

- account.json : votre compte (e-mail, nom, rôle, dates), le compte bancaire enregistré (ses quatre
  derniers caractères, comme dans l'application) et vos soldes.
- assignments.json : chaque tâche réservée : campagne, consignes, magasin, statut, dates, la
  position donnée par votre téléphone à l'envoi (tant qu'elle est conservée) et sa distance au
  magasin, les photos (avec ce que disaient leurs fichiers : taille, date, GPS), le paiement et
  tout l'historique.
- checks.json : chaque contrôle automatique de votre travail et de chaque photo envoyée, avec la
  valeur mesurée, le seuil et l'explication.
- decisions.json : chaque décision (acceptée, refusée), par le système ou par une personne (jamais
  laquelle), avec ses motifs.
- appeals.json : vos recours, leur message et leur issue.
- statements.json : l'exposé écrit des motifs de chaque refus.
- ledger.json : chaque écriture de vos comptes au grand livre (ce que vous avez gagné, ce qui a été
  versé).
- payouts.json : chaque virement demandé et où il en est.
- photos/ : vos photos telles que vous les avez envoyées, un dossier par mission. Les photos
  originales et les positions du téléphone sont supprimées {retention_days} jours après qu'une
  décision est définitive ; pour celles-ci, le dossier contient la copie reçue par le client (sans
  métadonnées, visages floutés), et assignments.json le précise.
"""


class ExportFailed(Exception):
    """A reason the export cannot be built, in words for the worker (a message id: the answer
    gives it in the reader's language)."""


# Why an export failed, stored as message ids and read in the worker's language.
ACCOUNT_CLOSED = _("the account was closed")
PHOTO_MISSING = _(
    "one of your photos is missing from storage, so the export would be incomplete; the operators have been told"
)
STORAGE_FAILED = _("the file could not be written to storage; please try again later")
INTERNAL_ERROR = _("the export could not be built because of an internal error; it has been logged")
ABANDONED = _("the build stopped without finishing (its worker was restarted); please ask again")


# Requests ------------------------------------------------------------------------------------
def request_export(session: Session, *, user_id: uuid.UUID, language: str) -> DataExport:
    """Queue the worker's export; an unfinished one, or one finished in the last minutes, is the
    answer instead (a partial unique index lets one of two simultaneous requests insert)."""
    recent = session.exec(
        select(DataExport)
        .where(
            DataExport.user_id == user_id,
            DataExport.status == ExportStatus.done.value,
            col(DataExport.finished_at) > utcnow() - REUSE_FOR,
        )
        .order_by(col(DataExport.finished_at).desc())
        .limit(1)
    ).first()
    if recent is not None:
        return recent
    export_id = new_id()
    inserted = insert_ignore(
        session,
        DataExport,
        id=export_id,
        user_id=user_id,
        language=language,
        status=ExportStatus.queued.value,
        progress=0.0,
        attempts=0,
        created_at=utcnow(),
    )
    if inserted:
        enqueue(session, BUILD_JOB, export_id=str(export_id))
        found = session.get(DataExport, export_id)
    else:
        found = session.exec(
            select(DataExport).where(DataExport.user_id == user_id, col(DataExport.status).in_(UNFINISHED))
        ).first()
    if found is None:  # it finished between the two statements: ask again
        return request_export(session, user_id=user_id, language=language)
    return found


def get_export(session: Session, user_id: uuid.UUID, export_id: uuid.UUID) -> DataExport:
    found = session.exec(
        select(DataExport).where(DataExport.id == export_id, DataExport.user_id == user_id)
    ).first()
    if found is None:
        raise NotFound(text(_("no such export")), code="export_not_found")
    return found


def list_exports(
    session: Session, user_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[list[DataExport], str | None]:
    return paginate(
        session,
        select(DataExport).where(DataExport.user_id == user_id),
        time_column=col(DataExport.created_at),
        id_column=col(DataExport.id),
        limit=limit,
        cursor=cursor,
        newest_first=True,
    )


def download_url(export: DataExport, storage: ObjectStorage, settings: Settings) -> str | None:
    if export.status != ExportStatus.done.value or export.storage_key is None:
        return None
    return storage.presign_download(
        export.storage_key, expires_s=settings.signed_url_ttl_s, filename=export.filename
    )


def expire_for_closed_account(session: Session, user_id: uuid.UUID) -> None:
    """A closed account's exports go: the finished ones' files at the next sweep (they name the
    person), and one still queued or building fails (its build then removes what it wrote)."""
    now = utcnow()
    session.exec(
        update(DataExport)
        .where(col(DataExport.user_id) == user_id, col(DataExport.status) == ExportStatus.done.value)
        .values(expires_at=now)
        .execution_options(synchronize_session=False)
    )
    session.exec(
        update(DataExport)
        .where(col(DataExport.user_id) == user_id, col(DataExport.status).in_(UNFINISHED))
        .values(status=ExportStatus.failed.value, error=ACCOUNT_CLOSED, stage=None, finished_at=now)
        .execution_options(synchronize_session=False)
    )


# What goes in ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PhotoFile:
    path: str
    key: str
    taken: datetime | None


@dataclass(frozen=True)
class Contents:
    documents: dict[str, Any]  # file name -> JSON value
    photos: list[PhotoFile]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _photo_extension(photo: Photo, original: bool) -> str:
    if not original:
        return "jpg"  # the client-safe copy is always a JPEG
    return EXTENSIONS.get(photo.detected_type or "", EXTENSIONS.get(photo.declared_type, "bin"))


def collect(
    session: Session, settings: Settings, user_id: uuid.UUID, stored: Callable[[str], bool]
) -> Contents:
    """Everything about the worker, as JSON documents and the list of photo files to copy (a photo
    whose upload was asked for is there when its file arrived, `stored`)."""
    user = session.get(User, user_id)
    if user is None or user.closed_at is not None:
        raise ExportFailed(ACCOUNT_CLOSED)
    rows = list(
        session.exec(
            select(Assignment)
            .where(Assignment.worker_id == user_id)
            .order_by(col(Assignment.created_at), col(Assignment.id))
        ).all()
    )
    ids = [a.id for a in rows]
    contexts = assignments.context_of(session, rows)
    events = assignments.events_of(session, ids)
    checks = results_of(session, ids)
    approved = [reference(a.id) for a in rows if a.status == AssignmentStatus.approved.value]
    paid = ledger.paid_rewards(session, approved)
    photos: dict[uuid.UUID, list[Photo]] = {i: [] for i in ids}
    for photo in session.exec(
        select(Photo).where(Photo.worker_id == user_id).order_by(col(Photo.created_at), col(Photo.id))
    ).all():
        photos.setdefault(photo.assignment_id, []).append(photo)
    appeals = {
        appeal.assignment_id: appeal
        for appeal in session.exec(
            select(Appeal)
            .join(Assignment, col(Assignment.id) == col(Appeal.assignment_id))
            .where(Assignment.worker_id == user_id)
        ).all()
    }

    files: list[PhotoFile] = []
    assignment_docs, check_docs, decision_docs, appeal_docs, statement_docs = [], [], [], [], []
    for assignment in rows:
        task, campaign, store = contexts[assignment.task_id]
        photo_docs = []
        for photo in photos.get(assignment.id, []):
            removed = photo.originals_removed_at
            key = photo.content_key  # the client-safe copy once the original was removed
            path = None
            if key and (photo.status != PhotoStatus.awaiting_upload.value or stored(key)):
                path = f"photos/{assignment.id}/{photo.id}.{_photo_extension(photo, original=not removed)}"
                files.append(PhotoFile(path=path, key=key, taken=photo.exif_taken_at or photo.created_at))
            photo_docs.append(
                {
                    "id": str(photo.id),
                    "file": path,
                    "original_removed_at": _iso(removed),
                    "status": photo.status,
                    "type": photo.detected_type or photo.declared_type,
                    "bytes": photo.stored_bytes or photo.declared_bytes,
                    "width": photo.width,
                    "height": photo.height,
                    "sha256": photo.sha256,
                    "taken_at": _iso(photo.exif_taken_at),
                    "gps": {"lat": photo.exif_lat, "lon": photo.exif_lon}
                    if photo.exif_lat is not None and photo.exif_lon is not None
                    else None,
                    "created_at": _iso(photo.created_at),
                    "submitted_at": _iso(photo.submitted_at),
                }
            )
            for early in photo.early_checks or []:
                check = Check.from_json(early)
                check_docs.append(
                    {
                        "assignment_id": str(assignment.id),
                        "photo_id": str(photo.id),
                        "when": "upload",
                        "name": check.name,
                        "outcome": check.outcome.value,
                        **check.rendered(),
                    }
                )
        for row in checks[assignment.id]:
            check_docs.append(
                {
                    "assignment_id": str(assignment.id),
                    "when": "submission",
                    **check_out(row).model_dump(mode="json"),
                }
            )
        for event in events[assignment.id]:
            if event.to_status in DECISIONS:
                decision_docs.append(
                    {"assignment_id": str(assignment.id), **decision_out(event).model_dump(mode="json")}
                )
        if assignment.status in (AssignmentStatus.rejected.value, AssignmentStatus.appealed.value):
            statement_docs.append(
                {
                    "assignment_id": str(assignment.id),
                    **statement_out(session, settings, assignment).model_dump(mode="json"),
                }
            )
        appeal = appeals.get(assignment.id)
        if appeal is not None:
            appeal_docs.append(
                {
                    "assignment_id": str(assignment.id),
                    "message": appeal.message,
                    "created_at": _iso(appeal.created_at),
                    "decided_at": _iso(appeal.decided_at),
                    "outcome": appeal.outcome.value if appeal.outcome else None,
                }
            )
        assignment_docs.append(
            {
                "id": str(assignment.id),
                "task_id": str(task.id),
                "campaign": {
                    "id": str(campaign.id),
                    "title": campaign.title,
                    "instructions": campaign.instructions,
                    "reward_cents": campaign.reward_cents,
                    "currency": campaign.currency,
                    "estimated_minutes": campaign.estimated_minutes,
                },
                "store": {"name": store.name, "address": store.address, "lat": store.lat, "lon": store.lon},
                "status": assignment.status,
                "reserved_at": _iso(assignment.created_at),
                "reservation_expires_at": _iso(assignment.expires_at),
                "arrived_at": _iso(assignment.arrived_at),
                "submitted_at": _iso(assignment.submitted_at),
                "decided_at": _iso(assignment.decided_at),
                "position": {
                    "lat": assignment.device_lat,
                    "lon": assignment.device_lon,
                    "accuracy_m": assignment.device_accuracy_m,
                    "is_mock": assignment.device_is_mock,
                    "device_id": assignment.device_id,
                    "captured_at": _iso(assignment.captured_at),
                    "capture_offset_minutes": assignment.capture_offset_minutes,
                }
                if assignment.device_lat is not None
                else None,
                "position_removed_at": _iso(assignment.positions_removed_at),
                "distance_m": assignment.distance_m,
                "photos": photo_docs,
                "payment": payment_of(assignment, campaign, paid).model_dump(mode="json"),
                "appeal_until": _iso(appeal_until(assignment, events[assignment.id], settings)),
                "history": [event_out(e).model_dump(mode="json") for e in events[assignment.id]],
            }
        )
    money = ledger.worker_records(session, user_id)
    account = {
        "id": str(user.id),
        "email": user.email,
        "display_name": user.display_name,
        "role": user.role,
        "is_active": user.is_active,
        "created_at": _iso(user.created_at),
        "closed_at": _iso(user.closed_at),
        "payout_details": money["payout_details"],
        "balances": money["balances"],
    }
    documents = {
        "account.json": account,
        "assignments.json": assignment_docs,
        "checks.json": check_docs,
        "decisions.json": decision_docs,
        "appeals.json": appeal_docs,
        "statements.json": statement_docs,
        "ledger.json": money["entries"],
        "payouts.json": money["payouts"],
    }
    return Contents(documents=documents, photos=files)


def write_archive(
    out: IO[bytes],
    contents: Contents,
    *,
    generated_at: datetime,
    retention_days: int,
    open_object: Callable[[str], IO[bytes]],
    progress: Callable[[int, str], None],
) -> int:
    """README.txt and the JSON documents (deflated), then each photo (stored: JPEG does not
    compress), one at a time from storage. Returns the number of photos written."""
    stamp = _zip_time(generated_at)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        readme = README.format(generated_at=generated_at.isoformat(), retention_days=retention_days)
        archive.writestr(_entry("README.txt", stamp, deflate=True), readme.encode("utf-8"))
        done = 0
        for name, value in contents.documents.items():
            body = {"format_version": FORMAT_VERSION, "generated_at": generated_at.isoformat(), "data": value}
            archive.writestr(
                _entry(name, stamp, deflate=True),
                json.dumps(body, ensure_ascii=False, indent=2).encode("utf-8"),
            )
            done += 1
            progress(done, name)
        written = 0
        for photo in contents.photos:
            try:
                source = open_object(photo.key)
            except NotFound:
                log.error("data export: stored photo %s is missing", photo.key)
                raise ExportFailed(PHOTO_MISSING) from None
            with (
                source,
                archive.open(_entry(photo.path, _zip_time(photo.taken)), "w", force_zip64=True) as dest,
            ):
                shutil.copyfileobj(source, dest, 1024 * 1024)
            written += 1
            done += 1
            progress(done, f"photos {written} of {len(contents.photos)}")
    return written


def _entry(
    name: str, stamp: tuple[int, int, int, int, int, int], *, deflate: bool = False
) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=stamp)
    info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    return info


def _zip_time(at: datetime | None) -> tuple[int, int, int, int, int, int]:
    when = at or utcnow()
    return (max(1980, when.year), when.month, when.day, when.hour, when.minute, when.second)


# Building ------------------------------------------------------------------------------------
def build(ctx: JobContext, export_id: uuid.UUID) -> None:
    runtime = ctx.runtime
    db, storage, settings = runtime.db, runtime.storage, runtime.settings
    export = _start(db, export_id, ctx.job_id)
    if export is None:
        return  # done, failed or expired already: a repeated delivery
    # One key per attempt: an abandoned attempt still writing can never touch this one's file.
    key = f"worker-exports/{export.user_id}/{export.id}-{export.attempts}.zip"
    generated_at = utcnow()
    filename = f"fieldcheck-my-data-{generated_at:%Y%m%d-%H%M}.zip"
    language = language_var.set(export.language)
    try:
        with db.transaction(read_only=True) as session:
            contents = collect(session, settings, export.user_id, lambda key: storage.head(key) is not None)
        progress = _ProgressRecorder(db, export.id, len(contents.documents) + len(contents.photos))
        photos: list[int] = []

        def produce(out: IO[bytes]) -> None:
            photos.append(
                write_archive(
                    out,
                    contents,
                    generated_at=generated_at,
                    retention_days=settings.original_retention_days,
                    open_object=storage.open,
                    progress=progress,
                )
            )

        size = put_stream(storage, key, content_type="application/zip", produce=produce)
    except Exception as exc:
        _failed(db, export, exc)
        if export.attempts < MAX_ATTEMPTS and not isinstance(exc, ExportFailed):
            raise  # the job system tries again, with backoff
        return
    except BaseException as exc:  # the job's time limit, a shutdown: say so, then let it go on
        _failed(db, export, RuntimeError(f"stopped: {type(exc).__name__}"))
        raise
    finally:
        language_var.reset(language)
    now = utcnow()
    finished = ctx.session.exec(
        update(DataExport)
        # Only this attempt, still running: not one the account's closing failed meanwhile, nor one a
        # later attempt took over.
        .where(
            col(DataExport.id) == export.id,
            col(DataExport.status) == ExportStatus.running.value,
            col(DataExport.attempts) == export.attempts,
        )
        .values(
            status=ExportStatus.done.value,
            progress=1.0,
            stage="done",
            storage_key=key,
            filename=filename,
            size_bytes=size,
            photo_count=photos[0] if photos else 0,
            error=None,
            finished_at=now,
            expires_at=now + timedelta(hours=settings.export_retention_hours),
        )
        .returning(col(DataExport.id))
        .execution_options(synchronize_session=False)
    ).first()
    if finished is None:
        storage.delete(key)  # nobody will ever be given it
    else:
        after_commit(ctx.session, metrics.EXPORTS.labels("worker_data", "done").inc)


def _start(db: Database, export_id: uuid.UUID, job_id: uuid.UUID) -> DataExport | None:
    now = utcnow()
    with db.transaction() as session:
        # Queued; or running but silent too long (abandoned); or running for an earlier delivery of
        # this very job, which has ended (a retry; a claim whose answer a network cut lost): a live
        # build is never run twice.
        running = col(DataExport.status) == ExportStatus.running.value
        claimable = (
            (col(DataExport.status) == ExportStatus.queued.value)
            | (running & (col(DataExport.heartbeat_at) < now - ABANDONED_AFTER))
            | (running & (col(DataExport.claimed_by_job) == job_id))
        )
        claimed = session.exec(
            update(DataExport)
            .where(col(DataExport.id) == export_id, claimable)
            .values(
                status=ExportStatus.running.value,
                started_at=now,
                heartbeat_at=now,
                attempts=col(DataExport.attempts) + 1,
                claimed_by_job=job_id,
                stage="starting",
                error=None,
            )
            .returning(col(DataExport.id))
            .execution_options(synchronize_session=False)
        ).first()
        if claimed is None:
            return None
        export = session.get(DataExport, export_id, populate_existing=True)
        assert export is not None
        session.expunge_all()
        return export


def _failed(db: Database, export: DataExport, exc: Exception) -> None:
    final = export.attempts >= MAX_ATTEMPTS or isinstance(exc, ExportFailed)
    reason = str(exc) if isinstance(exc, ExportFailed) else _describe(exc)
    if final:
        metrics.EXPORTS.labels("worker_data", "failed").inc()
    log.warning("data export %s attempt %d failed: %s", export.id, export.attempts, reason, exc_info=exc)

    def record(session: Session) -> None:
        session.exec(
            update(DataExport)
            .where(
                col(DataExport.id) == export.id,
                col(DataExport.status) == ExportStatus.running.value,
                col(DataExport.attempts) == export.attempts,
            )
            .values(
                status=ExportStatus.failed.value if final else ExportStatus.queued.value,
                error=reason[:500],
                stage=None if final else f"attempt {export.attempts} failed; trying again",
                finished_at=utcnow() if final else None,
            )
            .execution_options(synchronize_session=False)
        )

    db.write_through_outages(record)  # as exports.service._failed: whatever failed, it is said


def _describe(exc: Exception) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError | BotoCoreError | OSError):
        return STORAGE_FAILED
    return INTERNAL_ERROR


class _ProgressRecorder:
    """Progress 0..1 written at most twice a second, each time in its own short transaction."""

    def __init__(self, db: Database, export_id: uuid.UUID, total: int) -> None:
        self.db, self.export_id, self.total = db, export_id, max(1, total)
        self._last = 0.0

    def __call__(self, done: int, stage: str) -> None:
        now = time.monotonic()
        if now - self._last < PROGRESS_EVERY_S:
            return
        self._last = now
        with self.db.transaction() as session:
            session.exec(
                update(DataExport)
                .where(
                    col(DataExport.id) == self.export_id, col(DataExport.status) == ExportStatus.running.value
                )
                .values(progress=min(0.99, done / self.total), stage=stage[:200], heartbeat_at=utcnow())
                .execution_options(synchronize_session=False)
            )


# Upkeep ---------------------------------------------------------------------------------------
CLEANUP_BATCH = 200


def fail_abandoned(db: Database) -> int:
    """Running exports whose build went silent (a worker died) fail with a reason."""
    with db.transaction() as session:
        failed = session.exec(
            update(DataExport)
            .where(
                col(DataExport.status) == ExportStatus.running.value,
                col(DataExport.heartbeat_at) < utcnow() - 3 * ABANDONED_AFTER,
            )
            .values(
                status=ExportStatus.failed.value,
                error=ABANDONED,
                stage=None,
                finished_at=utcnow(),
            )
            .returning(col(DataExport.id))
            .execution_options(synchronize_session=False)
        ).all()
    return len(failed)


def remove_expired(db: Database, storage: ObjectStorage) -> int:
    """Delete the files of exports past their retention; the rows stay, marked expired."""
    removed = 0
    for export_id, key in _due(db):
        if key:
            storage.delete(key)  # deleting twice is harmless: storage deletes are idempotent
        with db.transaction() as session:
            session.exec(
                update(DataExport)
                .where(col(DataExport.id) == export_id, col(DataExport.status) == ExportStatus.done.value)
                .values(status=ExportStatus.expired.value, storage_key=None, stage="file removed")
                .execution_options(synchronize_session=False)
            )
        removed += 1
    return removed


def _due(db: Database) -> Iterator[tuple[uuid.UUID, str | None]]:
    while True:
        with db.transaction(read_only=True) as session:
            due = session.exec(
                select(DataExport.id, DataExport.storage_key)
                .where(DataExport.status == ExportStatus.done.value, col(DataExport.expires_at) < utcnow())
                .limit(CLEANUP_BATCH)
            ).all()
        if not due:
            return
        yield from due
