"""The checks with their I/O: read a stored photo and measure it, make its derivatives, compare it
with every earlier photo of the platform, store what was found and the explained results.

The judgement itself is in the pure modules (photo.py, visit.py); the decision on a submission,
and what follows from it, belongs to the assignment (fieldcheck.assignments.checking).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, col, or_, select

from fieldcheck import metrics
from fieldcheck.checks import reference
from fieldcheck.checks.derivatives import SAFE_LONG_SIDE, make_derivatives
from fieldcheck.checks.duplicates import HashIndex
from fieldcheck.checks.hashes import same_picture
from fieldcheck.checks.models import (
    CheckResultRow,
    Outcome,
    PhotoFeatures,
    PhotoHash,
    ReferencePhoto,
    ReferenceStatus,
)
from fieldcheck.checks.photo import Check, PhotoReport, check_photo, reference_features_of
from fieldcheck.db import after_commit
from fieldcheck.i18n import _, text
from fieldcheck.photos.models import Photo, PhotoStatus
from fieldcheck.storage import ObjectStorage

log = logging.getLogger("fieldcheck.checks")

DUPLICATE_THRESHOLD = _("not an earlier photo (same file, or the same picture re-saved)")


@dataclass
class ReferenceSet:
    """What the photos of one submission are compared with: the campaign's reference photos, then
    the store's earlier approved photos of the campaign; where each came from, in the same order."""

    features: list[reference.Features] = field(default_factory=list)
    sources: list[tuple[str, uuid.UUID]] = field(default_factory=list)  # ("campaign" | "store", id)

    def add(self, kind: str, owner: uuid.UUID, stored: bytes) -> bool:
        """Add stored features; those of an older kind are left out (`fieldcheck checks refeature`)."""
        features = reference.Features.from_bytes(stored)
        if not features.current:
            log.warning(
                "%s %s has features of an older kind (%s): not compared", kind, owner, features.method
            )
            return False
        self.features.append(features)
        self.sources.append((kind, owner))
        return True


def campaign_references(session: Session, campaign_id: uuid.UUID, limit: int) -> list[ReferencePhoto]:
    """The campaign's usable reference photos, oldest first."""
    return list(
        session.exec(
            select(ReferencePhoto)
            .where(
                ReferencePhoto.campaign_id == campaign_id,
                ReferencePhoto.status == ReferenceStatus.ready.value,
                col(ReferencePhoto.deleted_at).is_(None),
                col(ReferencePhoto.features).is_not(None),
            )
            .order_by(col(ReferencePhoto.created_at), col(ReferencePhoto.id))
            .limit(limit)
        ).all()
    )


@dataclass
class PhotoWork:
    """One photo of a submission on its way through the checks."""

    photo: Photo
    report: PhotoReport
    thumbnail_key: str | None = None
    safe_key: str | None = None
    faces_blurred: int = 0
    taken_at: datetime | None = None  # EXIF capture time in UTC, when it can be placed
    extra: list[Check] = field(default_factory=list)  # checks that need more than the photo

    @property
    def checks(self) -> list[Check]:
        return self.report.checks + self.extra


