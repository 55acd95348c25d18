"""Object storage behind one interface: S3 (boto3) or a local folder served by the app.

Phones upload straight to storage with a signed PUT (S3 presigned, or the local backend's own
URL), and people download through expiring signed URLs. An upload instruction is single-use: the
exact size and the content type are in the signature, and it writes only where nothing is stored
yet (`If-None-Match: *`), so an object once uploaded cannot be replaced through it. Downloads
carry a content type the server chose, never one an uploader did.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import mimetypes
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, cast
from urllib.parse import quote, urlencode, urlsplit

import anyio
import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError
from litestar import Controller, Request, Response, get, put
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Stream

from fieldcheck.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    PreconditionRequired,
)
from fieldcheck.i18n import _, text
from fieldcheck.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import CORSRuleTypeDef

log = logging.getLogger("fieldcheck.storage")

KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]{0,511}$")
CHUNK_BYTES = 1024 * 1024
# Uploads from a stream: 8 MiB parts, two sent at a time, at most two more read ahead.
STREAM_TRANSFER = TransferConfig(multipart_chunksize=8 * 1024 * 1024, max_concurrency=2)
STREAM_TRANSFER.max_in_memory_upload_chunks = 2  # s3transfer's setting; boto3 does not take it in __init__
LOCAL_ROUTE = "/storage"


@dataclass(frozen=True)
class UploadInstruction:
    method: str
    url: str
    expires_at: datetime
    headers: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str | None
    # Changes whenever the object is written again (an upload URL replayed after submission).
    etag: str | None = None


class ObjectStorage(Protocol):
    kind: str

    def presign_upload(
        self, key: str, *, content_type: str, size_bytes: int, expires_s: int
    ) -> UploadInstruction:
        """One upload of exactly `size_bytes` of `content_type` to `key`, while nothing is there."""
        ...

    def presign_download(
        self, key: str, *, expires_s: int, filename: str | None = None, content_type: str | None = None
    ) -> str:
        """A link that answers with `content_type` (when given) whatever the object was stored as."""
        ...

    def head(self, key: str) -> ObjectInfo | None: ...

    def copy(self, source: str, target: str, *, if_etag: str, content_type: str) -> ObjectInfo | None:
        """Copy `source` to `target` as it is when its etag is `if_etag`; None if it changed or is gone."""
        ...

    def get_bytes(self, key: str) -> bytes: ...

    def open(self, key: str) -> IO[bytes]: ...

    def put(self, key: str, data: bytes | IO[bytes], *, content_type: str) -> None: ...

    def delete(self, key: str) -> None: ...

    def check(self) -> None: ...


def validate_key(key: str) -> str:
    if not KEY_PATTERN.fullmatch(key) or any(part in ("", ".", "..") for part in key.split("/")):
        raise BadRequest(text(_("invalid object key {key}"), key=repr(key)), code="invalid_object_key")
    return key


def _expiry(expires_s: int) -> tuple[int, datetime]:
    exp = int(time.time()) + expires_s
    return exp, datetime.fromtimestamp(exp, UTC)


def browser_origins(settings: Settings) -> list[str]:
    """Where browsers load fieldcheck's pages from: its public address, and the allowed others."""
    parts = urlsplit(settings.base_url)
    return list(dict.fromkeys([f"{parts.scheme}://{parts.netloc}", *settings.cors_origins]))


