"""Client audits: results, the three export formats, progress, failures and retention."""

from __future__ import annotations

import csv
import io
import time
import uuid
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from litestar.testing import TestClient
from PIL import Image
from sqlmodel import col, select, update

from fieldcheck.app import create_app
from fieldcheck.auth.models import Role
from fieldcheck.checks import imaging
from fieldcheck.checks.derivatives import detect_faces
from fieldcheck.checks.imaging import cv2
from fieldcheck.db import utcnow
from fieldcheck.exports import files, service
from fieldcheck.exports.models import Export
from fieldcheck.money import verify_money
from fieldcheck.photos.models import Photo
from tests.conftest import BACKENDS
from tests.support import photos
from tests.support.backends import TEST_BASE_URL, BackendFactory
from tests.support.factories import (
    Account,
    make_account,
    make_campaign,
    make_store,
    problem,
    reserve,
    runtime_of,
    task_of,
)
from tests.support.submissions import checked, fetch, jobs_held, submit, upload

BERLIN = (52.5200, 13.4050)
PARIS = (48.8566, 2.3522)
HOSTILE_NAME = '=HYPERLINK("http://example.invalid/x","click")'
GALAXY = "phone_galaxy_s_faces_rot90_gps.jpg"


class Audit:
    """A campaign at two stores with one approved, one reviewed-then-approved, one rejected visit."""

    def __init__(self, client: Any) -> None:
        self.client = client
        runtime = runtime_of(client)
        self.owner = make_account(runtime, Role.client)
        self.stores = [
            make_store(
                client,
                self.owner,
                lat=BERLIN[0],
                lon=BERLIN[1],
                name=HOSTILE_NAME,
                address="+SUM(1,2), Unter den Linden 1, 10117 Berlin",
                external_ref="-B1",
            ),
            make_store(
                client,
                self.owner,
                lat=PARIS[0],
                lon=PARIS[1],
                name="Paris Rivoli",
                address="1 Rue de Rivoli, 75001 Paris",
                external_ref="P1",
            ),
        ]
        self.campaign = make_campaign(
            client,
            self.owner,
            [s["id"] for s in self.stores],
            slots_per_store=2,
            photo_rules={"min_photos": 1, "max_photos": 4, "min_short_side_px": 400},
        )
        self.tasks = [task_of(client, self.campaign["id"], s["id"]) for s in self.stores]
        self.reviewer = make_account(runtime, Role.reviewer)
        self.approved = self.visit(0, photos.jpeg(photos.scene(seed=71)), BERLIN)
        assert checked(client, self.approved[0], self.approved[1])["status"] == "approved"
        self.reviewed = self.visit(1, photos.real(GALAXY), PARIS)
        assert checked(client, self.reviewed[0], self.reviewed[1])["status"] == "in_review"
        assert (
            client.post(f"/api/v1/review/{self.reviewed[1]}/claim", headers=self.reviewer.headers).status_code
            == 200
        )
        decided = client.post(
            f"/api/v1/review/{self.reviewed[1]}/decision",
            json={
                "decision": "approve",
                "reasons": [],
                "comment": "GPS of the camera is off; the shelf is right",
            },
            headers=self.reviewer.headers,
        )
        assert decided.status_code == 200, decided.text
        far = (BERLIN[0] + 0.5, BERLIN[1])
        self.rejected = self.visit(0, photos.jpeg(photos.scene(seed=72)), far)
        assert checked(client, self.rejected[0], self.rejected[1])["status"] == "rejected"

    def visit(self, task: int, data: bytes, at: tuple[float, float]) -> tuple[Account, str]:
        worker = make_account(runtime_of(self.client), Role.worker)
        reserved = reserve(self.client, worker, self.tasks[task])
        assert reserved.status_code == 201, reserved.text
        assignment_id = str(reserved.json()["id"])
        photo = upload(self.client, worker, assignment_id, data)
        assert submit(self.client, worker, assignment_id, [photo], lat=at[0], lon=at[1]).status_code == 202
        return worker, assignment_id

    def results(self, **params: Any) -> Any:
        return self.client.get(
            f"/api/v1/campaigns/{self.campaign['id']}/results", params=params, headers=self.owner.headers
        )

    def export(self, fmt: str) -> dict[str, Any]:
        answer = self.client.post(
            f"/api/v1/campaigns/{self.campaign['id']}/exports",
            json={"format": fmt},
            headers=self.owner.headers,
        )
        assert answer.status_code == 202, answer.text
        body: dict[str, Any] = answer.json()
        assert body["status"] in ("queued", "running", "done")
        return wait_export(self.client, self.owner, body["id"])