def measure_photo(
    storage: ObjectStorage,
    photo: Photo,
    *,
    min_short_side_px: int,
    max_bytes: int,
    references: ReferenceSet | None = None,
    upload: bool = False,
) -> PhotoWork:
    """Read the photo as submitted (refusing one changed since), check it, make its derivatives.

    With `upload`, the object the phone uploaded is read instead (the instant checks, before any
    submission), refused unless it is the one the phone announced as finished (`early_etag`)."""
    key = photo.storage_key if upload else photo.original_key
    expected = (photo.early_etag, photo.declared_bytes) if upload else (photo.stored_etag, photo.stored_bytes)
    info = storage.head(key) if key is not None else None
    if key is None or info is None or (info.etag, info.size) != expected:
        report = PhotoReport()
        report.checks.append(
            Check.of(
                "file",
                Outcome.fail,
                None,
                text(_("the file submitted")),
                text(
                    _(
                        "The stored photo changed or disappeared after it was submitted, so it cannot be "
                        "trusted. Take the photo again on your next task."
                    )
                ),
            )
        )
        return PhotoWork(photo, report)
    data = storage.get_bytes(key)
    found = references or ReferenceSet()
    report = check_photo(
        data,
        min_short_side_px=min_short_side_px,
        max_bytes=max_bytes,
        references=found.features,
        colour_long_side=SAFE_LONG_SIDE,
    )
    if report.reference_index is not None and report.reference_match is not None:
        kind, owner = found.sources[report.reference_index]
        matched = report.reference_match
        report.measurements["reference"] = {
            "kind": kind,
            "id": str(owner),
            "inliers": matched.inliers,
            "share": round(matched.share, 3),
            "matched": matched.same_scene,
            "outline": matched.corners if matched.same_scene else None,
        }
    work = PhotoWork(photo, report)
    if (
        report.width
        and report.height
        and report.detected_type in ("jpeg", "png", "heic")
        and report.measurements.get("decoded")
    ):
        try:
            derived = make_derivatives(
                data,
                width=report.width,
                height=report.height,
                orientation=report.orientation,
                detected_type=report.detected_type,
                progressive=bool(report.measurements.get("progressive")),
                decoded=report.colour,
            )
        except ValueError:
            log.warning("no derivatives for photo %s", photo.id)
        else:
            base = photo.storage_key.rsplit("/", 1)[0]
            work.thumbnail_key, work.safe_key = f"{base}/thumbnail.jpg", f"{base}/client-safe.jpg"
            storage.put(work.thumbnail_key, derived.thumbnail, content_type="image/jpeg")
            storage.put(work.safe_key, derived.safe, content_type="image/jpeg")
            work.faces_blurred = derived.faces_blurred
    report.colour = None  # used; not kept while the submission's other photos are checked
    return work


def duplicate_checks(session: Session, index: HashIndex, works: list[PhotoWork]) -> None:
    """Earlier photos anywhere on the platform (fail), and twins inside this submission (warn).

    Run under the duplicate lock (checks.duplicates.lock_for_duplicates) with a fresh index, so
    that two submissions of the same picture cannot both pass.
    """
    mine = {w.photo.id for w in works}
    for work in works:
        report = work.report
        if report.sha256 is None or not report.measurements.get("decoded"):
            continue
        exact, reference = exact_copies(session, report.sha256, mine)
        near, near_reference = (
            (None, False) if exact or reference else _near_duplicate(session, index, report, mine)
        )
        work.extra.append(duplicate_check(exact, reference, near, near_reference))
    _twins(works)


def exact_copies(session: Session, sha256: str, mine: set[uuid.UUID]) -> tuple[bool, bool]:
    """Whether the same file was submitted before (outside `mine`), and whether it is a reference photo."""
    exact = session.exec(
        select(Photo.id)
        .where(Photo.sha256 == sha256, col(Photo.id).not_in(mine), Photo.status == PhotoStatus.checked.value)
        .limit(1)
    ).first()
    reference = session.exec(
        select(ReferencePhoto.id).where(ReferencePhoto.sha256 == sha256).limit(1)
    ).first()
    return exact is not None, reference is not None


def duplicate_check(exact: bool, reference: bool, near: int | None, near_reference: bool) -> Check:
    """The explained outcome of the comparison with every earlier photo and reference photo."""
    threshold = text(DUPLICATE_THRESHOLD)
    if reference or near_reference:
        return Check.of(
            "duplicate",
            Outcome.fail,
            text(_("identical file")) if reference else text(_("{bits} of 64 bits differ"), bits=near),
            threshold,
            text(
                _(
                    "This photo is a copy of the client's reference photo, not a photo taken during "
                    "the visit. Each task needs new photos of the shelf."
                )
            ),
        )
    if exact:
        return Check.of(
            "duplicate",
            Outcome.fail,
            text(_("identical file")),
            threshold,
            text(
                _(
                    "This exact photo was already submitted before. Each task needs new photos "
                    "taken during the visit."
                )
            ),
        )
    if near is not None:
        return Check.of(
            "duplicate",
            Outcome.fail,
            text(_("{bits} of 64 bits differ"), bits=near),
            threshold,
            text(
                _(
                    "This photo is the same picture as one submitted before (perhaps resized, "
                    "cropped or re-saved). Each task needs new photos taken during the visit."
                )
            ),
        )
    return Check.of(
        "duplicate", Outcome.passed, None, threshold, text(_("This photo was not submitted before."))
    )


