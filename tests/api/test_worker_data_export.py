"""A worker's own data (GDPR Arts. 15 and 20): one ZIP of everything about them, built once however
often it is asked for, downloadable by that worker only, removed after its retention."""

from __future__ import annotations

import hashlib
import io
import json
import time
import uuid
import zipfile
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, select, update

from fieldcheck.auth.models import Role
from fieldcheck.db import utcnow
from fieldcheck.photos.models import Photo
from fieldcheck.privacy import export as service
from fieldcheck.privacy.models import DataExport
from tests.api.test_review import claim, decide, flagged
from tests.support import photos
from tests.support.factories import Account, make_account, problem, runtime_of
from tests.support.submissions import Field, checked, fetch, jobs_held, submit, upload

IBAN = "FR7630006000011234567890189"
DOCUMENTS = (
    "account.json",
    "assignments.json",
    "checks.json",
    "decisions.json",
    "appeals.json",
    "statements.json",
    "ledger.json",
    "payouts.json",
)


def ask(client: Any, worker: Account, language: str = "en") -> dict[str, Any]:
    answer = client.post("/api/v1/me/export", headers={**worker.headers, "Accept-Language": language})
    assert answer.status_code == 202, answer.text
    body: dict[str, Any] = answer.json()
    return body


def wait(client: Any, worker: Account, export_id: str, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        runtime_of(client).jobs.join()
        answer = client.get(f"/api/v1/me/exports/{export_id}", headers=worker.headers)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        if body["status"] in ("done", "failed"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.2)


def worker_with_history(client: Any) -> tuple[Field, Account, str, str, bytes]:
    """A rejection the worker appealed, an approved visit, bank details and a payout."""
    runtime = runtime_of(client)
    field = Field(client, reward_cents=1200)
    ana = make_account(runtime, Role.reviewer)
    worker, rejected = flagged(client, field)
    if checked(client, worker, rejected)["status"] == "in_review":
        assert claim(client, ana, rejected).status_code == 200
        assert decide(client, ana, rejected, "reject", ["blurry"]).status_code == 200
    assert checked(client, worker, rejected)["status"] == "rejected"
    appealed = client.post(
        f"/api/v1/assignments/{rejected}/appeal",
        json={"message": "Elles sont nettes"},
        headers=worker.headers,
    )
    assert appealed.status_code == 201, appealed.text

    # Another campaign at the same place: no travel between the two visits.
    approved = Field(client, reward_cents=1200).reserve(worker)
    original = photos.jpeg(photos.scene(seed=4242))
    photo_id = upload(client, worker, approved, original)
    assert submit(client, worker, approved, [photo_id]).status_code == 202
    if checked(client, worker, approved)["status"] == "in_review":
        bob = make_account(runtime, Role.reviewer)
        assert claim(client, bob, approved).status_code == 200
        assert decide(client, bob, approved, "approve").status_code == 200
    assert checked(client, worker, approved)["status"] == "approved"
    details = client.put(
        "/api/v1/me/payout-details",
        json={"account_holder": "Ana Worker", "iban": IBAN},
        headers=worker.headers,
    )
    assert details.status_code == 200, details.text
    payout = client.post(
        "/api/v1/me/payouts",
        json={"amount_cents": 1000, "currency": "EUR"},
        headers={**worker.headers, "Idempotency-Key": "export-payout"},
    )
    assert payout.status_code == 201, payout.text
    runtime.jobs.join()
    return field, worker, rejected, approved, original


def test_a_worker_downloads_everything_about_them(app_client: Any) -> None:
    field, worker, rejected, approved, original = worker_with_history(app_client)
    other = field.worker()
    other_visit = field.reserve(other)

    asked = ask(app_client, worker, "fr")
    assert asked["status"] in ("queued", "running", "done") and asked["language"] == "fr"
    done = wait(app_client, worker, asked["id"])
    assert done["status"] == "done", done
    assert done["progress"] == 1 and done["photo_count"] == 2 and done["download_url"]
    assert done["filename"].startswith("fieldcheck-my-data-") and done["filename"].endswith(".zip")
    data = fetch(app_client, done["download_url"])
    assert len(data) == done["size_bytes"]
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = archive.namelist()
    assert names[: 1 + len(DOCUMENTS)] == ["README.txt", *DOCUMENTS]
    readme = archive.read("README.txt").decode("utf-8")
    assert "English" in readme and "Français" in readme and "180" in readme
    docs = {name: json.loads(archive.read(name))["data"] for name in DOCUMENTS}

    account = docs["account.json"]
    assert account["id"] == str(worker.id) and account["email"] == worker.email
    assert account["payout_details"]["iban_last4"] == IBAN[-4:]
    assert IBAN not in data.decode("latin-1")  # the IBAN only by its last four characters
    assert [b["available_cents"] for b in account["balances"]] == [200]

    assignments = {a["id"]: a for a in docs["assignments.json"]}
    assert set(assignments) == {rejected, approved}  # the other worker's visit is not there
    assert other_visit not in data.decode("latin-1")
    mine = assignments[approved]
    assert mine["status"] == "approved" and mine["payment"]["status"] == "released"
    assert mine["position"]["accuracy_m"] == 12.0 and mine["position"]["device_id"] == "phone-test-1"
    assert mine["distance_m"] is not None and mine["history"]
    assert assignments[rejected]["status"] == "appealed"
    # Every photo as it was sent: the same bytes.
    (photo,) = mine["photos"]
    assert archive.read(photo["file"]) == original
    assert photo["sha256"] == hashlib.sha256(original).hexdigest()
    assert len([n for n in names if n.startswith("photos/")]) == 2

    # The texts are in the language asked in.
    assert any(
        "Les photos sont trop floues" in reason for d in docs["decisions.json"] for reason in d["reasons"]
    )
    assert [d["outcome"] for d in docs["decisions.json"] if d["assignment_id"] == approved] == ["approved"]
    assert {c["when"] for c in docs["checks.json"]} >= {"submission"}
    assert all(c["explanation"] for c in docs["checks.json"])
    assert [(a["assignment_id"], a["message"], a["outcome"]) for a in docs["appeals.json"]] == [
        (rejected, "Elles sont nettes", None)
    ]
    assert [s["assignment_id"] for s in docs["statements.json"]] == [rejected]
    assert [(p["amount_cents"], p["iban_last4"]) for p in docs["payouts.json"]] == [(1000, IBAN[-4:])]
    movements = {e["movement"] for e in docs["ledger.json"]}
    assert (
        "release" in movements
        and sum(e["amount_cents"] for e in docs["ledger.json"] if e["account"] == "worker_earned") == 200
    )

    # Only this worker reads it: another worker gets a 404, other roles a 403.
    problem(
        app_client.get(f"/api/v1/me/exports/{asked['id']}", headers=other.headers), 404, "export_not_found"
    )
    problem(app_client.post("/api/v1/me/export", headers=field.owner.headers), 403, "wrong_role")
    listed = app_client.get("/api/v1/me/exports", headers=worker.headers).json()["items"]
    assert [e["id"] for e in listed] == [asked["id"]]
    assert app_client.get("/api/v1/me/exports", headers=other.headers).json()["items"] == []


def test_an_export_asked_twice_is_built_once(app_client: Any) -> None:
    field = Field(app_client)
    worker = field.worker()
    with jobs_held(app_client):
        first = ask(app_client, worker)
        second = ask(app_client, worker)
        assert first["id"] == second["id"] and first["status"] == "queued"
    assert wait(app_client, worker, first["id"])["status"] == "done"
    # Asked again right after it finished (a retry on a bad network): the same file.
    third = ask(app_client, worker)
    assert third["id"] == first["id"] and third["status"] == "done"
    runtime = runtime_of(app_client)
    with runtime.db.transaction(read_only=True) as session:
        rows = session.exec(select(DataExport).where(DataExport.user_id == worker.id)).all()
        assert len(rows) == 1 and rows[0].attempts == 1
        # Later, a new one is built.
        session.close()
    with runtime.db.transaction() as session:
        session.exec(
            update(DataExport)
            .where(col(DataExport.id) == uuid.UUID(first["id"]))
            .values(finished_at=utcnow() - service.REUSE_FOR - timedelta(seconds=1))
        )
    fourth = ask(app_client, worker)
    assert fourth["id"] != first["id"]
    assert wait(app_client, worker, fourth["id"])["status"] == "done"


def test_a_missing_photo_fails_the_export_and_says_why(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    field = Field(app_client)
    worker = field.worker()
    assignment_id = field.reserve(worker)
    photo_id = upload(app_client, worker, assignment_id, photos.jpeg(photos.scene(seed=4343)))
    assert submit(app_client, worker, assignment_id, [photo_id]).status_code == 202
    checked(app_client, worker, assignment_id)
    with runtime.db.transaction(read_only=True) as session:
        photo = session.get(Photo, uuid.UUID(photo_id))
        assert photo is not None and photo.content_key is not None
        key = photo.content_key
    runtime.storage.delete(key)
    failed = wait(app_client, worker, ask(app_client, worker)["id"])
    assert failed["status"] == "failed" and "missing" in failed["error"]
    assert failed["download_url"] is None
    in_french = app_client.get(
        f"/api/v1/me/exports/{failed['id']}", headers={**worker.headers, "Accept-Language": "fr"}
    ).json()
    assert in_french["error"].startswith("une de vos photos manque")
    with runtime.db.transaction(read_only=True) as session:
        row = session.get(DataExport, uuid.UUID(failed["id"]))
        assert row is not None and row.storage_key is None and row.attempts == 1


def test_old_and_closed_accounts_export_files_are_removed(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    field = Field(app_client)
    worker = field.worker()
    done = wait(app_client, worker, ask(app_client, worker)["id"])
    with runtime.db.transaction(read_only=True) as session:
        row = session.get(DataExport, uuid.UUID(done["id"]))
        assert row is not None and row.storage_key
        key = row.storage_key
    assert runtime.storage.head(key) is not None
    assert service.remove_expired(runtime.db, runtime.storage) == 0  # kept until it expires
    closed = app_client.request(
        "DELETE", "/api/v1/me", json={"password": worker.password}, headers=worker.headers
    )
    assert closed.status_code == 204, closed.text
    assert service.remove_expired(runtime.db, runtime.storage) == 1  # closing the account ends it
    assert runtime.storage.head(key) is None
    with runtime.db.transaction(read_only=True) as session:
        row = session.get(DataExport, uuid.UUID(done["id"]))
        assert row is not None and row.status == "expired" and row.storage_key is None


def test_after_the_retention_the_export_holds_the_client_safe_copy(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    field = Field(app_client)
    worker = field.worker()
    assignment_id = field.reserve(worker)
    original = photos.jpeg(photos.scene(seed=4444))
    photo_id = upload(app_client, worker, assignment_id, original)
    assert submit(app_client, worker, assignment_id, [photo_id]).status_code == 202
    checked(app_client, worker, assignment_id)
    with runtime.db.transaction() as session:  # what the retention job leaves
        photo = session.get(Photo, uuid.UUID(photo_id))
        assert photo is not None and photo.safe_key
        safe = runtime.storage.get_bytes(photo.safe_key)
        photo.originals_removed_at = utcnow()
        session.add(photo)
    done = wait(app_client, worker, ask(app_client, worker)["id"])
    assert done["status"] == "done", done
    archive = zipfile.ZipFile(io.BytesIO(fetch(app_client, done["download_url"])))
    (assignment,) = json.loads(archive.read("assignments.json"))["data"]
    (listed,) = assignment["photos"]
    assert listed["original_removed_at"] and listed["file"].endswith(".jpg")
    assert archive.read(listed["file"]) == safe != original


def close(client: Any, worker: Account) -> None:
    closed = client.request(
        "DELETE", "/api/v1/me", json={"password": worker.password}, headers=worker.headers
    )
    assert closed.status_code == 204, closed.text


def test_an_export_asked_before_the_account_is_closed_is_never_kept(
    app_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = runtime_of(app_client)
    field = Field(app_client)
    worker = field.worker()
    with jobs_held(app_client):  # queued when the account closes: it fails, nothing is built
        queued = ask(app_client, worker)
        close(app_client, worker)
    runtime.jobs.join()
    with runtime.db.transaction(read_only=True) as session:
        row = session.get(DataExport, uuid.UUID(queued["id"]))
        assert row is not None and row.status == "failed" and row.error == "the account was closed"
        assert row.attempts == 0 and row.storage_key is None

    # Building when the account closes: what it wrote is deleted, nobody is given it.
    other = field.worker()
    written: list[str] = []
    archive = service.write_archive

    def closing_meanwhile(out: Any, contents: Any, **options: Any) -> int:
        with runtime.db.transaction() as session:
            service.expire_for_closed_account(session, other.id)  # what DELETE /api/v1/me does
        return archive(out, contents, **options)

    original_put = service.put_stream

    def recording_put(storage: Any, key: str, **options: Any) -> int:
        written.append(key)
        return original_put(storage, key, **options)

    monkeypatch.setattr(service, "write_archive", closing_meanwhile)
    monkeypatch.setattr(service, "put_stream", recording_put)
    building = wait(app_client, other, ask(app_client, other)["id"])
    assert building["status"] == "failed" and building["download_url"] is None
    assert len(written) == 1 and runtime.storage.head(written[0]) is None