def wait_export(client: Any, owner: Account, export_id: str, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        runtime_of(client).jobs.join()
        answer = client.get(f"/api/v1/exports/{export_id}", headers=owner.headers)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        if body["status"] in ("done", "failed"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.2)


# The campaign (three visits through the check pipeline and a review) is built once per backend
# and read by every test below; the tests that change something change only what they made.
@pytest.fixture(scope="module", params=BACKENDS)
def audited(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Audit]:
    backends = BackendFactory(tmp_path=tmp_path_factory.mktemp("audit"), request=request)
    with TestClient(create_app(backends.make(request.param)), base_url=TEST_BASE_URL) as client:
        yield Audit(client)
        runtime = runtime_of(client)
        runtime.jobs.join()
        with runtime.db.transaction(read_only=True) as session:
            report = verify_money(session)
        assert report.ok, report.problems


@pytest.fixture
def audit(audited: Audit) -> Audit:
    return audited


@pytest.fixture
def app_client(audited: Audit) -> Any:
    return audited.client


def test_results_show_work_without_the_worker(app_client: Any, audit: Audit) -> None:
    answer = audit.results()
    assert answer.status_code == 200, answer.text
    body = answer.json()
    items = {item["assignment_id"]: item for item in body["items"]}
    assert set(items) == {audit.approved[1], audit.reviewed[1], audit.rejected[1]}
    summary = body["summary"]
    assert (summary["approved"], summary["rejected"], summary["in_review"], summary["submitted"]) == (
        2,
        1,
        0,
        3,
    )
    assert summary["stores"] == 2 and summary["slots_total"] == 4 and summary["tasks_done"] == 0
    assert summary["completion"] == 0.5
    # Two rewards and their fees left escrow; the rest is still held for the open slots.
    assert summary["spent_cents"] == 2 * (500 + 50)
    assert summary["escrow_left_cents"] == 2 * (500 + 50)

    reviewed = items[audit.reviewed[1]]
    assert reviewed["status"] == "approved"
    assert reviewed["decision"]["decided_by"] == "reviewer"
    assert reviewed["store"]["name"] == "Paris Rivoli"
    assert reviewed["distance_m"] is not None and reviewed["distance_m"] < 50
    assert reviewed["visited_at"]
    assert reviewed["check_summary"]["warned"] >= 1
    rejected = items[audit.rejected[1]]
    assert rejected["decision"]["decided_by"] == "system"
    assert rejected["check_summary"]["failed"] >= 1
    assert rejected["distance_m"] > 50_000

    # Nothing of the worker: no id, no device, no position but the distance.
    text = answer.text
    for worker, _ in (audit.approved, audit.reviewed, audit.rejected):
        assert str(worker.id) not in text
        assert worker.email not in text
    for secret in (
        "phone-test-1",
        "device_id",
        "device_lat",
        "worker_id",
        '"lat": 53',
        "comment",
        "GPS of the camera",
    ):
        assert secret not in text, text[max(0, text.find(secret) - 200) : text.find(secret) + 100]

    # The photo is the client-safe copy: re-encoded, no EXIF, faces blurred, upright.
    photo = reviewed["photos"][0]
    assert photo["faces_blurred"] >= 1
    safe = fetch(app_client, photo["url"])
    image = Image.open(io.BytesIO(safe))
    assert not image.getexif() and "exif" not in image.info
    assert image.size == (480, 640)
    assert b"SAMSUNG" not in safe
    assert fetch(app_client, photo["thumbnail_url"])[:2] == b"\xff\xd8"


def test_results_filters_and_pages(app_client: Any, audit: Audit) -> None:
    approved = audit.results(status="approved").json()["items"]
    assert {i["assignment_id"] for i in approved} == {audit.approved[1], audit.reviewed[1]}
    both = audit.results(status="approved,rejected").json()["items"]
    assert len(both) == 3
    by_store = audit.results(store_id=audit.stores[0]["id"]).json()["items"]
    assert {i["assignment_id"] for i in by_store} == {audit.approved[1], audit.rejected[1]}
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = audit.results(**params).json()
        seen += [i["assignment_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 3 and len(set(seen)) == 3
    problem(audit.results(status="paid"), 400, "invalid_status")
    problem(audit.results(cursor="not-a-cursor"), 422, "invalid_cursor")


def test_another_organization_and_other_roles_see_nothing(app_client: Any, audit: Audit) -> None:
    runtime = runtime_of(app_client)
    stranger = make_account(runtime, Role.client)
    campaign_id = audit.campaign["id"]
    problem(
        app_client.get(f"/api/v1/campaigns/{campaign_id}/results", headers=stranger.headers),
        404,
        "campaign_not_found",
    )
    problem(
        app_client.post(
            f"/api/v1/campaigns/{campaign_id}/exports", json={"format": "csv"}, headers=stranger.headers
        ),
        404,
    )
    export = audit.export("csv")
    problem(
        app_client.get(f"/api/v1/exports/{export['id']}", headers=stranger.headers), 404, "export_not_found"
    )
    worker = audit.approved[0]
    assert (
        app_client.get(f"/api/v1/campaigns/{campaign_id}/results", headers=worker.headers).status_code == 403
    )
    assert (
        app_client.get(f"/api/v1/exports/{export['id']}", headers=audit.reviewer.headers).status_code == 403
    )
    problem(
        app_client.post(
            f"/api/v1/campaigns/{campaign_id}/exports", json={"format": "pdf"}, headers=audit.owner.headers
        ),
        400,
    )


def test_csv_export_is_safe_to_open_in_a_spreadsheet(app_client: Any, audit: Audit) -> None:
    export = audit.export("csv")
    assert export["status"] == "done", export
    assert export["progress"] == 1.0 and export["row_count"] == 3
    assert export["filename"].endswith(".csv") and export["expires_at"]
    data = fetch(app_client, export["download_url"])
    assert data.startswith(b"\xef\xbb\xbf")  # a BOM: spreadsheets then read UTF-8
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert list(rows[0]) == list(files.CSV_HEADER)
    assert len(rows) == 3
    berlin = [r for r in rows if r["store_ref"] == "'-B1"]
    assert len(berlin) == 2
    for row in berlin:
        assert row["store_name"] == "'" + HOSTILE_NAME
        assert row["address"].startswith("'+SUM")
    # No cell a spreadsheet would evaluate.
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@")), value
    approved = next(r for r in rows if r["assignment_id"] == audit.reviewed[1])
    assert approved["status"] == "approved" and approved["decided_by"] == "reviewer"
    assert approved["photo_count"] == "1" and float(approved["distance_m"]) < 50
    link = approved["photo_links"].split()[0]
    assert not Image.open(io.BytesIO(fetch(app_client, link))).getexif()
    rejected = next(r for r in rows if r["assignment_id"] == audit.rejected[1])
    assert rejected["reasons"] and rejected["decision"] == "rejected"


def test_zip_export_holds_approved_client_safe_photos(app_client: Any, audit: Audit) -> None:
    export = audit.export("zip")
    assert export["status"] == "done", export
    assert export["photo_count"] == 2 and export["row_count"] == 3
    archive = zipfile.ZipFile(io.BytesIO(fetch(app_client, export["download_url"])))
    names = archive.namelist()
    assert names[0] == "results.csv"
    photo_names = sorted(n for n in names if n.startswith("photos/"))
    assert len(photo_names) == 2
    assert any(n.startswith("photos/B1/") for n in photo_names), photo_names  # by store ref, safe as a path
    assert any(n.startswith("photos/P1/P1_") for n in photo_names)
    rows = list(csv.DictReader(io.StringIO(archive.read("results.csv").decode("utf-8-sig"))))
    linked = sorted(link for r in rows for link in r["photo_links"].split())
    assert linked == photo_names  # the CSV inside points at the files beside it
    for name in photo_names:
        data = archive.read(name)
        image = Image.open(io.BytesIO(data))
        assert not image.getexif(), name  # no GPS, no maker notes
        assert "exif" not in image.info and "icc_profile" not in image.info
        assert b"Exif\x00\x00" not in data
        assert image.info.get("jfif") is not None or data[:2] == b"\xff\xd8"
    # The face in the Paris photo is blurred in the archive.
    paris = archive.read(next(n for n in photo_names if n.startswith("photos/P1/")))
    original_bytes = photos.real(GALAXY)
    header = imaging.read_header(original_bytes)
    original = imaging.upright(imaging.decode(original_bytes, factor=1, color=True), header.orientation)  # type: ignore[arg-type]
    faces = detect_faces(original)
    assert faces
    safe = imaging.decode(paris, factor=1, color=True)
    assert safe is not None and safe.shape[:2] == original.shape[:2]
    for x, y, w, h in faces:
        sharp = cv2.Laplacian(
            cv2.cvtColor(original[y : y + h, x : x + w], cv2.COLOR_BGR2GRAY), cv2.CV_64F
        ).var()
        blurred = cv2.Laplacian(
            cv2.cvtColor(safe[y : y + h, x : x + w], cv2.COLOR_BGR2GRAY), cv2.CV_64F
        ).var()
        assert blurred < sharp / 5


def test_report_is_self_contained_html_with_charts(app_client: Any, audit: Audit, artifacts_dir: Any) -> None:
    export = audit.export("report")
    assert export["status"] == "done", export
    html = fetch(app_client, export["download_url"]).decode("utf-8")
    (artifacts_dir / "report.html").write_text(html)
    assert html.startswith("<!doctype html>")
    assert html.count("<svg") == 2  # completion by town, and the store map
    assert "Berlin" in html and "Paris" in html  # the towns of the chart
    assert "data:image/jpeg;base64," in html  # thumbnails inside the file
    # Nothing to fetch: no script, no stylesheet link, no remote image or font.
    for needle in ("<script", "<link", 'src="http', "url(http", "@import"):
        assert needle not in html, needle
    # Hostile text is shown, not interpreted.
    assert "=HYPERLINK(&#34;http://example.invalid/x&#34;,&#34;click&#34;)" in html or "&quot;" in html
    assert '<a href="http://example.invalid' not in html


def test_the_same_export_asked_twice_is_built_once(app_client: Any, audit: Audit) -> None:
    url = f"/api/v1/campaigns/{audit.campaign['id']}/exports"
    with jobs_held(app_client):
        first = app_client.post(url, json={"format": "csv"}, headers=audit.owner.headers).json()
        second = app_client.post(url, json={"format": "csv"}, headers=audit.owner.headers).json()
        assert first["id"] == second["id"] and first["status"] == "queued"
    assert wait_export(app_client, audit.owner, first["id"])["status"] == "done"
    listed = app_client.get(url, headers=audit.owner.headers).json()["items"]
    assert listed[0]["id"] == first["id"]  # newest first, and only one was made
    assert [e["id"] for e in listed].count(first["id"]) == 1


def test_a_failed_export_says_why(app_client: Any, audit: Audit) -> None:
    runtime = runtime_of(app_client)
    with runtime.db.transaction(read_only=True) as session:
        keys = session.exec(
            select(Photo.safe_key).where(col(Photo.assignment_id) == uuid.UUID(audit.reviewed[1]))
        ).all()
    kept = runtime.storage.get_bytes(str(keys[0]))
    runtime.storage.delete(str(keys[0]))
    try:
        export = audit.export("zip")
    finally:
        runtime.storage.put(str(keys[0]), kept, content_type="image/jpeg")  # for the other tests
    assert export["status"] == "failed"
    assert "missing" in export["error"] and export["download_url"] is None
    # Nothing half-written is left behind.
    with runtime.db.transaction(read_only=True) as session:
        row = session.get(Export, uuid.UUID(export["id"]))
        assert row is not None and row.storage_key is None and row.attempts == 1


def test_progress_is_recorded_while_building(
    app_client: Any, audit: Audit, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[float, str]] = []
    original = service._ProgressRecorder.__call__

    def record(self: service._ProgressRecorder, done: int, stage: str) -> None:
        original(self, done, stage)
        with runtime_of(app_client).db.transaction(read_only=True) as session:
            row = session.get(Export, self.export_id)
            assert row is not None
            seen.append((row.progress, row.status))

    monkeypatch.setattr(service, "PROGRESS_EVERY_S", 0.0)
    monkeypatch.setattr(service._ProgressRecorder, "__call__", record)
    export = audit.export("zip")
    assert export["status"] == "done"
    values = [p for p, _ in seen]
    assert len(values) >= 3 and values == sorted(values)
    assert all(status == "running" for _, status in seen) and 0 < values[0] < values[-1] < 1


def test_old_export_files_are_removed(app_client: Any, audit: Audit) -> None:
    runtime = runtime_of(app_client)
    export = audit.export("csv")
    with runtime.db.transaction(read_only=True) as session:
        row = session.get(Export, uuid.UUID(export["id"]))
        assert row is not None and row.storage_key
        key = row.storage_key
    assert runtime.storage.head(key) is not None
    assert service.remove_expired(runtime.db, runtime.storage) == 0  # not due yet
    with runtime.db.transaction() as session:
        session.exec(
            update(Export)
            .where(col(Export.id) == uuid.UUID(export["id"]))
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    assert service.remove_expired(runtime.db, runtime.storage) == 1
    assert runtime.storage.head(key) is None
    after = app_client.get(f"/api/v1/exports/{export['id']}", headers=audit.owner.headers).json()
    assert after["status"] == "expired" and after["download_url"] is None


def test_an_abandoned_build_is_failed_and_frees_its_format(app_client: Any, audit: Audit) -> None:
    runtime = runtime_of(app_client)
    long_ago = utcnow() - timedelta(hours=2)
    with runtime.db.transaction() as session:
        stuck = Export(
            organization_id=audit.owner.organization_id,
            campaign_id=uuid.UUID(audit.campaign["id"]),
            requested_by=audit.owner.id,
            format="report",
            status="running",
            started_at=long_ago,
            heartbeat_at=long_ago,
            attempts=1,
        )
        session.add(stuck)
        stuck_id = str(stuck.id)
    url = f"/api/v1/campaigns/{audit.campaign['id']}/exports"
    # While it counts as running, asking again answers with it (one unfinished export per format).
    assert (
        app_client.post(url, json={"format": "report"}, headers=audit.owner.headers).json()["id"] == stuck_id
    )
    assert service.fail_abandoned(runtime.db) == 1
    failed = app_client.get(f"/api/v1/exports/{stuck_id}", headers=audit.owner.headers).json()
    assert failed["status"] == "failed" and "ask again" in failed["error"]
    fresh = audit.export("report")
    assert fresh["id"] != stuck_id and fresh["status"] == "done"


def test_a_build_whose_claim_answer_was_lost_is_taken_over_by_its_retry(
    app_client: Any, audit: Audit
) -> None:
    """The claim committed, but a network cut lost its answer: the retry of that same job finds the
    export "running" and takes it over (another job does not: a live build is never run twice)."""
    from fieldcheck.jobs import JobContext

    runtime = runtime_of(app_client)
    with jobs_held(app_client):
        asked = app_client.post(
            f"/api/v1/campaigns/{audit.campaign['id']}/exports",
            json={"format": "csv"},
            headers=audit.owner.headers,
        )
        assert asked.status_code == 202, asked.text
        export_id = uuid.UUID(asked.json()["id"])
        job_id, other_job = uuid.uuid4(), uuid.uuid4()
        assert service._start(runtime.db, export_id, job_id) is not None  # committed; answer "lost"

        def run(job: uuid.UUID) -> None:
            ctx = JobContext(runtime, job, service.BUILD_JOB)
            try:
                service.build(ctx, export_id)
                ctx.finish()
            finally:
                ctx.close()

        run(other_job)
        with runtime.db.transaction(read_only=True) as session:
            row = session.get(Export, export_id)
            assert row is not None and row.status == "running" and row.attempts == 1
        run(job_id)
        with runtime.db.transaction(read_only=True) as session:
            row = session.get(Export, export_id)
            assert row is not None and row.status == "done" and row.attempts == 2 and row.storage_key
    runtime.jobs.join()
    done = app_client.get(f"/api/v1/exports/{export_id}", headers=audit.owner.headers).json()
    assert done["status"] == "done"
    rows = list(csv.reader(io.StringIO(fetch(app_client, done["download_url"]).decode("utf-8-sig"))))
    assert len(rows) > 1
