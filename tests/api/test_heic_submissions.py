"""An iPhone's HEIC photo through the API, on every backend: accepted, checked, paid, and shown to
reviewers and clients as JPEG."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import select

from fieldcheck.auth.models import Role
from fieldcheck.photos.models import Photo
from tests.api.test_review import decide
from tests.support import photos
from tests.support.factories import make_account, runtime_of
from tests.support.submissions import Field, by_check, checked, fetch, submit, upload


def test_a_heic_photo_is_accepted_checked_and_shown_as_jpeg(app_client: Any) -> None:
    field = Field(app_client, review_all=True)
    worker = field.worker()
    assignment_id = field.reserve(worker)
    for declared in ("image/heic", "image/heif"):
        photo_id = upload(
            app_client, worker, assignment_id, photos.heic(orientation=6), content_type=declared
        )
    assert submit(app_client, worker, assignment_id, [photo_id]).status_code == 202
    result = checked(app_client, worker, assignment_id)
    checks = by_check(result)
    assert checks["file"][0]["value"] == "HEIC, 1200x1600"
    assert {c["outcome"] for c in result["checks"] if c["photo_id"] == photo_id} == {"pass"}, result["checks"]
    assert result["status"] == "in_review"  # review_all: every submission goes to a person
    with runtime_of(app_client).db.transaction(read_only=True) as session:
        stored = session.get(Photo, uuid.UUID(photo_id))
        assert stored is not None
        assert stored.storage_key.endswith(".heic") and stored.detected_type == "heic"
        assert stored.served_type == "image/heic" and stored.safe_key and stored.safe_key.endswith(".jpg")
    # The reviewer's browser gets a JPEG it can show, upright.
    reviewer = make_account(runtime_of(app_client), Role.reviewer)
    assert (
        app_client.post(f"/api/v1/review/{assignment_id}/claim", headers=reviewer.headers).status_code == 200
    )
    item = app_client.get(f"/api/v1/review/{assignment_id}", headers=reviewer.headers).json()
    shown = fetch(app_client, item["photos"][0]["url"])
    assert shown[:3] == b"\xff\xd8\xff"
    assert decide(app_client, reviewer, assignment_id, "approve").status_code == 200
    # The client's results are JPEG too.
    results = app_client.get(
        f"/api/v1/campaigns/{field.campaign['id']}/results", headers=field.owner.headers
    ).json()
    assert fetch(app_client, results["items"][0]["photos"][0]["url"])[:3] == b"\xff\xd8\xff"


def test_a_heic_bomb_and_a_truncated_heic_fail_their_file_check(app_client: Any) -> None:
    field = Field(app_client)
    for data, expected in (
        (photos.heic_claiming(40000, 40000), "far larger"),
        (photos.heic()[:50_000], "truncated"),
    ):
        worker = field.worker()
        assignment_id = field.reserve(worker)
        photo_id = upload(app_client, worker, assignment_id, data, content_type="image/heic")
        assert submit(app_client, worker, assignment_id, [photo_id]).status_code == 202
        result = checked(app_client, worker, assignment_id)
        assert result["status"] == "rejected"
        found = by_check(result)["file"][0]
        assert found["outcome"] == "fail" and expected in found["explanation"]
    with runtime_of(app_client).db.transaction(read_only=True) as session:
        assert all(p.safe_key is None for p in session.exec(select(Photo)).all())
