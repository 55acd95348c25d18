"""`fieldcheck bench instant`: how soon a worker in the store reads a photo's checks.

On the embedded default (SQLite, local storage, the in-process broker and worker threads, in a
scratch folder) unless FIELDCHECK_* settings point elsewhere: a client's active campaign at one
store with five reference photos, a worker holding its task. Then, as a phone does, for each photo
(the phone-size photos of ../shared/photos, each sent a few times, re-encoded with a little noise so
no two are the same file): ask for an upload, PUT the bytes, say `uploaded`, and poll the photo
every POLL_S until its checks are there. The figure is the time from the `uploaded` answer to the
first poll that finds `check_status: checked`, p50 and p95 (target: p50 <= 2 s); and, for each
photo, the server's own time from the request to the checks stored.
"""

from __future__ import annotations

import os
import secrets
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click
import numpy as np

from fieldcheck.settings import Settings

DEFAULT_FOLDERS = (Path("../shared/photos"), Path(__file__).resolve().parents[5] / "shared" / "photos")
PHONE_SIZE_PIXELS = 2_000_000
POLL_S = 0.05
TIMEOUT_S = 60.0
REFERENCES = 5
IN_PROCESS_URL = "http://bench.local"


def bench_photos(rounds: int) -> list[tuple[str, bytes]]:
    """The phone-size photos, `rounds` times each, every copy a different file (noise, re-encoded)."""
    from fieldcheck.checks.imaging import cv2

    folder = next((f for f in DEFAULT_FOLDERS if f.is_dir()), None)
    originals = []
    for path in sorted(folder.glob("*.jpg")) if folder else []:
        image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
        if image is not None and image.shape[0] * image.shape[1] >= PHONE_SIZE_PIXELS:
            originals.append((path.name, image))
    if not originals:
        rng = np.random.default_rng(3)
        originals = [("synthetic-12mp.jpg", rng.integers(0, 255, (3000, 4000, 3), dtype=np.uint8))]
    made = []
    rng = np.random.default_rng(11)
    for round_ in range(rounds):
        for name, image in originals:
            noisy = np.clip(image + rng.normal(0, 2, image.shape), 0, 255).astype(np.uint8)
            ok, buffer = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 92])
            assert ok
            made.append((f"{name} #{round_ + 1}", bytes(buffer)))
    return made


@contextmanager
def _settings() -> Iterator[Settings]:
    configured = {k for k in os.environ if k.startswith("FIELDCHECK_")}
    if configured - {"FIELDCHECK_HOME"}:
        yield Settings()
        return
    with tempfile.TemporaryDirectory(prefix="fieldcheck-bench-instant-") as home:
        yield Settings(home=Path(home))


def _put(client: Any, instruction: dict[str, Any], data: bytes) -> None:
    parts = urlsplit(instruction["url"])
    headers = {k: v for k, v in instruction["headers"].items() if v}
    if instruction["method"] != "PUT":
        raise click.ClickException(
            "this bench sends PUT uploads (the embedded default and S3 presigned PUTs)"
        )
    if parts.netloc == urlsplit(str(client.base_url)).netloc:
        answer = client.put(urlunsplit(("", "", parts.path, parts.query, "")), content=data, headers=headers)
    else:
        import httpx

        answer = httpx.put(instruction["url"], content=data, headers=headers)
    if answer.status_code not in (200, 201, 204):
        raise click.ClickException(f"upload refused: {answer.status_code} {answer.text[:200]}")


def _ok(answer: Any, status: int) -> dict[str, Any]:
    if answer.status_code != status:
        raise click.ClickException(
            f"{answer.request.method} {answer.request.url}: {answer.status_code} {answer.text[:300]}"
        )
    body: dict[str, Any] = answer.json()
    return body


def run(rounds: int, echo: Callable[[str], None] = click.echo) -> dict[str, Any]:
    from fieldcheck import migrations

    photos = bench_photos(rounds)
    with _settings() as settings:
        migrations.upgrade(settings)
        return _measure(settings, photos, echo)


