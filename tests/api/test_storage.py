from __future__ import annotations

import io
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
    body = b"\xff\xd8jpeg bytes"
    upload = s3.presign_upload(
        "photos/p1/original.jpg", content_type="image/jpeg", size_bytes=len(body), expires_s=300
    )
    assert upload.method == "PUT"
    assert upload.headers == {
        "Content-Type": "image/jpeg",
        "Content-Length": str(len(body)),
        "If-None-Match": "*",
    }
    answer = httpx.put(upload.url, content=body, headers=upload.headers)
    assert answer.status_code in (200, 201, 204), answer.text
    info = s3.head("photos/p1/original.jpg")
    assert info is not None
    assert info.size == len(body)
    assert info.content_type == "image/jpeg"

    url = s3.presign_download(
        "photos/p1/original.jpg", expires_s=60, filename="store 12 été.jpg", content_type="image/jpeg"
    )
    downloaded = httpx.get(url)
    assert downloaded.status_code == 200
    assert downloaded.content == body
    assert downloaded.headers["content-type"] == "image/jpeg"
    assert "filename*=UTF-8''store%2012%20%C3%A9t%C3%A9.jpg" in downloaded.headers["content-disposition"]

    s3.delete("photos/p1/original.jpg")
    assert s3.head("photos/p1/original.jpg") is None
    with pytest.raises(NotFound):
        s3.get_bytes("photos/p1/original.jpg")


def test_s3_uploads_are_single_use_of_a_signed_type_and_size(s3: S3Storage) -> None:
    """The type, the exact size and If-None-Match are signed headers, which S3 holds the upload to
    (moto does not check signatures: read what was signed); a second upload is refused."""
    upload = s3.presign_upload(
        "photos/p2/original.png", content_type="image/png", size_bytes=3, expires_s=120
    )
    signed = parse_qs(urlsplit(upload.url).query)["X-Amz-SignedHeaders"][0].split(";")
    assert {"content-length", "content-type", "if-none-match"} <= set(signed)
    assert upload.expires_at.timestamp() == pytest.approx(time.time() + 120, abs=5)
    assert httpx.put(upload.url, content=b"png", headers=upload.headers).status_code == 200
    again = httpx.put(upload.url, content=b"PNG", headers=upload.headers)
    assert again.status_code == 412, again.text
    assert s3.get_bytes("photos/p2/original.png") == b"png"


def test_s3_copy_only_what_was_seen(s3: S3Storage) -> None:
    s3.put("photos/p3/original.jpg", b"first", content_type="image/jpeg")
    seen = s3.head("photos/p3/original.jpg")
    assert seen is not None and seen.etag
    copied = s3.copy(
        "photos/p3/original.jpg", "photos/p3/submitted.jpg", if_etag=seen.etag, content_type="image/jpeg"
    )
    assert copied is not None and copied.size == 5
    assert s3.get_bytes("photos/p3/submitted.jpg") == b"first"
    # Written again since it was seen: nothing is copied (S3 checks the precondition; on a store
    # that does not, the copy's checksum shows it and it is removed).
    s3.put("photos/p3/original.jpg", b"second", content_type="image/jpeg")
    assert (
        s3.copy("photos/p3/original.jpg", "photos/p3/again.jpg", if_etag=seen.etag, content_type="image/jpeg")
        is None
    )
    assert s3.head("photos/p3/again.jpg") is None
    assert s3.copy("photos/none.jpg", "photos/p3/x.jpg", if_etag=seen.etag, content_type="image/jpeg") is None


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
        "photos/x/original.jpg", content_type="image/jpeg", size_bytes=7, expires_s=60
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
    assert downloaded.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in downloaded.headers["content-security-policy"]
    assert 'filename="shelf.jpg"' in downloaded.headers["content-disposition"]


def test_local_downloads_carry_the_type_the_server_chose(local_client: Any) -> None:
    storage = _local(local_client)
    storage.put("photos/h/original.jpg", b"<html><script>alert(1)</script>", content_type="text/html")
    url = storage.presign_download("photos/h/original.jpg", expires_s=60, content_type="image/jpeg")
    served = local_client.get(_path_and_query(url))
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["x-content-type-options"] == "nosniff"
    problem(local_client.get(_path_and_query(_with_query(url, ct="text/html"))), 403, "bad_signature")


