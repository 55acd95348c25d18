"""`fieldcheck demo`: a client, stores around a city, a funded campaign and work in every state.

Everything goes through the HTTP API of an in-process app (the same validation, checks, ledger
and jobs as real traffic): stores, a deposit, a campaign, then workers who reserve, upload
photos to storage with the signed instructions and submit. The automated checks then approve,
flag or reject each visit, one rejected worker appeals, and the client asks for a report.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import numpy as np
from sqlmodel import select

from fieldcheck import migrations
from fieldcheck.auth.models import Role, User
from fieldcheck.auth.service import create_user
from fieldcheck.campaigns.models import Campaign
from fieldcheck.checks.imaging import cv2
from fieldcheck.organizations.service import create_organization
from fieldcheck.settings import Settings

CITIES = {
    "paris": (48.8566, 2.3522, "Paris", "750"),
    "berlin": (52.5200, 13.4050, "Berlin", "101"),
    "lyon": (45.7640, 4.8357, "Lyon", "6900"),
    "madrid": (40.4168, -3.7038, "Madrid", "280"),
}
DEMO_PASSWORD = "fieldcheck-demo"
STORES = 12
# What each visit looks like: where the phone says it is, how precise, and the expected outcome.
VISITS = (
    ("approved", 0.0, 8.0),
    ("approved", 0.0, 10.0),
    ("approved", 0.0, 6.0),
    ("approved", 0.0, 12.0),
    ("approved", 0.0, 9.0),
    ("flagged", 0.0, 400.0),  # a GPS fix too imprecise to be sure
    ("flagged", 0.0, 350.0),
    ("flagged", 0.0, 450.0),
    ("rejected", 0.05, 8.0),  # submitted about 5 km from the store
    ("rejected", 0.07, 10.0),
)


@dataclass(frozen=True)
class DemoAccounts:
    client: str
    reviewers: tuple[str, ...]
    workers: tuple[str, ...]  # the workers of the demo visits (worker1 ... worker10)
    fresh_worker: str  # a worker with no work yet: to try the phone app on tasks nobody has done
    admin: str
    password: str
    created: bool
    campaign_id: str | None


PRINT = ("YOGHURT", "NATURE", "BIO", "4x125g", "VANILLE", "0%", "FRAISE", "LAIT", "ENTIER", "DAIRY")


def shelf_photo(seed: int, width: int = 1600, height: int = 1200) -> bytes:
    """A synthetic shelf: coloured packs with lines of small print, evenly lit, as a phone sees it."""
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:] = np.linspace(120, 220, width, dtype=np.uint8)[None, :, None]
    for shelf in range(4):
        top = 60 + shelf * (height // 4)
        cv2.rectangle(image, (0, top + height // 4 - 40), (width, top + height // 4 - 25), (90, 90, 90), -1)
        x = 10
        while x < width - 80:
            w, h = int(rng.integers(60, 140)), int(rng.integers(120, height // 4 - 60))
            colour = tuple(int(c) for c in rng.integers(30, 255, 3))
            cv2.rectangle(image, (x, top + height // 4 - 40 - h), (x + w, top + height // 4 - 40), colour, -1)
            line = top + height // 4 - 12 - h
            while line < top + height // 4 - 50:
                text = " ".join(str(word) for word in rng.choice(PRINT, int(rng.integers(1, 4))))
                scale = float(rng.uniform(0.3, 0.5))
                cv2.putText(
                    image, text, (x + 5, line), cv2.FONT_HERSHEY_SIMPLEX, scale, (25, 25, 25), 1, cv2.LINE_AA
                )
                line += int(rng.integers(10, 27))
            cv2.putText(
                image,
                "YOG",
                (x + 4, top + height // 4 - h),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.8,
                (255, 255, 255),
                2,
            )
            x += w + int(rng.integers(4, 14))
    # As a phone sees it: a little askew, through a lens, with some sensor noise.
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), float(rng.uniform(-1.5, 1.5)), 1.03)
    seen = cv2.warpAffine(image, turn, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    seen = cv2.GaussianBlur(seen, (0, 0), 0.6)
    photo = np.clip(seen + rng.normal(0, 3, seen.shape), 0, 255).astype(np.uint8)
    ok, buffer = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return bytes(buffer)


VISIT_WORKERS = tuple(f"worker{i}" for i in range(1, len(VISITS) + 1))
EMAILS = {
    "client": "client.demo@example.com",
    "reviewer": "reviewer.demo@example.com",
    "reviewer2": "reviewer2.demo@example.com",
    **{key: f"{key}.demo@example.com" for key in VISIT_WORKERS},
    "fresh_worker": "worker.demo@example.com",
    "admin": "admin.demo@example.com",
}
DISPLAY_NAMES = {
    "client": "Demo client",
    "reviewer": "Rita Reviewer",
    "reviewer2": "Raj Reviewer",
    **{key: f"Worker {key[6:]}" for key in VISIT_WORKERS},
    "fresh_worker": "Wanda Worker",
    "admin": "Ada Admin",
}


def _accounts(settings: Settings, runtime: Any) -> tuple[dict[str, User], bool]:
    """The demo accounts, made once; True when the demo campaign is still to be seeded.

    A later run reuses them by e-mail address, and makes those an earlier version of the demo
    did not (the fresh worker, the admin).
    """
    with runtime.db.transaction() as session:
        existing = session.exec(select(User).where(User.email == EMAILS["client"])).first()
        if existing is not None:
            organization_id = existing.organization_id
            seeded = session.exec(
                select(Campaign.id).where(Campaign.organization_id == organization_id)
            ).first()
        else:
            organization_id = create_organization(session, name="Demo Retail").id
            seeded = None
        users: dict[str, User] = {}
        for key, email in EMAILS.items():
            found = session.exec(select(User).where(User.email == email)).first()
            if found is None:
                role = (
                    Role.client
                    if key == "client"
                    else Role.admin
                    if key == "admin"
                    else Role.reviewer
                    if key.startswith("reviewer")
                    else Role.worker
                )
                found = create_user(
                    session,
                    runtime.passwords,
                    email=email,
                    password=DEMO_PASSWORD,
                    role=role,
                    display_name=DISPLAY_NAMES[key],
                    organization_id=organization_id if role is Role.client else None,
                )
            users[key] = found
        session.flush()
        session.expunge_all()
        # No campaign yet: a new database, or an earlier run stopped half-way (seed the rest now).
        return users, seeded is None


class NotADemoDatabase(Exception):
    """Demo accounts share a published password: they belong in a throwaway database only."""


def seed(settings: Settings, city: str = "paris", *, allow_any_database: bool = False) -> DemoAccounts:
    from litestar.testing import TestClient

    from fieldcheck.app import create_app
    from fieldcheck.auth.service import issue_token
    from fieldcheck.runtime import Runtime

    if not settings.is_sqlite and not allow_any_database:
        raise NotADemoDatabase(
            "the demo seeds accounts with a published password; it runs on the embedded SQLite "
            "database only, unless --any-database says this database is a throwaway one"
        )
    migrations.upgrade(settings)
    runtime = Runtime(settings)
    users, created = _accounts(settings, runtime)
    accounts = DemoAccounts(
        client=users["client"].email,
        reviewers=(users["reviewer"].email, users["reviewer2"].email),
        workers=tuple(users[key].email for key in VISIT_WORKERS),
        fresh_worker=users["fresh_worker"].email,
        admin=users["admin"].email,
        password=DEMO_PASSWORD,
        created=False,
        campaign_id=None,
    )
    if not created:
        runtime.close()
        return accounts
    lat0, lon0, town, postcode = CITIES[city]
    headers = {
        key: {"Authorization": f"Bearer {issue_token(runtime.tokens, user)}"} for key, user in users.items()
    }
    with TestClient(create_app(settings, runtime=runtime), base_url=settings.base_url) as api:
        stores = []
        for n in range(STORES):
            angle, reach = n * 2 * math.pi / STORES, 0.01 + 0.02 * (n % 3)
            answer = api.post(
                "/api/v1/stores",
                json={
                    "name": f"Market {n + 1}",
                    "external_ref": f"M{n + 1:03d}",
                    "address": f"{n + 1} Avenue de la Démo, {postcode}{n % 10} {town}",
                    "lat": round(lat0 + reach * math.sin(angle), 6),
                    "lon": round(lon0 + reach * math.cos(angle) / math.cos(math.radians(lat0)), 6),
                },
                headers=headers["client"],
            )
            _ok(answer, 201)
            stores.append(answer.json())
        _ok(
            api.post(
                "/api/v1/organizations/me/deposits",
                json={"amount_cents": 100_000, "currency": "EUR"},
                headers={**headers["client"], "Idempotency-Key": secrets.token_hex(8)},
            ),
            201,
        )
        campaign = api.post(
            "/api/v1/campaigns",
            json={
                "title": "Yoghurt shelf check",
                "instructions": "Photograph the whole chilled yoghurt shelf, facing it, with the price labels readable.",
                "reward_cents": 450,
                "currency": "EUR",
                "estimated_minutes": 15,
                "slots_per_store": 2,
                "store_ids": [s["id"] for s in stores],
                "photo_rules": {"min_photos": 1, "max_photos": 3, "min_short_side_px": 800},
            },
            headers=headers["client"],
        )
        _ok(campaign, 201)
        campaign_id = campaign.json()["id"]
        _ok(api.post(f"/api/v1/campaigns/{campaign_id}/activate", headers=headers["client"]), 200)
        tasks = {
            t["store"]["name"]: t["task_id"]
            for t in api.get(
                "/api/v1/tasks/nearby",
                params={"lat": lat0, "lon": lon0, "radius_m": 10_000, "limit": 100},
                headers=headers["worker1"],
            ).json()["items"]
        }
        assignments = []
        for n, (expected, offset, accuracy) in enumerate(VISITS, start=1):
            worker, store = f"worker{n}", stores[(n - 1) % len(stores)]
            reserved = api.post(f"/api/v1/tasks/{tasks[store['name']]}/reservations", headers=headers[worker])
            _ok(reserved, 201)
            assignment_id = reserved.json()["id"]
            photo_id = _upload(api, headers[worker], assignment_id, shelf_photo(seed=n))
            submitted = api.post(
                f"/api/v1/assignments/{assignment_id}/submit",
                json={
                    "photo_ids": [photo_id],
                    "location": {
                        "lat": store["lat"] + offset,
                        "lon": store["lon"],
                        "accuracy_m": accuracy,
                        "is_mock": False,
                    },
                    "captured_at": datetime.now(UTC).isoformat(),
                    "device_id": f"demo-phone-{n}",
                },
                headers={**headers[worker], "Idempotency-Key": secrets.token_hex(8)},
            )
            _ok(submitted, 202)
            assignments.append((worker, assignment_id, expected))
        runtime.jobs.join()
        # One rejected worker asks a person to look again.
        worker, assignment_id, _ = next(a for a in assignments if a[2] == "rejected")
        _ok(
            api.post(
                f"/api/v1/assignments/{assignment_id}/appeal",
                json={"message": "I was in the store: my phone's GPS jumped while I submitted."},
                headers=headers[worker],
            ),
            201,
        )
        _ok(
            api.post(
                f"/api/v1/campaigns/{campaign_id}/exports",
                json={"format": "report"},
                headers=headers["client"],
            ),
            202,
        )
        runtime.jobs.join()
    runtime.close()
    return replace(accounts, created=True, campaign_id=campaign_id)


def _upload(api: Any, headers: dict[str, str], assignment_id: str, data: bytes) -> str:
    answer = api.post(
        f"/api/v1/assignments/{assignment_id}/photos",
        json={"content_type": "image/jpeg", "size_bytes": len(data)},
        headers=headers,
    )
    _ok(answer, 201)
    body = answer.json()
    upload = body["upload"]
    parts = urlsplit(upload["url"])
    if parts.path.startswith("/storage/"):  # the embedded storage: answered by this same app
        sent = api.put(
            urlunsplit(("", "", parts.path, parts.query, "")), content=data, headers=upload["headers"]
        )
    else:  # S3: the presigned PUT, sent to the storage itself
        sent = httpx.put(upload["url"], content=data, headers=upload["headers"])
    if sent.status_code not in (200, 201, 204):
        raise RuntimeError(f"the photo upload failed: {sent.status_code} {sent.text[:200]}")
    return str(body["photo_id"])


def _ok(answer: Any, status: int) -> None:
    if answer.status_code != status:
        raise RuntimeError(
            f"{answer.request.method} {answer.request.url.path}: {answer.status_code} {answer.text[:300]}"
        )
