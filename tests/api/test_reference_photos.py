"""Reference photos of a campaign through the API, on every backend: attached, read, listed, compared
with every new photo, refused with a reason when unusable, removed; and a copy of one is caught."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
from sqlmodel import select

from fieldcheck.auth.models import Role
from fieldcheck.checks.imaging import cv2
from fieldcheck.photos.models import Photo
from tests.support import photos
from tests.support.factories import make_account, problem, runtime_of
from tests.support.submissions import Field, by_check, checked, fetch, put_to_storage, submit, upload

RULES = {"min_photos": 1, "max_photos": 4, "min_short_side_px": 300}


def attach(client: Any, field: Field, data: bytes, content_type: str = "image/jpeg") -> dict[str, Any]:
    """Attach a reference photo as a client's browser would, and wait until it is read."""
    base = f"/api/v1/campaigns/{field.campaign['id']}/reference-photos"
    answer = client.post(
        base, json={"content_type": content_type, "size_bytes": len(data)}, headers=field.owner.headers
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    put_to_storage(client, body["upload"], data, content_type)
    done = client.post(f"{base}/{body['photo_id']}/uploaded", headers=field.owner.headers)
    assert done.status_code == 202, done.text
    assert done.json()["status"] == "processing"
    runtime_of(client).jobs.join()
    listed = client.get(base, headers=field.owner.headers)
    assert listed.status_code == 200, listed.text
    found: dict[str, Any] = next(r for r in listed.json() if r["id"] == body["photo_id"])
    return found


def reference_check(client: Any, field: Field, data: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    worker = field.worker()
    assignment_id = field.reserve(worker)
    photo_id = upload(client, worker, assignment_id, data)
    assert submit(client, worker, assignment_id, [photo_id]).status_code == 202
    result = checked(client, worker, assignment_id)
    return result, by_check(result)["reference_match"][0]


def measurements_of(client: Any, assignment_id: str) -> dict[str, Any]:
    with runtime_of(client).db.transaction(read_only=True) as session:
        photo = session.exec(select(Photo).where(Photo.assignment_id == uuid.UUID(assignment_id))).one()
        return dict(photo.measurements)


def test_a_reference_is_read_listed_compared_and_removed(app_client: Any) -> None:
    field = Field(app_client, photo_rules=RULES)
    reference = attach(app_client, field, photos.real("neardup_iphone6_hdr_on_gps.jpg"))
    assert reference["status"] == "ready" and reference["problem"] is None
    assert (reference["width"], reference["height"]) == (3264, 2448)
    assert fetch(app_client, reference["thumbnail_url"])[:3] == b"\xff\xd8\xff"
    assert fetch(app_client, reference["url"])[:3] == b"\xff\xd8\xff"

    # Another shot of the same flowers (HDR off) matches; its outline in the reference is kept. (The
    # pair is one press of the shutter: it is also caught as a copy of the reference.)
    result, found = reference_check(app_client, field, photos.real("neardup_iphone6_hdr_off_gps.jpg"))
    assert found["outcome"] == "pass", found
    assert by_check(result)["duplicate"][0]["outcome"] == "fail"
    assert "points" in found["value"] and found["explanation"].startswith("The photo shows the shelf")
    stored = measurements_of(app_client, result["id"])["reference"]
    assert stored["kind"] == "campaign" and stored["id"] == reference["id"] and stored["matched"]
    assert len(stored["outline"]) == 4

    # An unrelated photo goes to a person, with the reason.
    result, found = reference_check(app_client, field, photos.real("phone_oppo_r7plus_13mp_gps.jpg"))
    assert found["outcome"] == "warn"
    assert result["status"] == "in_review"
    assert any("reference photos" in reason for reason in result["decision"]["reasons"])

    base = f"/api/v1/campaigns/{field.campaign['id']}/reference-photos"
    assert app_client.delete(f"{base}/{reference['id']}", headers=field.owner.headers).status_code == 204
    assert app_client.get(base, headers=field.owner.headers).json() == []
    problem(
        app_client.delete(f"{base}/{reference['id']}", headers=field.owner.headers),
        404,
        "reference_not_found",
    )
    # With no reference left, the match is a neutral note.
    _, found = reference_check(app_client, field, photos.real("phone_nexus4_night_gps.jpg"))
    assert (found["outcome"], found["value"]) == ("pass", "not measured")


def test_the_clients_own_reference_submitted_by_a_worker_is_a_duplicate(app_client: Any) -> None:
    field = Field(app_client, photo_rules=RULES)
    own = photos.real("blur_honor10_180_sharp.jpg")
    assert attach(app_client, field, own)["status"] == "ready"
    result, _ = reference_check(app_client, field, own)
    duplicate = by_check(result)["duplicate"][0]
    assert duplicate["outcome"] == "fail" and "reference photo" in duplicate["explanation"]
    assert result["status"] == "rejected"
    # Re-saved smaller, it is still the same picture.
    decoded = cv2.imdecode(np.frombuffer(own, np.uint8), cv2.IMREAD_COLOR)
    copy = photos.jpeg(cv2.resize(decoded, (1536, 1152), interpolation=cv2.INTER_AREA), quality=70)
    result, _ = reference_check(app_client, field, copy)
    duplicate = by_check(result)["duplicate"][0]
    assert duplicate["outcome"] == "fail" and "reference photo" in duplicate["explanation"]


def test_a_stores_approved_photo_serves_as_its_reference(app_client: Any) -> None:
    field = Field(app_client)
    shelf = photos.scene(seed=21)
    first, found = reference_check(app_client, field, photos.jpeg(shelf))
    assert first["status"] == "approved", [(c["name"], c["outcome"], c["value"]) for c in first["checks"]]
    assert found["value"] == "not measured"
    # The same shelf, from a step to the side: not a copy, but the same place.
    height, width = shelf.shape[:2]
    turned = cv2.getRotationMatrix2D((width / 2, height / 2), 7, 1.25)
    again = cv2.warpAffine(shelf, turned, (width, height), borderMode=cv2.BORDER_REFLECT)
    second, found = reference_check(app_client, field, photos.jpeg(again))
    assert found["outcome"] == "pass", found
    assert {c["outcome"] for c in by_check(second)["duplicate"]} == {"pass"}
    stored = measurements_of(app_client, second["id"])["reference"]
    assert stored["kind"] == "store"


def test_unusable_references_are_refused_with_a_reason(app_client: Any) -> None:
    field = Field(app_client, photo_rules=RULES)
    text = attach(app_client, field, b"these are not the pixels you are looking for")
    assert text["status"] == "failed" and "not a photo" in text["problem"]
    tiny = attach(app_client, field, photos.real("edge_iphonexr_1x1px_gps.jpg"))
    assert tiny["status"] == "failed" and "too little detail" in tiny["problem"]
    base = f"/api/v1/campaigns/{field.campaign['id']}/reference-photos"
    problem(
        app_client.post(
            base, json={"content_type": "application/pdf", "size_bytes": 10}, headers=field.owner.headers
        ),
        422,
        "unsupported_photo_type",
    )
    # Five usable (or pending) references at most; failed ones do not count.
    for _ in range(5):
        answer = app_client.post(
            base, json={"content_type": "image/jpeg", "size_bytes": 100}, headers=field.owner.headers
        )
        assert answer.status_code == 201, answer.text
    problem(
        app_client.post(
            base, json={"content_type": "image/jpeg", "size_bytes": 100}, headers=field.owner.headers
        ),
        409,
        "reference_limit_reached",
    )
    # Another organization's client sees nothing of this campaign.
    stranger = make_account(runtime_of(app_client), Role.client)
    problem(app_client.get(base, headers=stranger.headers), 404, "campaign_not_found")
    problem(
        app_client.post(
            base, json={"content_type": "image/jpeg", "size_bytes": 100}, headers=stranger.headers
        ),
        404,
        "campaign_not_found",
    )
    # A worker cannot attach references at all.
    worker = field.worker()
    assert app_client.get(base, headers=worker.headers).status_code == 403


def test_features_of_an_older_kind_are_left_out_until_recomputed(app_client: Any) -> None:
    """After an upgrade that changes the features (AKAZE before ORB), stored ones of the old kind are
    not compared (they could only mismatch) and `fieldcheck checks refeature` recomputes them."""
    from fieldcheck.checks import reference as features_module
    from fieldcheck.checks.models import PhotoFeatures, ReferencePhoto
    from fieldcheck.checks.service import refeature

    field = Field(app_client, photo_rules=RULES)
    attached = attach(app_client, field, photos.real("blur_honor10_180_sharp.jpg"))
    runtime = runtime_of(app_client)
    old = features_module.Features(
        np.zeros((40, 2), np.float32), np.zeros((40, 61), np.uint8), (400, 300), method="akaze-400-500"
    ).to_bytes()
    with runtime.db.transaction() as session:
        stored = session.get(ReferencePhoto, uuid.UUID(attached["id"]))
        assert stored is not None
        stored.features = old
        session.add(stored)
    _, found = reference_check(app_client, field, photos.real("blur_honor10_180_defocus.jpg"))
    assert (found["outcome"], found["value"]) == ("pass", "not measured")
    with runtime.db.session() as session:
        seen, changed = refeature(session, runtime.storage)
        assert changed == 1 and seen >= 2  # the reference, and the checked photo's own features
        again = session.get(ReferencePhoto, uuid.UUID(attached["id"]))
        assert again is not None and again.features is not None
        assert features_module.Features.from_bytes(again.features).current
        assert all(
            features_module.Features.from_bytes(row.features).current
            for row in session.exec(select(PhotoFeatures)).all()
        )
        assert refeature(session, runtime.storage)[1] == 0  # nothing left to do
    _, found = reference_check(app_client, field, photos.real("blur_honor10_180_motion.jpg"))
    assert found["outcome"] == "pass", found