def test_local_upload_refusals_leave_nothing_behind(local_client: Any) -> None:
    storage = _local(local_client)
    key = "photos/y/original.jpg"
    upload = storage.presign_upload(key, content_type="image/jpeg", size_bytes=10, expires_s=60)
    url = _path_and_query(upload.url)
    headers = {k: v for k, v in upload.headers.items() if k != "Content-Length"}

    problem(local_client.put(url, content=b"x" * 11, headers=headers), 400, "upload_size_mismatch")
    problem(local_client.put(url, content=b"x" * 9, headers=headers), 400, "upload_size_mismatch")

    def chunks() -> Any:
        yield b"x" * 6
        yield b"x" * 6

    # Without a Content-Length the stream itself is counted.
    problem(local_client.put(url, content=chunks(), headers=headers), 413, "payload_too_large")
    problem(
        local_client.put(url, content=b"x" * 10, headers={**headers, "Content-Type": "image/png"}),
        403,
        "content_type_mismatch",
    )
    problem(
        local_client.put(url, content=b"x" * 10, headers={"Content-Type": "image/jpeg"}),
        428,
        "precondition_required",
    )
    problem(local_client.put(url, content=b"", headers=headers), 400, "upload_size_mismatch")
    problem(
        local_client.put(_with_query(upload.url, size="100000"), content=b"abc", headers=headers),
        403,
        "bad_signature",
    )
    problem(
        local_client.put(_with_query(upload.url, op="get"), content=b"abc", headers=headers),
        403,
        "bad_signature",
    )
    other_key = url.replace("photos/y/", "photos/z/")
    problem(local_client.put(other_key, content=b"x" * 10, headers=headers), 403, "bad_signature")
    download = storage.presign_download(key, expires_s=60)
    problem(local_client.put(_path_and_query(download), content=b"x" * 10, headers=headers), 403)

    assert storage.head(key) is None
    leftovers = [p for p in storage.root.rglob("*") if p.is_file() and not p.name.startswith(".ready")]
    assert leftovers == []


def test_local_uploads_are_single_use(local_client: Any) -> None:
    storage = _local(local_client)
    upload = storage.presign_upload(
        "photos/o/original.jpg", content_type="image/jpeg", size_bytes=3, expires_s=60
    )
    url = _path_and_query(upload.url)
    assert local_client.put(url, content=b"one", headers=upload.headers).status_code == 201
    problem(local_client.put(url, content=b"two", headers=upload.headers), 412, "already_uploaded")
    assert storage.get_bytes("photos/o/original.jpg") == b"one"


def test_local_copy_only_what_was_seen(local_client: Any) -> None:
    storage = _local(local_client)
    storage.put("photos/c/original.jpg", b"first", content_type="image/jpeg")
    seen = storage.head("photos/c/original.jpg")
    assert seen is not None and seen.etag
    copied = storage.copy(
        "photos/c/original.jpg", "photos/c/submitted.jpg", if_etag=seen.etag, content_type="image/jpeg"
    )
    assert copied is not None and storage.get_bytes("photos/c/submitted.jpg") == b"first"
    time.sleep(0.01)
    storage.put("photos/c/original.jpg", b"second", content_type="image/jpeg")
    assert (
        storage.copy(
            "photos/c/original.jpg", "photos/c/submitted.jpg", if_etag=seen.etag, content_type="image/jpeg"
        )
        is None
    )
    assert storage.get_bytes("photos/c/submitted.jpg") == b"first"


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


def test_a_bucket_fieldcheck_makes_lets_the_phone_app_upload_from_its_pages(s3: S3Storage) -> None:
    """The workers' web app PUTs photos to the bucket from its own origin: the bucket says it may."""
    rules = s3.client.get_bucket_cors(Bucket=s3.bucket)["CORSRules"]
    assert rules[0]["AllowedOrigins"] == ["http://127.0.0.1:8000"]  # the app's origin (the default)
    assert "PUT" in rules[0]["AllowedMethods"]
    assert {"Content-Type", "If-None-Match"} <= set(rules[0]["AllowedHeaders"])