def _near_duplicate(
    session: Session, index: HashIndex, report: PhotoReport, mine: set[uuid.UUID]
) -> tuple[int | None, bool]:
    """The bit distance to an earlier photo (or reference photo: True) that is the same picture."""
    if not report.comparable or report.phash is None:
        return None, False
    candidates = [c for c in index.candidates(report.phash) if c.photo_id not in mine]
    if not candidates:
        return None, False
    ids = [c.photo_id for c in candidates]
    stored = {
        row.owner_id: row
        for row in session.exec(
            select(PhotoHash).where(
                or_(col(PhotoHash.photo_id).in_(ids), col(PhotoHash.reference_id).in_(ids))
            )
        ).all()
    }
    for candidate in sorted(candidates, key=lambda c: c.distance):
        row = stored.get(candidate.photo_id)
        if row is not None and same_picture(report, row.model_dump())[0]:
            return candidate.distance, row.reference_id is not None
    return None, False


def _twins(works: list[PhotoWork]) -> None:
    for index_a, a in enumerate(works):
        for b in works[index_a + 1 :]:
            if a.report.sha256 == b.report.sha256 and a.report.sha256 is not None:
                twin: tuple[bool, int] = (True, 0)
            elif a.report.comparable and b.report.comparable:
                twin = same_picture(a.report, b.report)
            else:
                continue
            if twin[0]:
                b.extra.append(
                    Check.of(
                        "duplicate_in_submission",
                        Outcome.warn,
                        text(_("same picture as photo {photo}"), photo=str(a.photo.id)),
                        text(_("different pictures")),
                        text(
                            _(
                                "Two photos of this submission are the same picture; a reviewer will check "
                                "that the task is complete."
                            )
                        ),
                    )
                )


def store_measurements(session: Session, work: PhotoWork, now: datetime) -> None:
    """What the checks found out about the photo, its derivatives, and its hashes for later ones."""
    photo, report = work.photo, work.report
    stored = session.get(Photo, photo.id, populate_existing=True)
    assert stored is not None
    stored.status = PhotoStatus.checked.value
    stored.detected_type = report.detected_type
    stored.width, stored.height = report.width, report.height
    stored.sha256 = report.sha256
    taken = report.exif.get("taken_local")
    stored.exif_lat, stored.exif_lon = report.exif.get("gps_lat"), report.exif.get("gps_lon")
    stored.exif_taken_at = work.taken_at
    stored.measurements = {
        **report.measurements,
        "faces_blurred": work.faces_blurred,
        **({"exif_taken_local": taken} if taken else {}),
    }
    stored.thumbnail_key, stored.safe_key = work.thumbnail_key, work.safe_key
    stored.checked_at = now
    session.add(stored)
    if report.phash is not None and report.dhash is not None and report.fingerprint:
        session.add(
            PhotoHash(
                photo_id=photo.id, phash=report.phash, dhash=report.dhash, fingerprint=report.fingerprint
            )
        )
    if report.features is not None and len(report.features) >= reference.MIN_MATCHES:
        session.merge(PhotoFeatures(photo_id=photo.id, features=report.features.to_bytes()))


def record_results(
    session: Session, assignment_id: uuid.UUID, results: list[tuple[uuid.UUID | None, Check]]
) -> None:
    """Every check of a submission, in order: those of each photo, then those of the visit."""
    for position, (photo_id, check) in enumerate(results):
        after_commit(session, metrics.CHECKS.labels(check.name, check.outcome.value).inc)
        session.add(
            CheckResultRow(
                assignment_id=assignment_id,
                photo_id=photo_id,
                position=position,
                name=check.name,
                outcome=check.outcome,
                value=check.value,
                threshold=check.threshold,
                explanation=check.explanation,
                texts=check.texts_json() or None,
            )
        )


def results_of(session: Session, assignment_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[CheckResultRow]]:
    """The check results of each assignment, in order."""
    grouped: dict[uuid.UUID, list[CheckResultRow]] = {i: [] for i in assignment_ids}
    if assignment_ids:
        for row in session.exec(
            select(CheckResultRow)
            .where(col(CheckResultRow.assignment_id).in_(assignment_ids))
            .order_by(col(CheckResultRow.assignment_id), col(CheckResultRow.position))
        ).all():
            grouped[row.assignment_id].append(row)
    return grouped


