from __future__ import annotations

import base64
import io
import json
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from fieldcheck.errors import NotFound
from fieldcheck.settings import Settings
from fieldcheck.storage import LocalStorage, S3Storage
from tests.support.factories import problem, runtime_of


@pytest.fixture
def s3(backends: Any, s3_endpoint: str) -> S3Storage:
    settings = Settings(
        home=backends.tmp_path,
        s3_bucket="fc-storage-test",
        s3_endpoint_url=s3_endpoint,
        s3_access_key_id="test",
        s3_secret_access_key="test",
        s3_create_bucket=True,
    )
    return S3Storage(settings)


def test_s3_round_trip_through_presigned_urls(s3: S3Storage) -> None:
    upload = s3.presign_upload(
        "photos/p1/original.jpg", content_type="image/jpeg", max_bytes=1000, expires_s=300
    )
    assert upload.method == "POST"
    answer = httpx.post(
        upload.url, data=upload.fields, files={"file": ("p.jpg", b"\xff\xd8jpeg bytes", "image/jpeg")}
    )
    assert answer.status_code in (200, 201, 204), answer.text
    info = s3.head("photos/p1/original.jpg")
    assert info is not None
    assert info.size == len(b"\xff\xd8jpeg bytes")
    assert info.content_type == "image/jpeg"

    url = s3.presign_download("photos/p1/original.jpg", expires_s=60, filename="store 12 été.jpg")
    downloaded = httpx.get(url)
    assert downloaded.status_code == 200
    assert downloaded.content == b"\xff\xd8jpeg bytes"
    assert "filename*=UTF-8''store%2012%20%C3%A9t%C3%A9.jpg" in downloaded.headers["content-disposition"]

    s3.delete("photos/p1/original.jpg")
    assert s3.head("photos/p1/original.jpg") is None
    with pytest.raises(NotFound):
        s3.get_bytes("photos/p1/original.jpg")


def test_s3_upload_policy_bounds_size_and_type(s3: S3Storage) -> None:
    """The signed policy is what S3 enforces (moto accepts any upload, so read what we signed)."""
    upload = s3.presign_upload(
        "photos/p2/original.png", content_type="image/png", max_bytes=2048, expires_s=120
    )
    policy = json.loads(base64.b64decode(upload.fields["policy"]))
    assert ["content-length-range", 1, 2048] in policy["conditions"]
    assert {"Content-Type": "image/png"} in policy["conditions"]
    assert {"key": "photos/p2/original.png"} in policy["conditions"]
    assert upload.fields["Content-Type"] == "image/png"
    assert upload.expires_at.timestamp() == pytest.approx(time.time() + 120, abs=5)


def test_s3_put_stream_and_bytes(s3: S3Storage) -> None:
    s3.put("exports/a.csv", b"a,b\n1,2\n", content_type="text/csv")
    s3.put("exports/big.bin", io.BytesIO(b"x" * (6 * 1024 * 1024)), content_type="application/octet-stream")
    assert s3.get_bytes("exports/a.csv") == b"a,b\n1,2\n"
    info = s3.head("exports/big.bin")
    assert info is not None
    assert info.size == 6 * 1024 * 1024
    s3.check()


def _local(client: Any) -> LocalStorage:
    storage = runtime_of(client).storage
    assert isinstance(storage, LocalStorage)
    return storage


def _path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(("", "", parts.path, parts.query, ""))


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(("", "", parts.path, urlencode(query), ""))


@pytest.fixture
def local_client(embedded_settings: Settings) -> Any:
    from litestar.testing import TestClient

    from fieldcheck.app import create_app

    with TestClient(create_app(embedded_settings), base_url="http://testserver.local") as client:
        yield client


def test_local_round_trip_through_signed_urls(local_client: Any) -> None:
    storage = _local(local_client)
    upload = storage.presign_upload(
        "photos/x/original.jpg", content_type="image/jpeg", max_bytes=100, expires_s=60
    )
    assert upload.method == "PUT"
    assert upload.url.startswith("http://testserver.local/storage/photos/x/original.jpg?")
    answer = local_client.put(_path_and_query(upload.url), content=b"\xff\xd8hello", headers=upload.headers)
    assert answer.status_code == 201, answer.text
    assert storage.get_bytes("photos/x/original.jpg") == b"\xff\xd8hello"

    url = storage.presign_download("photos/x/original.jpg", expires_s=60, filename="shelf.jpg")
    downloaded = local_client.get(_path_and_query(url))
    assert downloaded.status_code == 200
    assert downloaded.content == b"\xff\xd8hello"
    assert downloaded.headers["content-type"] == "image/jpeg"
    assert 'filename="shelf.jpg"' in downloaded.headers["content-disposition"]


def test_local_upload_refusals_leave_nothing_behind(local_client: Any) -> None:
    storage = _local(local_client)
    key = "photos/y/original.jpg"
    upload = storage.presign_upload(key, content_type="image/jpeg", max_bytes=10, expires_s=60)
    url = _path_and_query(upload.url)

    problem(local_client.put(url, content=b"x" * 11, headers=upload.headers), 413, "payload_too_large")

    def chunks() -> Any:
        yield b"x" * 6
        yield b"x" * 6

    # Without a Content-Length the stream itself is counted.
    problem(local_client.put(url, content=chunks(), headers=upload.headers), 413, "payload_too_large")
    problem(
        local_client.put(url, content=b"abc", headers={"Content-Type": "image/png"}),
        403,
        "content_type_mismatch",
    )
    problem(local_client.put(url, content=b"", headers=upload.headers), 400, "empty_upload")
    problem(
        local_client.put(_with_query(upload.url, max="100000"), content=b"abc", headers=upload.headers),
        403,
        "bad_signature",
    )
    problem(
        local_client.put(_with_query(upload.url, op="get"), content=b"abc", headers=upload.headers),
        403,
        "bad_signature",
    )
    other_key = url.replace("photos/y/", "photos/z/")
    problem(local_client.put(other_key, content=b"abc", headers=upload.headers), 403, "bad_signature")
    download = storage.presign_download(key, expires_s=60)
    problem(local_client.put(_path_and_query(download), content=b"abc", headers=upload.headers), 403)

    assert storage.head(key) is None
    leftovers = [p for p in storage.root.rglob("*") if p.is_file() and not p.name.startswith(".ready")]
    assert leftovers == []


def test_local_urls_expire(local_client: Any) -> None:
    storage = _local(local_client)
    storage.put("photos/e/original.jpg", b"abc", content_type="image/jpeg")
    expired = storage.presign_download("photos/e/original.jpg", expires_s=-1)
    problem(local_client.get(_path_and_query(expired)), 403, "url_expired")
    problem(local_client.get("/storage/photos/e/original.jpg"), 403, "bad_signature")


def test_local_paths_cannot_escape_the_folder(local_client: Any) -> None:
    storage = _local(local_client)
    secret = storage.root.parent / "outside.txt"
    secret.write_text("not yours")
    signed = storage.sign({"key": "../outside.txt", "op": "get", "exp": str(int(time.time()) + 60)})
    for path in ("/storage/../outside.txt", "/storage/..%2Foutside.txt", "/storage/%2e%2e/outside.txt"):
        answer = local_client.get(f"{path}?op=get&exp={int(time.time()) + 60}&sig={signed}")
        assert answer.status_code in (400, 403, 404), (path, answer.status_code)
        assert "not yours" not in answer.text


def test_storage_is_ready(app_client: Any) -> None:
    runtime_of(app_client).storage.check()
