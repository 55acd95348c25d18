"""`fieldcheck bench exports`: peak memory and speed of a ZIP export, small and large, in one run.

Seeds a campaign of N approved visits with one client-safe photo each (real phone photos from
../shared/photos made client-safe, else synthetic ones), stored in the configured object
storage, then builds the ZIP export in a fresh process per size and reads that process's peak
resident memory (ru_maxrss). A streamed export needs the same memory for 200 photos as for
2,000: the ratio of the two peaks is the figure that says so.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from fieldcheck.settings import Settings

DEFAULT_FOLDERS = (Path("../shared/photos"), Path(__file__).resolve().parents[5] / "shared" / "photos")
SLOTS_PER_STORE = 10
NO_LOGIN = "!"  # not an argon2 hash: these seeded accounts cannot sign in


def _safe_photos() -> list[bytes]:
    """Client-safe copies (1600 px long side, re-encoded) of the real photos, or synthetic ones."""
    from fieldcheck.checks import imaging
    from fieldcheck.checks.derivatives import make_derivatives

    folder = next((f for f in DEFAULT_FOLDERS if f.is_dir()), None)
    made: list[bytes] = []
    for path in sorted(folder.glob("*.jpg")) if folder else []:
        data = path.read_bytes()
        header = imaging.read_header(data)
        if header is None or min(header.width, header.height) < 400:
            continue
        made.append(
            make_derivatives(
                data,
                width=header.width,
                height=header.height,
                orientation=header.orientation,
                detected_type="jpeg",
            ).safe
        )
    if not made:
        import numpy as np

        from fieldcheck.checks.derivatives import encode_jpeg

        rng = np.random.default_rng(7)
        for _ in range(4):
            made.append(encode_jpeg(rng.integers(0, 255, (1200, 1600, 3), dtype=np.uint8)))
    return made


def seed(settings: Settings, photos: int) -> uuid.UUID:
    """A campaign with `photos` approved visits, one stored client-safe photo each; its id."""
    from fieldcheck.assignments.models import Assignment, AssignmentStatus
    from fieldcheck.auth.models import Role, User
    from fieldcheck.campaigns.models import Campaign, CampaignStatus
    from fieldcheck.db import Database, utcnow
    from fieldcheck.geo import lat_band
    from fieldcheck.organizations.models import Organization
    from fieldcheck.photos.models import Photo, PhotoStatus
    from fieldcheck.storage import create_storage
    from fieldcheck.stores.models import Store
    from fieldcheck.tasks.models import Task

    db, storage = Database(settings), create_storage(settings)
    images = _safe_photos()
    stores = -(-photos // SLOTS_PER_STORE)
    now = utcnow()
    with db.transaction() as session:
        org = Organization(name="Bench Retail")
        session.add(org)
        session.flush()
        client = User(
            email=f"bench-{uuid.uuid4().hex[:8]}@example.com",
            password_hash=NO_LOGIN,
            display_name="Bench",
            role=Role.client.value,
            organization_id=org.id,
        )
        workers = [
            User(
                email=f"w{i}-{uuid.uuid4().hex[:8]}@example.com",
                password_hash=NO_LOGIN,
                display_name=f"Worker {i}",
                role=Role.worker.value,
            )
            for i in range(SLOTS_PER_STORE)
        ]
        session.add_all([client, *workers])
        campaign = Campaign(
            organization_id=org.id,
            title="Bench yoghurt shelf",
            instructions="Photograph the shelf.",
            reward_cents=500,
            currency="EUR",
            estimated_minutes=15,
            slots_per_store=SLOTS_PER_STORE,
            reservation_minutes=120,
            review_deadline_hours=72,
            min_photos=1,
            max_photos=4,
            min_short_side_px=400,
            status=CampaignStatus.active.value,
            activated_at=now,
        )
        session.add(campaign)
        session.flush()
        made = 0
        for s in range(stores):
            lat, lon = 48.80 + (s % 40) * 0.003, 2.25 + (s // 40) * 0.004
            store = Store(
                organization_id=org.id,
                external_ref=f"S{s:05d}",
                name=f"Store {s}",
                address=f"{s} Rue de Bench, 7500{s % 10} Paris",
                lat=lat,
                lon=lon,
            )
            session.add(store)
            session.flush()
            task = Task(
                campaign_id=campaign.id,
                store_id=store.id,
                organization_id=org.id,
                lat=lat,
                lon=lon,
                lat_band=lat_band(lat),
                slots_total=SLOTS_PER_STORE,
                slots_taken=SLOTS_PER_STORE,
            )
            session.add(task)
            session.flush()
            for worker in workers:
                if made >= photos:
                    break
                assignment = Assignment(
                    task_id=task.id,
                    campaign_id=campaign.id,
                    worker_id=worker.id,
                    status=AssignmentStatus.approved.value,
                    expires_at=now + timedelta(hours=2),
                    submitted_at=now,
                    decided_at=now,
                    captured_at=now,
                    distance_m=12.0,
                )
                session.add(assignment)
                session.flush()
                key = f"bench/{campaign.id}/{assignment.id}"
                storage.put(f"{key}/safe.jpg", images[made % len(images)], content_type="image/jpeg")
                session.add(
                    Photo(
                        assignment_id=assignment.id,
                        worker_id=worker.id,
                        status=PhotoStatus.checked.value,
                        storage_key=f"{key}/original.jpg",
                        declared_type="image/jpeg",
                        declared_bytes=1,
                        safe_key=f"{key}/safe.jpg",
                        thumbnail_key=f"{key}/safe.jpg",
                    )
                )
                made += 1
        return campaign.id


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def build_in_this_process(settings: Settings, campaign_id: uuid.UUID) -> dict[str, Any]:
    """Queue a ZIP export of the campaign and build it here; figures of this process."""
    from fieldcheck.exports.models import Export, ExportFormat
    from fieldcheck.jobs import JobContext
    from fieldcheck.runtime import Runtime

    runtime = Runtime(settings)
    with runtime.db.transaction() as session:
        from fieldcheck.campaigns.models import Campaign

        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        from sqlmodel import select

        from fieldcheck.auth.models import User

        user = session.exec(select(User).where(User.organization_id == campaign.organization_id)).one()
        export = Export(
            organization_id=campaign.organization_id,
            campaign_id=campaign.id,
            requested_by=user.id,
            format=ExportFormat.zip.value,
        )
        session.add(export)
        export_id = export.id
    from fieldcheck.exports import service

    baseline = _rss_mb()
    started = time.perf_counter()
    ctx = JobContext(runtime, uuid.uuid4(), "exports.build")
    try:
        service.build(ctx, export_id)
        ctx.finish()
    finally:
        ctx.close()
    seconds = time.perf_counter() - started
    with runtime.db.transaction(read_only=True) as session:
        done = session.get(Export, export_id)
        assert done is not None
        status, size, photos, error = done.status, done.size_bytes, done.photo_count, done.error
    runtime.close()
    return {
        "status": status,
        "error": error,
        "photos": photos,
        "size_mb": (size or 0) / 1e6,
        "seconds": seconds,
        "baseline_rss_mb": baseline,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


@click.command("exports")
@click.option(
    "--photos", "sizes", default="200,2000", show_default=True, help="Comma-separated export sizes."
)
@click.option("--repeats", default=1, show_default=True, help="Builds per size (medians are printed).")
def exports_command(sizes: str, repeats: int) -> None:
    """Peak memory and speed of ZIP exports (embedded default unless FIELDCHECK_* settings say otherwise)."""
    counts = [int(s) for s in sizes.split(",") if s]
    with tempfile.TemporaryDirectory(prefix="fieldcheck-bench-") as home:
        env = {**os.environ}
        env.setdefault("FIELDCHECK_HOME", home)
        os.environ.update(env)
        settings = Settings()
        from fieldcheck import migrations

        migrations.upgrade(settings)
        click.echo(
            f"storage: {settings.storage_kind}, database: {settings.effective_database_url.split(':')[0]}"
        )
        rows = []
        for count in counts:
            started = time.perf_counter()
            campaign_id = seed(settings, count)
            click.echo(f"seeded {count} approved photos in {time.perf_counter() - started:.1f} s")
            runs = []
            for _ in range(repeats):
                out = subprocess.run(  # noqa: S603 - this interpreter, this module, a UUID
                    [sys.executable, "-m", "fieldcheck.tools.bench.exports", str(campaign_id)],
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                )
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            assert all(r["status"] == "done" for r in runs), runs
            figure = {
                "photos": count,
                "size_mb": runs[0]["size_mb"],
                "seconds": statistics.median(r["seconds"] for r in runs),
                "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
                "baseline_rss_mb": statistics.median(r["baseline_rss_mb"] for r in runs),
            }
            rows.append(figure)
            click.echo(
                f"zip of {count:>6} photos: {figure['size_mb']:8.1f} MB in {figure['seconds']:6.1f} s "
                f"({figure['size_mb'] / figure['seconds']:5.1f} MB/s); process peak RSS "
                f"{figure['peak_rss_mb']:6.1f} MB (before the build: {figure['baseline_rss_mb']:.1f} MB)"
            )
        if len(rows) >= 2:
            small, large = rows[0], rows[-1]
            click.echo(
                f"peak memory ratio {large['photos']} / {small['photos']} photos: "
                f"{large['peak_rss_mb'] / small['peak_rss_mb']:.2f} (1.00 = flat)"
            )


if __name__ == "__main__":
    print(json.dumps(build_in_this_process(Settings(), uuid.UUID(sys.argv[1]))))