def rehash_turned(session: Session, storage: ObjectStorage, *, batch: int = 200) -> tuple[int, int]:
    """Bring stored hashes to HASH_VERSION 2 (taken upright): the rows of photos and references
    stored sideways or upside down are replaced (a new row, so every process's index loads it);
    the others are unchanged. Returns (rows looked at, rows replaced). Safe to run again."""
    seen = changed = 0
    last = 0
    while True:
        rows = session.exec(
            select(PhotoHash).where(col(PhotoHash.seq) > last).order_by(col(PhotoHash.seq)).limit(batch)
        ).all()
        if not rows:
            return seen, changed
        for row in rows:
            last = max(last, int(row.seq or 0))
            seen += 1
            key = _stored_key(session, row)
            data = storage.get_bytes(key) if key else None
            fresh = _upright_hashes(data) if data else None
            if fresh is None or (fresh[0], fresh[1]) == (row.phash, row.dhash):
                continue
            replacement = PhotoHash(
                photo_id=row.photo_id,
                reference_id=row.reference_id,
                phash=fresh[0],
                dhash=fresh[1],
                fingerprint=fresh[2],
            )
            session.delete(row)
            session.flush()
            session.add(replacement)
            changed += 1
        session.commit()


def _stored_key(session: Session, row: PhotoHash) -> str | None:
    if row.photo_id is not None:
        photo = session.get(Photo, row.photo_id)
        # The photo as sent, never the blurred copy left after the retention (then nothing to redo).
        return photo.original_key if photo is not None else None
    reference = session.get(ReferencePhoto, row.reference_id)
    return reference.storage_key if reference is not None else None


def _upright_hashes(data: bytes) -> tuple[int, int, str] | None:
    """The hashes a check takes of this stored photo today, or None when it is not turned (its
    hashes were already taken upright) or cannot be read."""
    report = check_photo(data, min_short_side_px=0, max_bytes=len(data))
    if report.orientation == 1 or report.phash is None or report.dhash is None or not report.fingerprint:
        return None
    return report.phash, report.dhash, report.fingerprint


def refeature(session: Session, storage: ObjectStorage, *, batch: int = 100) -> tuple[int, int]:
    """Recompute stored local features of an older kind (reference.METHOD changed): those of the
    usable reference photos and of checked photos, from their stored files. Returns (features
    looked at, recomputed). Safe to run again, and while serving."""
    seen = changed = 0
    for stored_ref in session.exec(
        select(ReferencePhoto).where(
            col(ReferencePhoto.features).is_not(None), col(ReferencePhoto.deleted_at).is_(None)
        )
    ).all():
        seen += 1
        assert stored_ref.features is not None
        if reference.Features.from_bytes(stored_ref.features).current:
            continue
        fresh = _features_of(storage, stored_ref.storage_key)
        stored_ref.features = fresh.to_bytes() if fresh is not None else None
        session.add(stored_ref)
        changed += 1
    session.commit()
    last: uuid.UUID | None = None
    while True:
        query = select(PhotoFeatures).order_by(col(PhotoFeatures.photo_id)).limit(batch)
        if last is not None:
            query = query.where(col(PhotoFeatures.photo_id) > last)
        rows = session.exec(query).all()
        if not rows:
            return seen, changed
        for row in rows:
            last = row.photo_id
            seen += 1
            if reference.Features.from_bytes(row.features).current:
                continue
            photo = session.get(Photo, row.photo_id)
            if photo is not None and photo.original_key is None:
                continue  # removed after the retention: its features stay as they were measured
            fresh = _features_of(storage, photo.original_key) if photo is not None else None
            if fresh is None:
                session.delete(row)
            else:
                row.features = fresh.to_bytes()
                session.add(row)
            changed += 1
        session.commit()


def _features_of(storage: ObjectStorage, key: str | None) -> reference.Features | None:
    data = storage.get_bytes(key) if key else None
    if not data:
        return None
    features, _problem = reference_features_of(
        check_photo(data, min_short_side_px=0, max_bytes=len(data), references=())
    )
    return features
