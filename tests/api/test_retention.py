"""Retention: the photos as sent and the phone's position go FIELDCHECK_ORIGINAL_RETENTION_DAYS after
the decision is final; the client-safe copies, thumbnails and distances stay, and every view that
showed an original shows the client-safe copy instead."""

from __future__ import annotations

import io
import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

from PIL import Image
from sqlmodel import col, select, update

from fieldcheck.assignments.models import Assignment
from fieldcheck.assignments.service import expire_overdue, sweep_unsubmitted_photos
from fieldcheck.auth.models import Role
from fieldcheck.checks.models import CheckResultRow
from fieldcheck.db import utcnow
from fieldcheck.jobs import PERIODIC, enqueue
from fieldcheck.photos.models import Photo
from fieldcheck.privacy import retention
from fieldcheck.privacy.retention import Removed
from fieldcheck.runtime import Runtime
from fieldcheck.settings import Settings
from tests.api.test_review import claim, decide
from tests.support import photos
from tests.support.console import sign_in
from tests.support.factories import Account, make_account, runtime_of
from tests.support.submissions import STORE_LAT, STORE_LON, Field, checked, fetch, submit, upload

SEEDS = iter(range(7100, 9000))
DAY = timedelta(days=1)


def with_gps(data: bytes, lat: float, lon: float) -> bytes:
    """The JPEG with a GPS position in its EXIF, as a phone's camera writes it."""

    def dms(value: float) -> tuple[int, int, float]:
        degrees = int(value)
        minutes = int((value - degrees) * 60)
        return degrees, minutes, round(((value - degrees) * 60 - minutes) * 60, 4)

    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: dms(lat), 3: "E", 4: dms(lon)}
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).save(out, "JPEG", exif=exif, quality=92)
    return out.getvalue()


def shelf() -> bytes:
    return with_gps(photos.jpeg(photos.scene(seed=next(SEEDS))), STORE_LAT, STORE_LON)


def visit(client: Any, field: Field, **submission: Any) -> tuple[Account, str, str]:
    """A new worker's visit: one photo (with its GPS), its instant checks, the submission, the checks."""
    worker = field.worker()
    assignment_id = field.reserve(worker)
    photo_id = upload(client, worker, assignment_id, shelf())
    said = client.post(
        f"/api/v1/assignments/{assignment_id}/photos/{photo_id}/uploaded", headers=worker.headers
    )
    assert said.status_code == 202, said.text
    runtime_of(client).jobs.join()
    assert submit(client, worker, assignment_id, [photo_id], **submission).status_code == 202
    checked(client, worker, assignment_id)
    return worker, assignment_id, photo_id


def approved(client: Any, field: Field) -> tuple[Account, str, str]:
    worker, assignment_id, photo_id = visit(client, field)
    if checked(client, worker, assignment_id)["status"] == "in_review":  # some checks were not sure
        reviewer = make_account(runtime_of(client), Role.reviewer)
        assert claim(client, reviewer, assignment_id).status_code == 200
        assert decide(client, reviewer, assignment_id, "approve").status_code == 200
    assert checked(client, worker, assignment_id)["status"] == "approved"
    return worker, assignment_id, photo_id


def rows(runtime: Runtime, assignment_id: str, photo_id: str) -> tuple[Assignment, Photo]:
    with runtime.db.transaction(read_only=True) as session:
        assignment = session.get(Assignment, uuid.UUID(assignment_id))
        photo = session.get(Photo, uuid.UUID(photo_id))
        assert assignment is not None and photo is not None
        return assignment, photo


def decided_at(runtime: Runtime, assignment_id: str) -> datetime:
    with runtime.db.transaction(read_only=True) as session:
        assignment = session.get(Assignment, uuid.UUID(assignment_id))
    assert assignment is not None and assignment.decided_at is not None
    return assignment.decided_at


def stored(runtime: Runtime, key: str | None) -> bool:
    return key is not None and runtime.storage.head(key) is not None


def keeps_everything(runtime: Runtime, assignment_id: str, photo_id: str) -> None:
    assignment, photo = rows(runtime, assignment_id, photo_id)
    assert assignment.positions_removed_at is None and photo.originals_removed_at is None
    assert assignment.device_lat is not None and assignment.device_id is not None
    assert photo.exif_lat is not None and photo.frozen_key is not None
    assert stored(runtime, photo.frozen_key)


def remove(runtime: Runtime, at: datetime, settings: Settings | None = None) -> Removed:
    return retention.remove_originals(runtime.db, runtime.storage, settings or runtime.settings, now=at)


