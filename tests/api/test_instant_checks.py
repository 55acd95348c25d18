"""Instant per-photo checks: the phone says an upload finished, reads the photo's checks while still
in the store, retakes a bad one, and the submission reuses what was measured; on every backend."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import func, select

from fieldcheck.assignments import checking
from fieldcheck.jobs import OutboxMessage
from fieldcheck.photos.models import Photo
from tests.support import photos
from tests.support.factories import problem, runtime_of
from tests.support.submissions import Field, by_check, checked, submit, upload

SHAKEN = "blur_honor7x_176_motion.jpg"  # a real shaken phone photo: its blur check fails
SHARP = "blur_honor7x_176_sharp.jpg"  # the same scene, sharp


def say_uploaded(client: Any, worker: Any, assignment_id: str, photo_id: str, **headers: str) -> Any:
    return client.post(
        f"/api/v1/assignments/{assignment_id}/photos/{photo_id}/uploaded",
        headers={**worker.headers, **headers},
    )


def photo_checks(
    client: Any, worker: Any, assignment_id: str, photo_id: str, **headers: str
) -> dict[str, Any]:
    runtime_of(client).jobs.join()
    answer = client.get(
        f"/api/v1/assignments/{assignment_id}/photos/{photo_id}", headers={**worker.headers, **headers}
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def named(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in body["checks"]}


def test_a_shaken_photo_is_explained_in_the_store_retaken_and_the_submission_reuses_the_checks(
    app_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    field = Field(app_client)
    worker = field.worker()
    assignment_id = field.reserve(worker)

    shaken_id = upload(app_client, worker, assignment_id, photos.real(SHAKEN))
    said = say_uploaded(app_client, worker, assignment_id, shaken_id)
    assert said.status_code == 202, said.text
    assert said.json()["check_status"] == "pending"
    assert said.json()["checks"] == []
    shaken = photo_checks(app_client, worker, assignment_id, shaken_id)
    assert shaken["check_status"] == "checked"
    checks = named(shaken)
    assert {"file", "resolution", "blur", "exposure", "screen", "reference_match", "duplicate"} <= set(checks)
    assert {"exif_time", "exif_gps"} <= set(checks)  # its own time and place, as far as known yet
    assert checks["blur"]["outcome"] == "fail"
    assert "Hold the phone still" in checks["blur"]["explanation"]
    assert checks["blur"]["value"].endswith(" px")
    assert shaken["thumbnail_url"], "the phone can show the photo it took"
    # The same checks in French, for a phone set to French.
    french = named(
        photo_checks(app_client, worker, assignment_id, shaken_id, **{"Accept-Language": "fr-FR,fr"})
    )
    assert french["blur"]["explanation"].startswith("La photo est floue")
    assert "," in french["blur"]["value"]  # 4,98 px: a decimal comma
    # The duplicate answer is a first look (the same file only): the submission's decides.
    assert checks["duplicate"]["outcome"] == "pass"
    assert "is checked when you submit" in checks["duplicate"]["explanation"]

    # Said again for the same upload (a phone retrying): nothing new is queued.
    runtime = runtime_of(app_client)
    with runtime.db.transaction(read_only=True) as session:
        queued = session.exec(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.job_name == "assignments.check_photo")
        ).one()
    again = say_uploaded(app_client, worker, assignment_id, shaken_id)
    assert again.status_code == 202 and again.json()["check_status"] == "checked"
    with runtime.db.transaction(read_only=True) as session:
        assert (
            session.exec(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.job_name == "assignments.check_photo")
            ).one()
            == queued
        )

    # The worker deletes it: its place is free, its objects (the upload and its copies) go.
    with runtime.db.transaction(read_only=True) as session:
        stored = session.get(Photo, uuid.UUID(shaken_id))
        assert stored is not None
        keys = [stored.storage_key, stored.thumbnail_key, stored.safe_key]
    assert all(keys)
    dropped = app_client.delete(
        f"/api/v1/assignments/{assignment_id}/photos/{shaken_id}", headers=worker.headers
    )
    assert dropped.status_code == 204, dropped.text
    runtime.jobs.join()
    assert all(runtime.storage.head(key) is None for key in keys if key)
    gone = app_client.get(f"/api/v1/assignments/{assignment_id}/photos/{shaken_id}", headers=worker.headers)
    problem(gone, 404, "photo_not_found")

    sharp_id = upload(app_client, worker, assignment_id, photos.real(SHARP))
    assert say_uploaded(app_client, worker, assignment_id, sharp_id).status_code == 202
    sharp = photo_checks(app_client, worker, assignment_id, sharp_id)
    assert sharp["check_status"] == "checked"
    assert named(sharp)["blur"]["outcome"] == "pass", named(sharp)["blur"]

    # At submission the photo is not read or decoded again: what the instant checks found is used.
    def no_second_measure(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the submitted photo was measured again")

    monkeypatch.setattr(checking.checks, "measure_photo", no_second_measure)
    assert submit(app_client, worker, assignment_id, [sharp_id]).status_code == 202
    result = checked(app_client, worker, assignment_id)
    assert result["status"] == "approved", [(c["name"], c["outcome"], c["value"]) for c in result["checks"]]
    decided = by_check(result)
    assert decided["blur"][0]["value"] == named(sharp)["blur"]["value"]
    # The duplicate decision is made at submission: not the hint.
    assert "first look" not in decided["duplicate"][0]["explanation"]
    assert {"location", "exif_time", "exif_gps"} <= set(decided)
    # Submitted: the photo stays, and says so.
    late = say_uploaded(app_client, worker, assignment_id, sharp_id)
    problem(late, 409)


def test_a_re_saved_copy_passes_the_first_look_and_fails_at_submission_which_says_so(app_client: Any) -> None:
    """Near copies are judged at submission only: answering them early would let anyone edit a
    copied photo until it passes."""
    import io

    from PIL import Image

    field = Field(app_client)
    first = field.worker()
    first_assignment = field.reserve(first)
    original = photos.real(SHARP)
    first_photo = upload(app_client, first, first_assignment, original)
    assert submit(app_client, first, first_assignment, [first_photo]).status_code == 202
    assert checked(app_client, first, first_assignment)["status"] == "approved"
    resaved = io.BytesIO()
    Image.open(io.BytesIO(original)).save(resaved, "JPEG", quality=80)
    second = field.worker()
    assignment_id = field.reserve(second)
    copy_id = upload(app_client, second, assignment_id, resaved.getvalue())
    assert say_uploaded(app_client, second, assignment_id, copy_id).status_code == 202
    hint = named(photo_checks(app_client, second, assignment_id, copy_id))["duplicate"]
    assert hint["outcome"] == "pass" and "is checked when you submit" in hint["explanation"]
    assert submit(app_client, second, assignment_id, [copy_id]).status_code == 202
    result = checked(app_client, second, assignment_id)
    assert result["status"] == "rejected"
    final = by_check(result)["duplicate"][0]
    assert final["outcome"] == "fail"
    assert "This is not what the first look said" in final["explanation"]


def test_the_early_duplicate_answer_is_a_hint_and_the_submission_decides(app_client: Any) -> None:
    field = Field(app_client)
    data = photos.real(SHARP)
    first = field.worker()
    first_assignment = field.reserve(first)
    first_photo = upload(app_client, first, first_assignment, data)
    assert submit(app_client, first, first_assignment, [first_photo]).status_code == 202
    assert checked(app_client, first, first_assignment)["status"] == "approved"

    second = field.worker()
    assignment_id = field.reserve(second)
    copy_id = upload(app_client, second, assignment_id, data)
    assert say_uploaded(app_client, second, assignment_id, copy_id).status_code == 202
    hint = named(photo_checks(app_client, second, assignment_id, copy_id))["duplicate"]
    assert hint["outcome"] == "fail"
    assert "already submitted before" in hint["explanation"] and "first look" in hint["explanation"]
    assert submit(app_client, second, assignment_id, [copy_id]).status_code == 202
    result = checked(app_client, second, assignment_id)
    assert result["status"] == "rejected"
    assert by_check(result)["duplicate"][0]["outcome"] == "fail"


def test_bad_calls_get_clear_answers_and_a_failed_check_runs_again_at_submission(
    app_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    field = Field(app_client)
    worker, stranger = field.worker(), field.worker()
    assignment_id = field.reserve(worker)
    # Announced, never uploaded.
    announced = app_client.post(
        f"/api/v1/assignments/{assignment_id}/photos",
        json={"content_type": "image/jpeg", "size_bytes": 1000},
        headers=worker.headers,
    )
    waiting_id = announced.json()["photo_id"]
    problem(say_uploaded(app_client, worker, assignment_id, waiting_id), 422, "photo_not_uploaded")
    french = problem(
        say_uploaded(app_client, worker, assignment_id, waiting_id, **{"Accept-Language": "fr"}),
        422,
        "photo_not_uploaded",
    )
    assert french["detail"].startswith("la photo n'est pas encore arrivée"), french
    # Someone else's photo is not found, whoever asks for it.
    photo_id = upload(app_client, worker, assignment_id, photos.real(SHARP))
    problem(say_uploaded(app_client, stranger, assignment_id, photo_id), 404)
    problem(
        app_client.get(f"/api/v1/assignments/{assignment_id}/photos/{photo_id}", headers=stranger.headers),
        404,
    )

    # The instant checks fail (a storage outage, a bug): the photo says so, the submission measures it.
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError("storage went away")

    with monkeypatch.context() as patched:
        patched.setattr(checking.checks, "measure_photo", broken)
        assert say_uploaded(app_client, worker, assignment_id, photo_id).status_code == 202
        assert photo_checks(app_client, worker, assignment_id, photo_id)["check_status"] == "failed_to_check"
    dropped = app_client.delete(
        f"/api/v1/assignments/{assignment_id}/photos/{waiting_id}", headers=worker.headers
    )
    assert dropped.status_code == 204
    assert submit(app_client, worker, assignment_id, [photo_id]).status_code == 202
    result = checked(app_client, worker, assignment_id)
    assert result["status"] == "approved", [(c["name"], c["outcome"]) for c in result["checks"]]
    assert by_check(result)["blur"][0]["outcome"] == "pass"


def test_a_lost_check_is_asked_for_again_and_unsubmitted_photos_go_when_their_reservation_ends(
    app_client: Any,
) -> None:
    from datetime import timedelta

    from fieldcheck.assignments.service import sweep_unsubmitted_photos
    from fieldcheck.db import utcnow

    field = Field(app_client)
    worker = field.worker()
    assignment_id = field.reserve(worker)
    photo_id = upload(app_client, worker, assignment_id, photos.real(SHARP))
    runtime = runtime_of(app_client)
    with runtime.db.transaction() as session:  # as if its job had been lost long ago
        stored = session.get(Photo, uuid.UUID(photo_id))
        assert stored is not None
        stored.check_status, stored.check_requested_at = "pending", utcnow() - timedelta(minutes=10)
        stored.early_etag = runtime.storage.head(stored.storage_key).etag  # type: ignore[union-attr]
        session.add(stored)
    assert say_uploaded(app_client, worker, assignment_id, photo_id).status_code == 202
    assert photo_checks(app_client, worker, assignment_id, photo_id)["check_status"] == "checked"

    assert (
        app_client.delete(f"/api/v1/assignments/{assignment_id}", headers=worker.headers).status_code == 200
    )
    with runtime.db.transaction(read_only=True) as session:
        stored = session.get(Photo, uuid.UUID(photo_id))
        assert stored is not None
        keys = [k for k in (stored.storage_key, stored.thumbnail_key, stored.safe_key) if k]
    assert len(keys) == 3
    with runtime.db.transaction() as session:
        assert sweep_unsubmitted_photos(session, runtime.settings) == 0  # an upload could still arrive
    later = utcnow() + timedelta(seconds=runtime.settings.signed_url_ttl_s + 600)
    with runtime.db.transaction() as session:
        assert sweep_unsubmitted_photos(session, runtime.settings, now=later) == 1
    runtime.jobs.join()
    with runtime.db.transaction(read_only=True) as session:
        assert session.get(Photo, uuid.UUID(photo_id)) is None
    assert all(runtime.storage.head(key) is None for key in keys)


def test_a_photo_submitted_while_its_instant_checks_run_is_measured_once(
    app_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The phone submits right after its last upload: the submission's check waits for the instant
    checks already running on that photo instead of decoding and checking it a second time."""
    import threading

    field = Field(app_client)
    worker = field.worker()
    assignment_id = field.reserve(worker)
    real_measure = checking.checks.measure_photo
    calls: list[bool] = []
    entered, release = threading.Event(), threading.Event()

    def held_measure(*args: Any, **kwargs: Any) -> Any:
        calls.append(bool(kwargs.get("upload")))
        if kwargs.get("upload"):
            entered.set()
            assert release.wait(30)
        return real_measure(*args, **kwargs)

    real_wait = checking._wait_for_instant_checks
    waiting = threading.Event()

    def watched_wait(ctx: Any, photo: Any) -> Any:
        if photo.check_status == "pending" and photo.early_started_at is not None:
            waiting.set()
        return real_wait(ctx, photo)

    monkeypatch.setattr(checking.checks, "measure_photo", held_measure)
    monkeypatch.setattr(checking, "_wait_for_instant_checks", watched_wait)
    photo_id = upload(app_client, worker, assignment_id, photos.real(SHARP))
    assert say_uploaded(app_client, worker, assignment_id, photo_id).status_code == 202
    assert entered.wait(30), "the instant checks did not start"
    assert submit(app_client, worker, assignment_id, [photo_id]).status_code == 202
    # The submission's check starts meanwhile, finds the instant checks running, and waits.
    assert waiting.wait(30), "the submission's check did not wait for the instant checks"
    time.sleep(0.3)
    assert calls == [True]
    release.set()
    result = checked(app_client, worker, assignment_id)
    assert result["status"] == "approved", [(c["name"], c["outcome"], c["value"]) for c in result["checks"]]
    assert calls == [True], "the photo was measured again at submission"
    assert by_check(result)["blur"][0]["outcome"] == "pass"


def test_a_submission_does_not_wait_for_instant_checks_that_died(app_client: Any) -> None:
    """A worker killed in the middle of the instant checks leaves them started: past the wait, the
    submission measures the photo itself."""
    field = Field(app_client)
    worker = field.worker()
    assignment_id = field.reserve(worker)
    photo_id = upload(app_client, worker, assignment_id, photos.real(SHARP))
    runtime = runtime_of(app_client)
    with runtime.db.transaction() as session:
        stored = session.get(Photo, uuid.UUID(photo_id))
        assert stored is not None
        info = runtime.storage.head(stored.storage_key)
        assert info is not None
        stored.check_status, stored.early_etag = "pending", info.etag
        stored.early_started_at = datetime.now(UTC) - checking.INSTANT_CHECKS_WAIT - timedelta(seconds=1)
        session.add(stored)
    started = time.monotonic()
    assert submit(app_client, worker, assignment_id, [photo_id]).status_code == 202
    result = checked(app_client, worker, assignment_id)
    assert result["status"] == "approved", [(c["name"], c["outcome"], c["value"]) for c in result["checks"]]
    assert time.monotonic() - started < 20