def _measure(
    settings: Settings, photos: list[tuple[str, bytes]], echo: Callable[[str], None]
) -> dict[str, Any]:
    from litestar.testing import TestClient

    from fieldcheck.app import create_app
    from fieldcheck.auth.models import Role
    from fieldcheck.tools.services import account_token

    # The phone talks to the app in this process: signed local upload URLs name it.
    settings = settings.model_copy(update={"public_base_url": IN_PROCESS_URL})
    with TestClient(create_app(settings), base_url=IN_PROCESS_URL) as client:
        runtime = client.app.state.runtime

        def account(role: Role, organization_id: uuid.UUID | None = None) -> dict[str, str]:
            return {
                "Authorization": f"Bearer {account_token(runtime, role, label='bench', organization_id=organization_id)}"
            }

        admin = account(Role.admin)
        org = _ok(
            client.post("/api/v1/admin/organizations", json={"name": "Bench Retail"}, headers=admin), 201
        )
        owner = account(Role.client, uuid.UUID(org["id"]))
        store = _ok(
            client.post(
                "/api/v1/stores", json={"name": "Bench store", "lat": 48.8566, "lon": 2.3522}, headers=owner
            ),
            201,
        )
        campaign = _ok(
            client.post(
                "/api/v1/campaigns",
                json={
                    "title": "Yoghurt shelf",
                    "instructions": "Photograph the whole yoghurt shelf.",
                    "reward_cents": 500,
                    "currency": "EUR",
                    "estimated_minutes": 15,
                    "slots_per_store": 1,
                    "store_ids": [store["id"]],
                    "reservation_minutes": 240,
                    "photo_rules": {"min_photos": 1, "max_photos": 4, "min_short_side_px": 1000},
                },
                headers=owner,
            ),
            201,
        )
        _ok(
            client.post(
                "/api/v1/organizations/me/deposits",
                json={"amount_cents": 100_000, "currency": "EUR"},
                headers={**owner, "Idempotency-Key": secrets.token_hex(8)},
            ),
            201,
        )
        for _, data in photos[:REFERENCES]:  # five reference photos: every check is compared with them
            slot = _ok(
                client.post(
                    f"/api/v1/campaigns/{campaign['id']}/reference-photos",
                    json={"content_type": "image/jpeg", "size_bytes": len(data)},
                    headers=owner,
                ),
                201,
            )
            _put(client, slot["upload"], data)
            client.post(
                f"/api/v1/campaigns/{campaign['id']}/reference-photos/{slot['photo_id']}/uploaded",
                headers=owner,
            )
        _ok(client.post(f"/api/v1/campaigns/{campaign['id']}/activate", headers=owner), 200)
        runtime.jobs.join()
        worker = account(Role.worker)
        nearby = _ok(
            client.get("/api/v1/tasks/nearby", params={"lat": 48.8566, "lon": 2.3522}, headers=worker), 200
        )
        task_id = nearby["items"][0]["task_id"]
        assignment = _ok(client.post(f"/api/v1/tasks/{task_id}/reservations", headers=worker), 201)
        base = f"/api/v1/assignments/{assignment['id']}/photos"
        echo(
            f"{len(photos)} photos, polled every {POLL_S * 1000:.0f} ms, against {REFERENCES} reference photos"
        )
        seen: list[float] = []
        for name, data in photos:
            slot = _ok(
                client.post(
                    base, json={"content_type": "image/jpeg", "size_bytes": len(data)}, headers=worker
                ),
                201,
            )
            _put(client, slot["upload"], data)
            said = _ok(client.post(f"{base}/{slot['photo_id']}/uploaded", headers=worker), 202)
            started = time.perf_counter()
            status = said["check_status"]
            while status == "pending" and time.perf_counter() - started < TIMEOUT_S:
                time.sleep(POLL_S)
                status = _ok(client.get(f"{base}/{slot['photo_id']}", headers=worker), 200)["check_status"]
            waited = time.perf_counter() - started
            if status != "checked":
                raise click.ClickException(f"{name}: check_status {status} after {waited:.1f} s")
            seen.append(waited)
            echo(f"  {name:44} {len(data) / 1e6:5.1f} MB   checks read after {waited * 1000:6.0f} ms")
            client.delete(f"{base}/{slot['photo_id']}", headers=worker)  # its place, for the next one
        ordered = sorted(seen)
        p50 = statistics.median(ordered)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        echo(
            f"instant checks: p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms from the `uploaded` answer to "
            f"the checks read ({len(seen)} photos; target p50 <= 2000 ms)"
        )
        return {"photos": len(seen), "p50_ms": p50 * 1000, "p95_ms": p95 * 1000}


@click.command("instant")
@click.option("--rounds", default=2, show_default=True, help="How many times each photo is sent.")
def instant_command(rounds: int) -> None:
    """Time from `uploaded` to a photo's checks read by polling, as a phone in the store sees it."""
    run(rounds)
