"""A client's whole audit, end to end: a campaign run to completion, every webhook signed and
retried, each export downloaded and opened (the report in headless Chromium, offline)."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path
from typing import Any

from PIL import Image

from fieldcheck.auth.models import Role
from tests.api.test_exports import wait_export
from tests.api.test_webhooks import Receiver, settings
from tests.support import photos
from tests.support.browser import offline_page
from tests.support.factories import make_account, make_campaign, make_store, reserve, runtime_of, task_of
from tests.support.submissions import checked, fetch, submit, upload

__all__ = ["settings"]  # both backends, with webhooks allowed to reach the loopback receiver

EVENTS = ["assignment.approved", "assignment.rejected", "campaign.completed", "export.ready"]


def test_a_campaign_run_to_completion_with_webhooks_and_exports(
    app_client: Any, chromium: Any, artifacts_dir: Path
) -> None:
    runtime = runtime_of(app_client)
    owner = make_account(runtime, Role.client)
    receiver = Receiver(failures=2)  # the client's endpoint is down for the first two requests
    try:
        hook = app_client.post(
            "/api/v1/webhooks", json={"url": receiver.url, "events": EVENTS}, headers=owner.headers
        )
        assert hook.status_code == 201, hook.text
        receiver.secret = hook.json()["secret"]
        stores = [
            make_store(
                app_client,
                owner,
                lat=48.8566,
                lon=2.3522,
                name="Rivoli",
                address="1 Rue de Rivoli, 75001 Paris",
            ),
            make_store(
                app_client,
                owner,
                lat=45.7640,
                lon=4.8357,
                name="Bellecour",
                address="Place Bellecour, 69002 Lyon",
            ),
        ]
        campaign = make_campaign(app_client, owner, [s["id"] for s in stores], slots_per_store=1)
        workers = []
        for n, store in enumerate(stores):
            worker = make_account(runtime, Role.worker)
            assignment_id = reserve(
                app_client, worker, task_of(app_client, campaign["id"], store["id"])
            ).json()["id"]
            photo = upload(app_client, worker, assignment_id, photos.jpeg(photos.scene(seed=900 + n)))
            # The Lyon visit is submitted 300 km away: the checks reject it.
            at = (store["lat"], store["lon"]) if n == 0 else (48.0, 2.0)
            assert submit(app_client, worker, assignment_id, [photo], lat=at[0], lon=at[1]).status_code == 202
            workers.append((worker, assignment_id))
        assert checked(app_client, *workers[0])["status"] == "approved"
        assert checked(app_client, *workers[1])["status"] == "rejected"
        # The platform finds its rejection wrong: approved, and with that every slot is done.
        admin = make_account(runtime, Role.admin)
        reversed_ = app_client.post(
            f"/api/v1/admin/assignments/{workers[1][1]}/reverse-rejection",
            json={"reason": "the store's coordinates were wrong"},
            headers=admin.headers,
        )
        assert reversed_.status_code == 200, reversed_.text
        results = app_client.get(f"/api/v1/campaigns/{campaign['id']}/results", headers=owner.headers).json()
        assert results["summary"]["tasks_done"] == 2 and results["summary"]["completion"] == 1.0

        downloaded = {}
        for fmt in ("csv", "zip", "report"):
            answer = app_client.post(
                f"/api/v1/campaigns/{campaign['id']}/exports", json={"format": fmt}, headers=owner.headers
            )
            assert answer.status_code == 202, answer.text
            export = wait_export(app_client, owner, answer.json()["id"])
            assert export["status"] == "done", export
            downloaded[fmt] = fetch(app_client, export["download_url"])

        # Webhooks: every event came, signed; the first two attempts failed and were retried.
        deadline = time.monotonic() + 60
        while True:
            runtime.jobs.join()
            got = {r.payload["type"] for r in receiver.requests if r.payload and r.headers}
            ok = list(receiver.requests[2:])
            if set(EVENTS) <= {r.payload["type"] for r in ok} and len({r.payload["id"] for r in ok}) >= 7:
                break
            assert time.monotonic() < deadline, (got, len(receiver.requests))
            time.sleep(0.1)
        assert all(r.signature_ok for r in receiver.requests)
        first_failed = {r.headers["fieldcheck-delivery"] for r in receiver.requests[:2]}
        retried = {r.headers["fieldcheck-delivery"] for r in receiver.requests[2:]}
        assert first_failed <= retried  # the deliveries that met a 500 came again
        kinds = [r.payload["type"] for r in receiver.requests[2:]]
        assert kinds.count("assignment.approved") >= 2 and kinds.count("export.ready") >= 3
        completed = next(r.payload for r in receiver.requests if r.payload["type"] == "campaign.completed")
        assert completed["data"]["reason"] == "all_slots_approved"
        rejected = next(r.payload for r in receiver.requests if r.payload["type"] == "assignment.rejected")
        assert rejected["data"]["store"]["name"] == "Bellecour" and rejected["data"]["distance_m"] > 100_000
        for request in receiver.requests:
            for worker, _ in workers:
                assert str(worker.id) not in request.body.decode()
            assert "coordinates were wrong" not in request.body.decode()  # the admin's note stays inside
        log = app_client.get(f"/api/v1/webhooks/{hook.json()['id']}/deliveries", headers=owner.headers).json()
        assert any(d["attempts"] >= 2 and d["status"] == "succeeded" for d in log["items"])
    finally:
        receiver.close()

    # The exports open: a CSV, a ZIP of clean photos, a report that renders offline.
    assert downloaded["csv"].decode("utf-8-sig").startswith("store_ref,store_name")
    archive = zipfile.ZipFile(io.BytesIO(downloaded["zip"]))
    pictures = [n for n in archive.namelist() if n.endswith(".jpg")]
    assert len(pictures) == 2
    for name in pictures:
        assert not Image.open(io.BytesIO(archive.read(name))).getexif()
    report = artifacts_dir / "campaign-report.html"
    report.write_bytes(downloaded["report"])
    page, attempted = offline_page(chromium, viewport={"width": 1280, "height": 900})
    page.goto(report.as_uri())
    page.wait_for_load_state("load")
    assert attempted == []  # nothing fetched from anywhere
    assert page.locator("svg.chart").count() == 2
    for index in range(2):
        box = page.locator("svg.chart").nth(index).bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 60
    assert page.locator("svg.map circle").count() >= 2
    sizes = page.eval_on_selector_all(".thumbs img", "imgs => imgs.map(i => [i.complete, i.naturalWidth])")
    assert sizes and all(done and width > 0 for done, width in sizes)
    page.screenshot(path=str(artifacts_dir / "campaign-report.png"), full_page=True)
    page.context.close()