class S3Storage:
    kind = "s3"

    def __init__(self, settings: NamedDependency[Settings]) -> None:
        assert settings.s3_bucket
        self.bucket = settings.s3_bucket
        secret = settings.s3_secret_access_key.get_secret_value() if settings.s3_secret_access_key else None
        common: dict[str, Any] = {
            "region_name": settings.s3_region,
            "aws_access_key_id": settings.s3_access_key_id,
            "aws_secret_access_key": secret,
        }
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
        )
        self.client = boto3.client("s3", endpoint_url=settings.s3_endpoint_url, config=config, **common)
        public = settings.s3_public_endpoint_url or settings.s3_endpoint_url
        # Presigning is offline: a second client signs URLs for the address phones can reach.
        self.signer = boto3.client("s3", endpoint_url=public, config=config, **common)
        if settings.s3_create_bucket:
            self.ensure_bucket()
            self.allow_browser_uploads(browser_origins(settings))

    def ensure_bucket(self) -> bool:
        """Create the bucket when it is missing; True when this call created it. Two processes
        starting at once may both try: the one that finds it made by the other is content."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return False
        except ClientError:
            pass
        try:
            self.client.create_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in (
                "BucketAlreadyOwnedByYou",
                "BucketAlreadyExists",
            ):
                self.client.head_bucket(Bucket=self.bucket)  # ours after all, or an honest error
                return False
            raise
        return True

    def allow_browser_uploads(self, origins: list[str]) -> None:
        """The workers' web app PUTs photos straight to the bucket from its page: the bucket's CORS
        rule lets its origin do so (signed PUTs only; reading stays by signed URL). Logged, not
        fatal, when the server does not support CORS rules."""
        rule: CORSRuleTypeDef = {
            "AllowedOrigins": origins,
            "AllowedMethods": ["PUT", "GET", "HEAD"],
            "AllowedHeaders": ["Content-Type", "If-None-Match", "Content-Length"],
            "ExposeHeaders": ["ETag"],
            "MaxAgeSeconds": 3600,
        }
        try:
            self.client.put_bucket_cors(Bucket=self.bucket, CORSConfiguration={"CORSRules": [rule]})
        except ClientError as exc:
            log.warning("the bucket's CORS rule could not be set (%s): set it for %s by hand", exc, origins)

    def presign_upload(
        self, key: str, *, content_type: str, size_bytes: int, expires_s: int
    ) -> UploadInstruction:
        validate_key(key)
        _, expires_at = _expiry(expires_s)
        # Content-Type, Content-Length and If-None-Match are signed headers: S3 refuses another
        # type or size, and any write once an object is there (a conditional write).
        url = self.signer.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ContentType": content_type,
                "ContentLength": size_bytes,
                "IfNoneMatch": "*",
            },
            ExpiresIn=expires_s,
        )
        return UploadInstruction(
            method="PUT", url=url, headers=_upload_headers(content_type, size_bytes), expires_at=expires_at
        )

    def presign_download(
        self, key: str, *, expires_s: int, filename: str | None = None, content_type: str | None = None
    ) -> str:
        params: dict[str, str] = {"Bucket": self.bucket, "Key": validate_key(key)}
        if filename:
            params["ResponseContentDisposition"] = _content_disposition(filename)
        if content_type:
            params["ResponseContentType"] = content_type
        url: str = self.signer.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_s)
        return url

    def copy(self, source: str, target: str, *, if_etag: str, content_type: str) -> ObjectInfo | None:
        try:
            self.client.copy_object(
                Bucket=self.bucket,
                Key=validate_key(target),
                CopySource={"Bucket": self.bucket, "Key": validate_key(source)},
                CopySourceIfMatch=f'"{if_etag}"',
                MetadataDirective="REPLACE",
                ContentType=content_type,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412", "NoSuchKey", "404"):
                return None
            raise
        copied = self.head(target)
        # A single PUT's ETag is its MD5: the copy shows which bytes it took, also on stores that
        # ignore the copy's precondition.
        if copied is None or copied.etag != if_etag:
            self.delete(target)
            return None
        return copied

    def head(self, key: str) -> ObjectInfo | None:
        try:
            answer = self.client.head_object(Bucket=self.bucket, Key=validate_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return ObjectInfo(
            key=key,
            size=int(answer["ContentLength"]),
            content_type=answer.get("ContentType"),
            etag=str(answer.get("ETag", "")).strip('"') or None,
        )

    def get_bytes(self, key: str) -> bytes:
        with self.open(key) as body:
            return body.read()

    def open(self, key: str) -> IO[bytes]:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=validate_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise NotFound(text(_("no stored object {key}"), key=repr(key))) from exc
            raise
        return cast("IO[bytes]", answer["Body"])  # a StreamingBody reads like a binary file

    def put(self, key: str, data: bytes | IO[bytes], *, content_type: str) -> None:
        validate_key(key)
        if isinstance(data, bytes):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        else:
            # Multipart upload from a stream: memory stays bounded whatever the size.
            self.client.upload_fileobj(
                data, self.bucket, key, ExtraArgs={"ContentType": content_type}, Config=STREAM_TRANSFER
            )

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=validate_key(key))

    def check(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)


class LocalStorage:
    """Objects as files under a folder; signed, expiring URLs answered by the app itself."""

    kind = "local"

    def __init__(self, settings: NamedDependency[Settings]) -> None:
        self.root = settings.objects_dir
        self.root.mkdir(parents=True, exist_ok=True)
        self.base_url = settings.base_url
        self._key = hmac.new(settings.secret, b"fieldcheck local storage urls", hashlib.sha256).digest()

    # Signing -------------------------------------------------------------------------------
    def sign(self, params: dict[str, str]) -> str:
        canonical = "\n".join(f"{k}={params[k]}" for k in sorted(params))
        digest = hmac.new(self._key, canonical.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def verify(self, params: dict[str, str], signature: str) -> None:
        if not hmac.compare_digest(self.sign(params), signature):
            raise Forbidden(text(_("the signature of this URL is not valid")), code="bad_signature")
        if int(params.get("exp", "0")) < time.time():
            raise Forbidden(text(_("this URL has expired; ask for a new one")), code="url_expired")

    def _url(self, key: str, params: dict[str, str]) -> str:
        query = urlencode({**params, "sig": self.sign({**params, "key": key})})
        return f"{self.base_url}{LOCAL_ROUTE}/{quote(key)}?{query}"

    def path_for(self, key: str) -> Path:
        path = (self.root / validate_key(key)).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise BadRequest(text(_("invalid object key")), code="invalid_object_key")
        return path

    # Interface ----------------------------------------------------------------------------
    def presign_upload(
        self, key: str, *, content_type: str, size_bytes: int, expires_s: int
    ) -> UploadInstruction:
        validate_key(key)
        exp, expires_at = _expiry(expires_s)
        params = {"op": "put", "exp": str(exp), "ct": content_type, "size": str(size_bytes)}
        return UploadInstruction(
            method="PUT",
            url=self._url(key, params),
            headers=_upload_headers(content_type, size_bytes),
            expires_at=expires_at,
        )

    def presign_download(
        self, key: str, *, expires_s: int, filename: str | None = None, content_type: str | None = None
    ) -> str:
        validate_key(key)
        exp, _ = _expiry(expires_s)
        params = {"op": "get", "exp": str(exp)}
        if filename:
            params["fn"] = filename
        if content_type:
            params["ct"] = content_type
        return self._url(key, params)

    def copy(self, source: str, target: str, *, if_etag: str, content_type: str) -> ObjectInfo | None:
        before = self.head(source)
        if before is None or before.etag != if_etag:
            return None
        source_path, target_path = self.path_for(source), self.path_for(target)
        target_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target_path.parent, prefix=".copy-")
        try:
            with os.fdopen(fd, "wb") as out, source_path.open("rb") as original:
                shutil.copyfileobj(original, out, CHUNK_BYTES)
            after = self.head(source)
            if after is None or after.etag != if_etag:  # written again while being copied
                return None
            os.replace(tmp, target_path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return self.head(target)

    def head(self, key: str) -> ObjectInfo | None:
        path = self.path_for(key)
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        return ObjectInfo(
            key=key,
            size=stat.st_size,
            content_type=mimetypes.guess_type(path.name)[0],
            etag=f"{stat.st_size:x}-{stat.st_mtime_ns:x}-{stat.st_ino:x}",
        )

    def get_bytes(self, key: str) -> bytes:
        with self.open(key) as handle:
            return handle.read()

    def open(self, key: str) -> IO[bytes]:
        try:
            return self.path_for(key).open("rb")
        except FileNotFoundError as exc:
            raise NotFound(text(_("no stored object {key}"), key=repr(key))) from exc

    def put(self, key: str, data: bytes | IO[bytes], *, content_type: str) -> None:
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(data, bytes):
                    out.write(data)
                else:
                    shutil.copyfileobj(data, out, CHUNK_BYTES)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def delete(self, key: str) -> None:
        self.path_for(key).unlink(missing_ok=True)

    def check(self) -> None:
        probe = self.root / ".ready-probe"
        probe.write_bytes(b"ok")
        probe.unlink()


class _CountingReader:
    """The read end of the pipe, counting what passes (the stored object's size).

    When the producer failed, the end of the stream is an error, not an end: the backend then
    aborts the upload (S3 aborts the multipart upload, the local backend drops its temporary
    file), so a truncated object never becomes visible.
    """

    def __init__(self, raw: IO[bytes], failure: list[BaseException]) -> None:
        self.raw = raw
        self.failure = failure
        self.bytes = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.raw.read(size)
        if not chunk and self.failure:
            raise OSError("the stream being stored was cut short") from self.failure[0]
        self.bytes += len(chunk)
        return chunk

    def readable(self) -> bool:
        return True


def put_stream(
    storage: ObjectStorage, key: str, *, content_type: str, produce: Callable[[IO[bytes]], None]
) -> int:
    """Store what `produce` writes while it writes it; returns the size.

    The writer is one end of a pipe and the storage backend reads the other (S3: a multipart
    upload, a part at a time), so an object of any size needs only a few buffers of memory and
    no local file. If `produce` fails, the partial object is deleted and its error raised.
    """
    read_fd, write_fd = os.pipe()
    reader = os.fdopen(read_fd, "rb", buffering=CHUNK_BYTES)
    writer = os.fdopen(write_fd, "wb", buffering=CHUNK_BYTES)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            produce(writer)
        except BaseException as exc:
            failure.append(exc)
        finally:
            with contextlib.suppress(OSError):  # the reader went away first (the upload failed)
                writer.close()

    thread = threading.Thread(target=run, name=f"put-stream-{key[-40:]}", daemon=True)
    thread.start()
    counted = _CountingReader(reader, failure)
    try:
        storage.put(key, cast("IO[bytes]", counted), content_type=content_type)
    except BaseException as exc:
        reader.close()  # unblocks the producer: its next write fails
        thread.join()
        _delete_quietly(storage, key)
        if failure and not isinstance(failure[0], BrokenPipeError):
            raise failure[0] from exc  # the producer's error is the cause; the upload's is its effect
        raise
    thread.join()
    reader.close()
    if failure:
        _delete_quietly(storage, key)
        raise failure[0]
    return counted.bytes


def _delete_quietly(storage: ObjectStorage, key: str) -> None:
    try:
        storage.delete(key)
    except Exception:
        log.warning("could not delete the partial object %s", key, exc_info=True)


def create_storage(settings: NamedDependency[Settings]) -> ObjectStorage:
    return S3Storage(settings) if settings.storage_kind == "s3" else LocalStorage(settings)


def _upload_headers(content_type: str, size_bytes: int) -> dict[str, str]:
    """The headers a phone sends with its PUT, as signed (HTTP clients set Content-Length themselves)."""
    return {"Content-Type": content_type, "Content-Length": str(size_bytes), "If-None-Match": "*"}


def _content_disposition(filename: str) -> str:
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


class LocalStorageController(Controller):
    """Answers the signed URLs of the local backend (only mounted when it is in use)."""

    path = LOCAL_ROUTE
    tags = ["storage"]
    include_in_schema = False

    @put("/{key:path}", request_max_body_size=None, status_code=201)
    async def upload(
        self, request: Request[Any, Any, Any], key: FromPath[str], storage: NamedDependency[LocalStorage]
    ) -> Response[None]:
        """One upload, as the instruction signed it: its type, its exact size, and only once."""
        key = key.lstrip("/")
        params = _signed_params(request, key, ("op", "exp", "ct", "size"))
        storage.verify(params, request.query_params.get("sig", ""))
        if params["op"] != "put":
            raise Forbidden(text(_("this URL does not allow uploads")), code="bad_signature")
        size = int(params["size"])
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        if content_type != params["ct"]:
            raise Forbidden(
                text(_("Content-Type must be {content_type}, as signed"), content_type=repr(params["ct"])),
                code="content_type_mismatch",
            )
        if request.headers.get("if-none-match") != "*":
            raise PreconditionRequired(
                text(_("send If-None-Match: * as the instruction says: an upload never replaces an object"))
            )
        declared = request.headers.get("content-length")
        if declared is not None and declared != str(size):
            raise BadRequest(
                text(
                    _("this upload must be exactly {size} bytes, as announced; it says {declared}"),
                    size=size,
                    declared=declared,
                ),
                code="upload_size_mismatch",
                size_bytes=size,
            )
        path = storage.path_for(key)
        if await anyio.to_thread.run_sync(path.exists):
            raise _already_uploaded()
        await anyio.to_thread.run_sync(lambda: path.parent.mkdir(parents=True, exist_ok=True))
        fd, tmp = await anyio.to_thread.run_sync(lambda: tempfile.mkstemp(dir=path.parent, prefix=".upload-"))
        os.close(fd)
        received = 0
        try:
            async with await anyio.open_file(tmp, "wb") as out:
                async for chunk in request.stream():
                    received += len(chunk)
                    if received > size:
                        raise PayloadTooLarge(
                            text(_("this upload must be exactly {size} bytes"), size=size), max_bytes=size
                        )
                    await out.write(chunk)
            if received != size:
                raise BadRequest(
                    text(
                        _("this upload must be exactly {size} bytes; {received} arrived"),
                        size=size,
                        received=received,
                    ),
                    code="upload_size_mismatch",
                    size_bytes=size,
                )
            try:  # a hard link appears only if nothing is there: of two racing uploads, one wins
                await anyio.to_thread.run_sync(os.link, tmp, path)
            except FileExistsError:
                raise _already_uploaded() from None
        finally:
            await anyio.to_thread.run_sync(lambda: Path(tmp).unlink(missing_ok=True))
        return Response(content=None, status_code=201)

    @get("/{key:path}")
    async def download(
        self, request: Request[Any, Any, Any], key: FromPath[str], storage: NamedDependency[LocalStorage]
    ) -> Stream:
        key = key.lstrip("/")
        wanted = ("op", "exp", *(name for name in ("fn", "ct") if name in request.query_params))
        params = _signed_params(request, key, wanted)
        storage.verify(params, request.query_params.get("sig", ""))
        if params["op"] != "get":
            raise Forbidden(text(_("this URL does not allow downloads")), code="bad_signature")
        info = storage.head(key)
        if info is None:
            raise NotFound(text(_("no such object")))
        path = storage.path_for(key)
        headers = {"Content-Length": str(info.size), "Cache-Control": "private, max-age=300", **SERVED_OBJECT}
        if "fn" in params:
            headers["Content-Disposition"] = _content_disposition(params["fn"])
        return Stream(
            _read_chunks(path),
            media_type=params.get("ct") or info.content_type or "application/octet-stream",
            headers=headers,
        )


# Whatever a stored object holds, a browser shows it as the type the server chose and runs nothing.
SERVED_OBJECT = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox",
}


def _already_uploaded() -> PreconditionFailed:
    return PreconditionFailed(
        text(
            _(
                "something was already uploaded here; an upload never replaces it (delete the photo and ask "
                "for a new upload to send another)"
            )
        ),
        code="already_uploaded",
    )


def _signed_params(request: Request[Any, Any, Any], key: str, names: tuple[str, ...]) -> dict[str, str]:
    params = {"key": key}
    for name in names:
        value = request.query_params.get(name)
        if value is None:
            raise Forbidden(text(_("this URL is incomplete")), code="bad_signature")
        params[name] = value
    try:
        int(params["exp"])
        if "size" in params:
            int(params["size"])
    except ValueError:
        raise Forbidden(text(_("this URL is malformed")), code="bad_signature") from None
    return params


def _read_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk
