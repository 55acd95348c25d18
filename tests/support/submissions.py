"""The worker's side of a task, through the HTTP API: reserve, upload straight to storage, submit."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from fieldcheck.auth.models import Role
from tests.support.factories import (
    Account,
    make_account,
    make_campaign,
    make_store,
    reserve,
    runtime_of,
    task_of,
)

STORE_LAT, STORE_LON = 48.8566, 2.3522


def upload(
    client: Any, worker: Account, assignment_id: str, data: bytes, content_type: str = "image/jpeg"
) -> str:
    answer = client.post(
        f"/api/v1/assignments/{assignment_id}/photos",
        json={"content_type": content_type, "size_bytes": max(1, len(data))},
        headers=worker.headers,
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    instruction = body["upload"]
    put_to_storage(client, instruction, data, content_type)
    return str(body["photo_id"])


def put_to_storage(client: Any, instruction: dict[str, Any], data: bytes, content_type: str) -> None:
    sent = send_upload(client, instruction, data)
    assert sent.status_code in (200, 201, 204), sent.text


def send_upload(client: Any, instruction: dict[str, Any], data: bytes, **headers: str) -> Any:
    """The phone's PUT as instructed (the local backend through the app, S3 directly); `headers`
    change or, given as "", leave out the instructed ones."""
    assert instruction["method"] == "PUT"
    sent = {k: v for k, v in {**instruction["headers"], **headers}.items() if v}
    parts = urlsplit(instruction["url"])
    if parts.netloc == "testserver.local":
        return client.put(urlunsplit(("", "", parts.path, parts.query, "")), content=data, headers=sent)
    return httpx.put(instruction["url"], content=data, headers=sent)


def fetch(client: Any, url: str) -> bytes:
    """Download a signed URL handed out by the API (local backend through the app, S3 directly)."""
    parts = urlsplit(url)
    if parts.netloc == "testserver.local":
        answer = client.get(urlunsplit(("", "", parts.path, parts.query, "")))
    else:
        answer = httpx.get(url)
    assert answer.status_code == 200, answer.text
    return bytes(answer.content)


def submit(
    client: Any,
    worker: Account,
    assignment_id: str,
    photo_ids: list[str],
    *,
    lat: float = STORE_LAT,
    lon: float = STORE_LON,
    accuracy_m: float = 12.0,
    is_mock: bool = False,
    key: str | None = None,
    captured_at: str | None = None,
) -> Any:
    body = {
        "photo_ids": photo_ids,
        "location": {"lat": lat, "lon": lon, "accuracy_m": accuracy_m, "is_mock": is_mock},
        "captured_at": captured_at or datetime.now(UTC).isoformat(),
        "device_id": "phone-test-1",
    }
    headers = {**worker.headers, "Idempotency-Key": key or secrets.token_hex(8)}
    return client.post(f"/api/v1/assignments/{assignment_id}/submit", json=body, headers=headers)


def checked(client: Any, worker: Account, assignment_id: str) -> dict[str, Any]:
    """The assignment once the check job has run."""
    runtime_of(client).jobs.join()
    answer = client.get(f"/api/v1/assignments/{assignment_id}", headers=worker.headers)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


class Field:
    """A client with an active campaign at one store, and a way to hand workers its tasks."""

    def __init__(self, client: Any, *, stores: int = 1, **campaign: Any) -> None:
        self.client = client
        runtime = runtime_of(client)
        self.owner = make_account(runtime, Role.client)
        self.stores = [
            make_store(client, self.owner, lat=STORE_LAT + i * 0.01, lon=STORE_LON, geofence_m=150)["id"]
            for i in range(stores)
        ]
        fields = {
            "photo_rules": {"min_photos": 1, "max_photos": 4, "min_short_side_px": 1000},
            "slots_per_store": 5,
        }
        fields.update(campaign)
        self.campaign = make_campaign(client, self.owner, self.stores, **fields)
        self.tasks = [task_of(client, self.campaign["id"], store) for store in self.stores]

    def worker(self) -> Account:
        return make_account(runtime_of(self.client), Role.worker)

    def reserve(self, worker: Account, task: int = 0) -> str:
        answer = reserve(self.client, worker, self.tasks[task])
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])


def by_check(assignment: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for check in assignment["checks"]:
        grouped.setdefault(check["name"], []).append(check)
    return grouped


def new_id() -> str:
    return str(uuid.uuid4())


@contextmanager
def jobs_held(client: Any) -> Iterator[None]:
    """Committed jobs wait (no after-commit send, no relay loop) until the block ends."""
    runtime = runtime_of(client)
    runtime.jobs.db.after_commit_hooks.remove(runtime.jobs._after_commit)
    runtime.jobs.stop_loops()
    try:
        yield
    finally:
        runtime.jobs.db.after_commit_hooks.append(runtime.jobs._after_commit)
        runtime.jobs.start_loops(relay=True, scheduler=False)
