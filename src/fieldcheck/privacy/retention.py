"""Retention of what shows where a worker was: the photos as sent (with their EXIF, GPS included)
and the phone's position, accuracy and identifier are kept FIELDCHECK_ORIGINAL_RETENTION_DAYS after
the decision became final (fieldcheck.reviews.finality), for the checks, reviewers and appeals;
then they are deleted. What the client's audit reads stays: the client-safe copies (re-encoded from
pixels, faces blurred, no metadata), their thumbnails (made from them), the distance from the
store, the check results (distances, never positions) and the history.

Photos never submitted are not kept this long: they go with their copies once their reservation
ended and no upload can still arrive (assignments.service.sweep_unsubmitted_photos), and expired or
cancelled reservations never held a position.

A batch at a time, each in its own short transaction: the objects are deleted first, then the rows
are marked, only where nothing marked them yet. A run stopped half-way leaves nothing marked that is
still stored; the next run (or one running at the same time) deletes again, which storage allows,
and marks what is left.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from fieldcheck.assignments.models import Assignment
from fieldcheck.db import Database, utcnow
from fieldcheck.photos.models import Photo
from fieldcheck.reviews.finality import final_before
from fieldcheck.settings import Settings
from fieldcheck.storage import ObjectStorage

RETENTION_BATCH = 200
# Where the checks keep a photo's own GPS position: the EXIF fields of the instant checks' report.
GPS_FIELDS = ("gps_lat", "gps_lon")


@dataclass(frozen=True)
class Removed:
    assignments: int  # positions erased
    photos: int  # originals deleted


def remove_originals(
    db: Database, storage: ObjectStorage, settings: Settings, *, now: datetime | None = None
) -> Removed:
    """Delete the originals and positions of every assignment whose decision became final more
    than the retention period ago. Safe to run twice, or twice at once."""
    now = now or utcnow()
    due = final_before(now - timedelta(days=settings.original_retention_days), settings)
    assignments = photos = 0
    while True:
        with db.transaction(read_only=True) as session:
            batch = list(
                session.exec(
                    select(Assignment.id)
                    .where(due, col(Assignment.positions_removed_at).is_(None))
                    .order_by(col(Assignment.decided_at), col(Assignment.id))
                    .limit(RETENTION_BATCH)
                ).all()
            )
            if not batch:
                return Removed(assignments, photos)
            originals = session.exec(
                select(Photo.id, Photo.storage_key, Photo.frozen_key).where(
                    col(Photo.assignment_id).in_(batch), col(Photo.originals_removed_at).is_(None)
                )
            ).all()
        for _photo_id, uploaded, frozen in originals:
            for key in (uploaded, frozen):
                if key:
                    storage.delete(key)  # deleting twice is harmless: storage deletes are idempotent
        with db.transaction() as session:
            photos += _mark_photos(session, [photo_id for photo_id, _uploaded, _frozen in originals], now)
            assignments += _erase_positions(session, batch, now)


def _mark_photos(session: Session, photo_ids: list[uuid.UUID], now: datetime) -> int:
    """The originals of these photos are gone: so are their GPS positions, wherever kept."""
    marked = [
        row[0]
        for row in session.exec(
            update(Photo)
            .where(col(Photo.id).in_(photo_ids), col(Photo.originals_removed_at).is_(None))
            .values(originals_removed_at=now, exif_lat=None, exif_lon=None)
            .returning(col(Photo.id))
            .execution_options(synchronize_session=False)
        ).all()
    ]
    if marked:
        for photo_id, report in session.exec(
            select(Photo.id, Photo.early_report).where(col(Photo.id).in_(marked))
        ).all():
            if report and any(field in (report.get("exif") or {}) for field in GPS_FIELDS):
                session.exec(
                    update(Photo)
                    .where(col(Photo.id) == photo_id)
                    .values(early_report=without_gps(report))
                    .execution_options(synchronize_session=False)
                )
    return len(marked)


def without_gps(report: Mapping[str, Any]) -> dict[str, Any]:
    """The instant checks' stored report of a photo, without the position its EXIF gave."""
    exif = {name: value for name, value in (report.get("exif") or {}).items() if name not in GPS_FIELDS}
    return {**report, "exif": exif}


def _erase_positions(session: Session, assignment_ids: list[uuid.UUID], now: datetime) -> int:
    """The phone's position, its accuracy and the phone's identifier go; the distance stays."""
    erased = session.exec(
        update(Assignment)
        .where(col(Assignment.id).in_(assignment_ids), col(Assignment.positions_removed_at).is_(None))
        .values(
            device_lat=None,
            device_lon=None,
            device_accuracy_m=None,
            device_id=None,
            positions_removed_at=now,
        )
        .returning(col(Assignment.id))
        .execution_options(synchronize_session=False)
    ).all()
    return len(erased)