def test_an_approval_loses_its_originals_and_positions_after_the_retention(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    field = Field(app_client)
    worker, assignment_id, photo_id = approved(app_client, field)
    before, photo = rows(runtime, assignment_id, photo_id)
    assert photo.early_report is not None and "gps_lat" in photo.early_report["exif"]
    assert before.distance_m is not None and before.device_id == "phone-test-1"
    keeps_everything(runtime, assignment_id, photo_id)
    original, frozen, safe, thumbnail = (
        photo.storage_key,
        photo.frozen_key,
        photo.safe_key,
        photo.thumbnail_key,
    )
    assert safe is not None and thumbnail is not None and stored(runtime, safe) and stored(runtime, thumbnail)
    with runtime.db.transaction(read_only=True) as session:
        results_before = len(
            session.exec(
                select(CheckResultRow).where(CheckResultRow.assignment_id == uuid.UUID(assignment_id))
            ).all()
        )
    decided = decided_at(runtime, assignment_id)
    days = runtime.settings.original_retention_days
    assert days == 180  # the default

    assert remove(runtime, decided + (days - 1) * DAY) == Removed(assignments=0, photos=0)  # kept so far
    keeps_everything(runtime, assignment_id, photo_id)

    assert remove(runtime, decided + (days + 1) * DAY) == Removed(assignments=1, photos=1)
    assert not stored(runtime, frozen) and not stored(runtime, original)  # really gone from storage
    assert stored(runtime, safe) and stored(runtime, thumbnail)  # the client's audit keeps these
    after, photo = rows(runtime, assignment_id, photo_id)
    assert after.positions_removed_at is not None and photo.originals_removed_at is not None
    assert (after.device_lat, after.device_lon, after.device_accuracy_m, after.device_id) == (
        None,
        None,
        None,
        None,
    )
    assert after.distance_m == before.distance_m and after.status == "approved"
    assert after.decided_at == before.decided_at and after.updated_at == before.updated_at
    assert (photo.exif_lat, photo.exif_lon) == (None, None)
    assert photo.early_report is not None and not {"gps_lat", "gps_lon"} & set(photo.early_report["exif"])
    assert photo.safe_key == safe and photo.thumbnail_key == thumbnail
    with runtime.db.transaction(read_only=True) as session:
        results = session.exec(
            select(CheckResultRow).where(CheckResultRow.assignment_id == uuid.UUID(assignment_id))
        ).all()
    assert len(results) == results_before  # the checks' explanations stay (distances, no positions)

    # Twice is harmless: nothing more to do, and the copies stay.
    assert remove(runtime, decided + (days + 2) * DAY) == Removed(assignments=0, photos=0)
    assert stored(runtime, safe) and stored(runtime, thumbnail)

    # The worker sees the client-safe copy, told why.
    mine = app_client.get(f"/api/v1/assignments/{assignment_id}", headers=worker.headers)
    assert mine.status_code == 200, mine.text
    shown = mine.json()["photos"][0]
    assert shown["originals_removed_at"] is not None
    assert "client-safe" in shown["url"] and "submitted" not in shown["url"]
    assert fetch(app_client, shown["url"]) == runtime.storage.get_bytes(safe)
    assert fetch(app_client, shown["thumbnail_url"]) == runtime.storage.get_bytes(thumbnail)
    one = app_client.get(f"/api/v1/assignments/{assignment_id}/photos/{photo_id}", headers=worker.headers)
    assert one.status_code == 200, one.text
    assert fetch(app_client, one.json()["url"]) == runtime.storage.get_bytes(safe)
    assert one.json()["checks"]  # the instant checks stay readable

    # The client's results: unchanged, the distance included.
    results_page = app_client.get(
        f"/api/v1/campaigns/{field.campaign['id']}/results", headers=field.owner.headers
    )
    assert results_page.status_code == 200, results_page.text
    row = next(r for r in results_page.json()["items"] if r["assignment_id"] == assignment_id)
    assert row["distance_m"] == round(before.distance_m, 1)
    assert fetch(app_client, row["photos"][0]["url"]) == runtime.storage.get_bytes(safe)
    assert sign_in(app_client, field.owner).status_code == 303
    page = app_client.get(f"/console/campaigns/{field.campaign['id']}")
    assert page.status_code == 200 and "client-safe" in page.text and "submitted." not in page.text
    app_client.cookies.clear()

    # A reviewer deciding the next visit of the store sees the earlier one's client-safe copy.
    next_worker, flagged, _ = visit(app_client, field, accuracy_m=400.0)
    assert checked(app_client, next_worker, flagged)["status"] == "in_review"
    reviewer = make_account(runtime, Role.reviewer)
    item = app_client.get(f"/api/v1/review/{flagged}", headers=reviewer.headers)
    assert item.status_code == 200, item.text
    earlier = item.json()["earlier_photos_of_store"]
    assert [e["assignment_id"] for e in earlier] == [assignment_id]
    assert fetch(app_client, earlier[0]["url"]) == runtime.storage.get_bytes(safe)
    assert sign_in(app_client, reviewer).status_code == 303
    page = app_client.get(f"/console/review/{flagged}")
    assert page.status_code == 200 and "client-safe" in page.text


def test_a_rejection_is_kept_through_its_appeal_window(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    short = runtime.settings.model_copy(update={"original_retention_days": 1})
    window = short.appeal_window_days * DAY
    field = Field(app_client)
    far = STORE_LAT + 0.5  # 55 km from the store: the checks reject it
    worker, assignment_id, photo_id = visit(app_client, field, lat=far)
    assert checked(app_client, worker, assignment_id)["status"] == "rejected"
    decided = decided_at(runtime, assignment_id)

    # A day after the decision the retention has passed, but the worker may still appeal.
    assert remove(runtime, decided + 2 * DAY, short) == Removed(0, 0)
    assert remove(runtime, decided + window + DAY / 2, short) == Removed(0, 0)  # final, not a day ago
    keeps_everything(runtime, assignment_id, photo_id)
    assert remove(runtime, decided + window + 2 * DAY, short) == Removed(1, 1)
    _, photo = rows(runtime, assignment_id, photo_id)
    assert photo.originals_removed_at is not None and not stored(runtime, photo.frozen_key)


def test_an_appealed_rejection_is_kept_until_the_appeal_is_decided(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    short = runtime.settings.model_copy(update={"original_retention_days": 1})
    field = Field(app_client)
    ana, bob = make_account(runtime, Role.reviewer), make_account(runtime, Role.reviewer)
    worker, assignment_id, photo_id = visit(app_client, field, accuracy_m=400.0)
    assert checked(app_client, worker, assignment_id)["status"] == "in_review"
    assert claim(app_client, ana, assignment_id).status_code == 200
    assert decide(app_client, ana, assignment_id, "reject", ["blurry"]).status_code == 200
    appealed = app_client.post(
        f"/api/v1/assignments/{assignment_id}/appeal", json={"message": "look again"}, headers=worker.headers
    )
    assert appealed.status_code == 201, appealed.text
    years = utcnow() + 3650 * DAY
    assert remove(runtime, years, short) == Removed(0, 0)  # appealed: no final decision
    keeps_everything(runtime, assignment_id, photo_id)

    assert claim(app_client, bob, assignment_id).status_code == 200
    assert decide(app_client, bob, assignment_id, "reject", ["not_in_store"]).status_code == 200
    decided = decided_at(runtime, assignment_id)
    assert remove(runtime, decided + DAY / 2, short) == Removed(0, 0)
    # Decided on appeal: final at once, the appeal window does not count again.
    assert remove(runtime, decided + 2 * DAY, short) == Removed(1, 1)
    assert checked(app_client, worker, assignment_id)["photos"][0]["originals_removed_at"] is not None


def test_an_approval_drawn_for_an_audit_is_kept_until_audited(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    field = Field(app_client, audit_sample_percent=100)
    worker, assignment_id, photo_id = visit(app_client, field)
    assert checked(app_client, worker, assignment_id)["status"] == "approved"
    days = runtime.settings.original_retention_days
    later = decided_at(runtime, assignment_id) + (days + 30) * DAY
    assert remove(runtime, later) == Removed(0, 0)  # an audit may still find problems
    keeps_everything(runtime, assignment_id, photo_id)

    reviewer = make_account(runtime, Role.reviewer)
    assert claim(app_client, reviewer, assignment_id).status_code == 200
    assert decide(app_client, reviewer, assignment_id, "approve").status_code == 200
    audited, _ = rows(runtime, assignment_id, photo_id)
    assert audited.audited_at is not None
    assert remove(runtime, audited.audited_at + (days - 1) * DAY) == Removed(0, 0)
    assert remove(runtime, audited.audited_at + (days + 1) * DAY) == Removed(1, 1)


def test_work_without_a_decision_keeps_its_originals(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    field = Field(app_client)
    worker, assignment_id, photo_id = visit(app_client, field, accuracy_m=400.0)
    assert checked(app_client, worker, assignment_id)["status"] == "in_review"
    assert remove(runtime, utcnow() + 3650 * DAY) == Removed(0, 0)
    keeps_everything(runtime, assignment_id, photo_id)


def test_ended_reservations_photos_go_with_the_sweep_not_the_retention(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    field = Field(app_client)
    ended: list[tuple[str, list[str]]] = []
    for how in ("cancelled", "expired"):
        worker = field.worker()
        assignment_id = field.reserve(worker)
        photo_id = upload(app_client, worker, assignment_id, shelf())
        said = app_client.post(
            f"/api/v1/assignments/{assignment_id}/photos/{photo_id}/uploaded", headers=worker.headers
        )
        assert said.status_code == 202, said.text
        runtime.jobs.join()
        if how == "cancelled":
            cancelled = app_client.delete(f"/api/v1/assignments/{assignment_id}", headers=worker.headers)
            assert cancelled.status_code == 200, cancelled.text
        else:
            with runtime.db.transaction() as session:
                assert expire_overdue(session, now=utcnow() + 3650 * DAY) == 1
        _, photo = rows(runtime, assignment_id, photo_id)
        keys = [k for k in (photo.storage_key, photo.thumbnail_key, photo.safe_key) if k]
        assert len(keys) == 3 and all(stored(runtime, k) for k in keys)
        ended.append((photo_id, keys))
        assignment, _ = rows(runtime, assignment_id, photo_id)
        assert assignment.status == how and assignment.device_lat is None  # never held a position

    # No decision, so nothing for the retention; their photos were never submitted, and go whole,
    # copies included, once no upload can still arrive.
    assert remove(runtime, utcnow() + 3650 * DAY) == Removed(0, 0)
    later = utcnow() + timedelta(seconds=runtime.settings.signed_url_ttl_s + 600)
    with runtime.db.transaction() as session:
        assert sweep_unsubmitted_photos(session, runtime.settings, now=later) == 2
    runtime.jobs.join()
    with runtime.db.transaction(read_only=True) as session:
        assert (
            session.exec(select(Photo).where(col(Photo.id).in_([uuid.UUID(p) for p, _ in ended]))).all() == []
        )
    assert not any(stored(runtime, key) for _, keys in ended for key in keys)


def test_runs_at_the_same_time_remove_each_thing_once(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    field = Field(app_client)
    visits = [approved(app_client, field) for _ in range(3)]
    with runtime.db.transaction() as session:  # decided long ago
        session.exec(
            update(Assignment)
            .where(col(Assignment.id).in_([uuid.UUID(a) for _, a, _ in visits]))
            .values(decided_at=utcnow() - 400 * DAY)
        )
    outcomes: list[Removed] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run() -> None:
        try:
            start.wait()
            outcomes.append(remove(runtime, utcnow()))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sum(o.assignments for o in outcomes) == 3 and sum(o.photos for o in outcomes) == 3
    for _, assignment_id, photo_id in visits:
        assignment, photo = rows(runtime, assignment_id, photo_id)
        assert assignment.positions_removed_at is not None and assignment.device_lat is None
        assert photo.originals_removed_at is not None and not stored(runtime, photo.frozen_key)
        assert stored(runtime, photo.safe_key)


def test_the_hourly_job_removes_what_is_due(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    assert PERIODIC["privacy.remove_originals"].every == timedelta(hours=1)
    _, assignment_id, photo_id = approved(app_client, Field(app_client))
    with runtime.db.transaction() as session:
        session.exec(
            update(Assignment)
            .where(col(Assignment.id) == uuid.UUID(assignment_id))
            .values(decided_at=utcnow() - 181 * DAY)
        )
        enqueue(session, "privacy.remove_originals")
    runtime.jobs.join()
    assignment, photo = rows(runtime, assignment_id, photo_id)
    assert assignment.positions_removed_at is not None and photo.originals_removed_at is not None
    assert not stored(runtime, photo.frozen_key) and stored(runtime, photo.safe_key)


def test_a_photo_without_its_original_shows_its_copy_or_nothing() -> None:
    photo = Photo(
        storage_key="photos/a/p/original.heic",
        frozen_key="photos/a/p/submitted.heic",
        declared_type="image/heic",
        declared_bytes=1,
        detected_type="heic",
        safe_key="photos/a/p/client-safe.jpg",
    )
    assert photo.original_key == photo.content_key == "photos/a/p/submitted.heic"
    assert (photo.viewable_key, photo.viewable_type) == ("photos/a/p/client-safe.jpg", "image/jpeg")
    photo.originals_removed_at = utcnow()
    assert photo.original_key is None
    assert (photo.content_key, photo.content_type) == ("photos/a/p/client-safe.jpg", "image/jpeg")
    assert photo.viewable_key == "photos/a/p/client-safe.jpg"
    photo.safe_key = None  # the derivatives could not be made: nothing left to show
    assert photo.content_key is None and photo.viewable_key is None
