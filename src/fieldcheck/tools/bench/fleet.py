"""`fieldcheck bench fleet`: a real multi-process deployment on this machine, driven by a fleet of
simulated phones, with crashes and network faults, then every invariant checked.

Topology, in scratch places of its own (never the configured ones, which only say where the
services are): a PostgreSQL database `fieldcheck_fleet_<random>`, queues prefixed `fleet<random>`
on the configured RabbitMQ or Redis, a bucket `fieldcheck-fleet-<random>` on the configured S3
server (moto's standalone server when none is given), a data folder in /tmp. Two `fieldcheck
serve` processes behind the bench's round-robin TCP proxy (the phones' one address), two
`fieldcheck worker` processes and one `fieldcheck scheduler`. Every process reaches PostgreSQL and
the broker through TCP proxies of the bench, so a network cut is simulated by dropping a proxy's
connections: the shared services are never stopped.

Each phone loops as the worker app does: nearby, reserve the nearest task it has not done,
create photo slots, PUT each photo to its signed URL and say `uploaded`, submit with an
Idempotency-Key at the store, poll until the checks decide. Photos are mosaics of tiles of the
real phone photos in ../shared/photos (16 tiles drawn at random: every photo a different picture,
with real textures and real sharpness); on purpose, some are blurred, some are an earlier photo
sent again (a duplicate) and some visits are submitted far from the store. Flaky networks are
simulated too: a share of submissions is sent twice with the same key, a share of uploads is sent
again, and a request that fails on the network or with a 5xx is retried. A reviewer decides
flagged work as it comes; the client exports the campaign's results once during the run.

Faults, at set shares of the run: `kill -9` of a worker (mid-check: the workers are busy all the
time) and of an API process, each started again; PostgreSQL's and the broker's connections cut
for a few seconds. A 5xx or a network error within a fault's window (from the fault to a few
seconds after recovery) is counted apart; outside them, any is a failure.

After the run (the phones stop; the reviewer goes on until everything submitted is decided):
every submission acknowledged with 202 decided by the checks exactly once and, when flagged, by
the reviewer exactly once; every approved visit paid exactly once and no other; `ledger verify`
clean; the outbox empty and the queues drained; the export done, and a last export listing every
delivered visit; no 5xx outside the fault windows.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click
import httpx
import numpy as np

from fieldcheck.db import normalize_database_url
from fieldcheck.settings import Settings
from fieldcheck.tools.services import delete_queues, free_port, wait_for_port

DEFAULT_FOLDERS = (Path("../shared/photos"), Path(__file__).resolve().parents[5] / "shared" / "photos")
# Sharp, well-exposed phone photos: their tiles make the visits' photos.
TILE_SOURCES = (
    "blur_honor10_180_sharp.jpg",
    "blur_honor7x_176_sharp.jpg",
    "neardup_iphone6_hdr_off_gps.jpg",
    "phone_iphone5_flowers_rot180_gps.jpg",
    "phone_oppo_r7plus_13mp_gps.jpg",
    "phone_iphone4_receipt_gps.jpg",
    "phone_htc_desire_parkinglot_gps.jpg",
)
PHOTO_SIZE = (2048, 1536)  # 3 MP, what the per-photo pipeline target is set for
GRID = (4, 4)
CENTRE = (48.8566, 2.3522)
STORES = 200
AREA_DEG = 0.03  # stores and phones within about 3 km of the centre
REWARD_CENTS = 500
FAR_AWAY_DEG = 0.05  # about 5 km: the location check fails
SHARE_BLURRED = 0.04
SHARE_DUPLICATE = 0.03
SHARE_FAR = 0.04
SHARE_SUBMIT_TWICE = 0.10
SHARE_UPLOAD_TWICE = 0.05
POLL_S = 0.7  # as the worker app polls
DECISION_TIMEOUT_S = 120.0
DRAIN_TIMEOUT_S = 240.0
FAULT_GRACE_S = 8.0
CUT_S = 4.0
RETRIES = 8
ENDPOINTS = ("nearby", "reserve", "photo slot", "submit", "status")


@dataclass(frozen=True)
class Options:
    phones: int = 8
    duration_s: float = 120.0
    visits: int | None = None
    photos_per_visit: int = 2
    seed: int = 1


# Photos ------------------------------------------------------------------------------------
class PhotoMaker:
    """Unique phone-size photos made of tiles of real ones (thread-safe)."""

    def __init__(self, seed: int) -> None:
        from fieldcheck.checks.imaging import cv2

        self.cv2 = cv2
        folder = next((f for f in DEFAULT_FOLDERS if f.is_dir()), None)
        if folder is None:
            raise click.ClickException("the fleet benchmark needs ../shared/photos (real phone photos)")
        width, height = PHOTO_SIZE
        tile_w, tile_h = width // GRID[0], height // GRID[1]
        self.tiles: list[np.ndarray] = []
        for name in TILE_SOURCES:
            image = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
            if image is None:
                continue
            if image.shape[0] > image.shape[1]:
                image = cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
            image = cv2.resize(image, PHOTO_SIZE, interpolation=cv2.INTER_AREA)
            for row in range(GRID[1]):
                for col in range(GRID[0]):
                    self.tiles.append(
                        image[row * tile_h : (row + 1) * tile_h, col * tile_w : (col + 1) * tile_w]
                    )
        if len(self.tiles) < GRID[0] * GRID[1]:
            raise click.ClickException("too few of the fleet's source photos are in ../shared/photos")
        self.rng = np.random.default_rng(seed)
        self.lock = threading.Lock()
        self.sent: list[bytes] = []
        self.pool: list[bytes] = []

    def prepare(self, count: int) -> None:
        """Make `count` photos ahead, so that the phones spend no CPU on them during the run."""
        made = [self._make() for _ in range(count)]
        with self.lock:
            self.pool.extend(made)

    def photo(self, *, blurred: bool = False, duplicate: bool = False) -> bytes:
        with self.lock:
            if duplicate and self.sent:
                return self.sent[int(self.rng.integers(0, len(self.sent)))]
            ready = self.pool.pop() if self.pool and not blurred else None
        data = ready or self._make(blurred=blurred)
        with self.lock:
            self.sent.append(data)
        return data

    def _make(self, *, blurred: bool = False) -> bytes:
        cv2 = self.cv2
        with self.lock:
            pick = self.rng.choice(len(self.tiles), GRID[0] * GRID[1], replace=False)
            flips = self.rng.integers(0, 2, len(pick))
        rows = [
            np.hstack(
                [
                    self.tiles[pick[r * GRID[0] + c]][:, ::-1]
                    if flips[r * GRID[0] + c]
                    else self.tiles[pick[r * GRID[0] + c]]
                    for c in range(GRID[0])
                ]
            )
            for r in range(GRID[1])
        ]
        image = np.vstack(rows)
        if blurred:
            image = cv2.GaussianBlur(image, (0, 0), 4.0)
        ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        return bytes(buffer)


# Scratch services ----------------------------------------------------------------------------
@dataclass
class Scratch:
    """Scratch database, queues, bucket and folder of one run, removed afterwards."""

    base: Settings
    token: str = field(default_factory=lambda: secrets.token_hex(4))
    home: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="fieldcheck-fleet-")))
    moto: subprocess.Popen[bytes] | None = None
    s3_endpoint: str = ""
    database_url: str = ""

    @property
    def database(self) -> str:
        return f"fieldcheck_fleet_{self.token}"

    @property
    def queue_prefix(self) -> str:
        return f"fleet{self.token}"

    @property
    def bucket(self) -> str:
        return f"fieldcheck-fleet-{self.token}"

    def __enter__(self) -> Scratch:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        url = make_url(normalize_database_url(self.base.database_url or ""))
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{self.database}"'))
        engine.dispose()
        self.database_url = url.set(database=self.database).render_as_string(hide_password=False)
        try:
            self.s3_endpoint = self.base.s3_endpoint_url or self._start_moto()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start_moto(self) -> str:
        executable = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which(
            "moto_server"
        )
        if executable is None:
            raise click.ClickException(
                "no S3 server: set FIELDCHECK_S3_ENDPOINT_URL (and its keys), or install moto[server]"
            )
        port = free_port()
        self.moto = subprocess.Popen(  # noqa: S603 - moto's own command
            [executable, "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(port)
        return f"http://127.0.0.1:{port}"

    def s3_keys(self) -> tuple[str, str]:
        if self.moto is not None:
            return "fleet", "fleet-secret"
        secret = self.base.s3_secret_access_key
        return self.base.s3_access_key_id or "", secret.get_secret_value() if secret else ""

    def __exit__(self, *_: object) -> None:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        with contextlib.suppress(Exception):
            delete_queues(self.base.broker_url, self.queue_prefix)
        if self.moto is not None:
            self.moto.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.moto.wait(timeout=10)
        else:
            with contextlib.suppress(Exception):
                self._delete_bucket()
        with contextlib.suppress(Exception):
            engine = create_engine(
                make_url(normalize_database_url(self.base.database_url or "")), isolation_level="AUTOCOMMIT"
            )
            with engine.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))
            engine.dispose()
        shutil.rmtree(self.home, ignore_errors=True)

    def _delete_bucket(self) -> None:
        import boto3

        access, secret = self.s3_keys()
        s3 = boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            region_name=self.base.s3_region,
            aws_access_key_id=access,
            aws_secret_access_key=secret,
        )
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket):
            keys = [item["Key"] for item in page.get("Contents", []) if "Key" in item]
            if keys:
                s3.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key in keys]})
        s3.delete_bucket(Bucket=self.bucket)


def _resolve_prctl() -> Any:
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _resolve_prctl()


def _die_with_parent() -> None:
    """In a child, before exec: killed when the bench's process ends, however it ends (Linux)."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _queue_counts(broker_url: str, prefix: str) -> dict[str, int]:
    """Messages in the run's queues: ready, delayed (due later, or not moved yet) and dead-lettered."""
    from fieldcheck.jobs import JOBS

    counts = {"ready": 0, "delayed": 0, "dead": 0}
    suffixes = {"ready": "", "delayed": ".DQ", "dead": ".XQ"}
    queues = {spec.queue for spec in JOBS.values()}
    if broker_url.startswith("amqp"):
        import pika

        connection = pika.BlockingConnection(pika.URLParameters(broker_url))
        channel = connection.channel()
        for queue in queues:
            for kind, suffix in suffixes.items():
                with contextlib.suppress(Exception):
                    counts[kind] += channel.queue_declare(
                        f"{prefix}.{queue}{suffix}", passive=True
                    ).method.message_count
                channel = connection.channel() if channel.is_closed else channel
        connection.close()
    elif broker_url.startswith("redis"):
        import redis

        client = redis.Redis.from_url(broker_url)
        for queue in queues:
            for kind, suffix in suffixes.items():
                name = f"{prefix}:{prefix}.{queue}{suffix}"
                found = client.type(name)
                found = found.decode() if isinstance(found, bytes) else found
                size = {"list": client.llen, "zset": client.zcard, "hash": client.hlen}.get(found)
                if size is not None:
                    counts[kind] += int(size(name) or 0)
    return counts


def _delayed_jobs(broker_url: str, prefix: str) -> list[tuple[str, float]] | None:
    """(job id, due at in epoch seconds) of every message in the run's delayed queues, read without
    taking them (RabbitMQ: fetched unacknowledged, given back when the channel closes); None on
    Redis, where only their number is known."""
    import json

    from fieldcheck.jobs import JOBS

    if not broker_url.startswith("amqp"):
        return None
    import pika

    found: list[tuple[str, float]] = []
    connection = pika.BlockingConnection(pika.URLParameters(broker_url))
    try:
        for queue in {spec.queue for spec in JOBS.values()}:
            channel = connection.channel()
            try:
                while True:
                    method, _, body = channel.basic_get(f"{prefix}.{queue}.DQ", auto_ack=False)
                    if method is None:
                        break
                    message = json.loads(body)
                    eta = float(message.get("options", {}).get("eta") or 0) / 1000
                    found.append((str(message.get("kwargs", {}).get("job_id", "")), eta))
            except pika.exceptions.ChannelClosedByBroker:
                pass  # no such queue
            finally:
                if channel.is_open:
                    channel.close()  # unacknowledged: back in the queue
    finally:
        connection.close()
    return found


def _queued_messages(broker_url: str, prefix: str) -> int:
    """Messages ready to run in the run's queues (what the workers still have to do now)."""
    return _queue_counts(broker_url, prefix)["ready"]


def _through(url: str, address: str) -> str:
    """`url` with its host and port replaced by a proxy's."""
    parts = urlsplit(url)
    credentials = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit((parts.scheme, credentials + address, parts.path, parts.query, parts.fragment))


def _target(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


# Processes ---------------------------------------------------------------------------------
@dataclass
class Process:
    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    ready_url: str | None = None
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        handle = self.log.open("ab")
        self.popen = subprocess.Popen(  # noqa: S603 - our interpreter, our command
            [sys.executable, "-m", "fieldcheck.cli", *self.args],
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # one C call, resolved before the fork: safe beside threads
        )
        handle.close()
        self.starts += 1

    def wait_ready(self, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.popen is not None and self.popen.poll() is not None:
                raise click.ClickException(f"{self.name} exited with {self.popen.returncode}: see {self.log}")
            if self.ready_url is None:
                return
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.ready_url, timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise click.ClickException(f"{self.name} was not ready in {timeout_s:.0f} s: see {self.log}")

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.kill()


# Measurements -------------------------------------------------------------------------------
@dataclass
class Record:
    endpoint: str
    at: float  # seconds since the run started
    seconds: float
    status: int  # 0: the network failed


@dataclass
class Journal:
    """What every phone saw, and when the faults happened (thread-safe appends)."""

    started: float = field(default_factory=time.monotonic)
    records: list[Record] = field(default_factory=list)
    windows: list[tuple[str, float, float]] = field(default_factory=list)
    acknowledged: dict[str, float] = field(default_factory=dict)  # assignment id -> 202 at
    decided: dict[str, float] = field(default_factory=dict)  # assignment id -> checks' decision seen at
    photos: int = 0
    repeats_differing: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # phones, the reviewer, the exports
    lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        return time.monotonic() - self.started

    def add(self, record: Record) -> None:
        with self.lock:
            self.records.append(record)

    def in_fault(self, record: Record) -> bool:
        """Whether a request overlapped a fault's window (one started just before a kill fails in it)."""
        end = record.at + record.seconds
        return any(record.at <= stop and end >= start for _, start, stop in self.windows)


class CpuMeter:
    """CPU time used by each role of the deployment over the run, sampled from /proc (Linux), and
    by the whole machine: where the cores went."""

    TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __init__(self, processes: dict[str, Process], moto: subprocess.Popen[bytes] | None) -> None:
        self.processes = processes
        self.moto = moto
        self.used: dict[str, float] = defaultdict(float)
        self.last: dict[int, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="cpu-meter", daemon=True)
        self.started_pids: set[int] = set()
        self.machine_start = self.wall_start = 0.0

    @staticmethod
    def _process_seconds(pid: int) -> float | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / CpuMeter.TICK

    @staticmethod
    def _machine_seconds() -> float:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = values[3] + values[4]
        return (sum(values[:8]) - idle) / CpuMeter.TICK

    def _pids(self) -> dict[int, str]:
        pids = {os.getpid(): "the bench (phones, reviewer, proxies)"}
        for name, process in self.processes.items():
            if process.popen is not None:
                pids[process.popen.pid] = (
                    "workers"
                    if name.startswith("worker")
                    else "API"
                    if name.startswith("api")
                    else "scheduler"
                )
        if self.moto is not None:
            pids[self.moto.pid] = "S3 (moto)"
        return pids

    def _sample(self) -> None:
        for pid, role in self._pids().items():
            now = self._process_seconds(pid)
            if now is None:
                continue
            before = self.last.get(pid)
            self.last[pid] = now
            if before is not None and now >= before:
                self.used[role] += now - before
            elif before is None and pid not in self.started_pids:
                self.used[role] += now  # started during the run: all of it counts

    def start(self) -> None:
        self.started_pids = set(self._pids())
        self.machine_start = self._machine_seconds()
        self.wall_start = time.monotonic()
        self._sample()
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.wait(1.0):
            self._sample()

    def finish(self) -> dict[str, float]:
        self.stop.set()
        self.thread.join(timeout=5)
        self._sample()
        machine = self._machine_seconds() - self.machine_start
        shares = dict(self.used)
        shares["the rest (PostgreSQL, the broker, the system)"] = max(0.0, machine - sum(self.used.values()))
        shares["_machine"] = machine
        shares["_available"] = (os.cpu_count() or 1) * (time.monotonic() - self.wall_start)
        return shares


class Stop(Exception):
    """The run is over: the phone stops where it is."""


class Phone:
    """One worker's phone, looping over visits like the worker app."""

    def __init__(
        self,
        index: int,
        base_url: str,
        token: str,
        options: Options,
        journal: Journal,
        maker: PhotoMaker,
        stop: threading.Event,
        budget: Callable[[], bool],
    ) -> None:
        self.index = index
        self.http = httpx.Client(base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {token}"})
        self.options = options
        self.journal = journal
        self.maker = maker
        self.stop = stop
        self.budget = budget
        self.rng = np.random.default_rng(options.seed * 1000 + index)
        self.position = (
            CENTRE[0] + float(self.rng.uniform(-AREA_DEG, AREA_DEG)),
            CENTRE[1] + float(self.rng.uniform(-AREA_DEG, AREA_DEG)),
        )
        self.done_tasks: set[str] = set()

    def call(
        self, endpoint: str | None, method: str, url: str, *, ok: tuple[int, ...], **kwargs: Any
    ) -> httpx.Response:
        """One request, retried as a phone does when the network or the server fails."""
        for attempt in range(RETRIES):
            if self.stop.is_set() and endpoint in ("nearby", "reserve"):
                raise Stop
            started = time.monotonic()
            try:
                answer = self.http.request(method, url, **kwargs)
                status = answer.status_code
            except httpx.HTTPError:
                answer, status = None, 0
            if endpoint is not None:
                self.journal.add(
                    Record(endpoint, started - self.journal.started, time.monotonic() - started, status)
                )
            if answer is not None and (status in ok or status < 500):
                return answer
            time.sleep(min(8.0, 0.25 * 2**attempt))
        raise click.ClickException(f"phone {self.index}: {method} {url} kept failing")

    def run(self) -> None:
        try:
            while not self.stop.is_set() and self.budget():
                self.visit()
        except Stop:
            pass
        except Exception as exc:  # a phone that gave up is an invariant failing, not a quiet thread
            with self.journal.lock:
                self.journal.failures.append(f"phone {self.index}: {type(exc).__name__}: {exc}"[:300])
        finally:
            self.http.close()

    def visit(self) -> None:
        lat, lon = self.position
        answer = self.call(
            "nearby",
            "GET",
            "/api/v1/tasks/nearby",
            ok=(200,),
            params={"lat": lat, "lon": lon, "radius_m": 20_000, "limit": 50},
        )
        items = [i for i in answer.json().get("items", []) if i["task_id"] not in self.done_tasks]
        if not items:
            self.stop.wait(1.0)
            return
        task = items[0]
        self.done_tasks.add(task["task_id"])
        reserved = self.call("reserve", "POST", f"/api/v1/tasks/{task['task_id']}/reservations", ok=(201,))
        if reserved.status_code != 201:
            return  # taken meanwhile, or a limit: the next one
        assignment = reserved.json()["id"]
        base = f"/api/v1/assignments/{assignment}/photos"
        photo_ids = []
        for _ in range(self.options.photos_per_visit):
            data = self.maker.photo(
                blurred=bool(self.rng.random() < SHARE_BLURRED),
                duplicate=bool(self.rng.random() < SHARE_DUPLICATE),
            )
            slot = self.call(
                "photo slot",
                "POST",
                base,
                ok=(201,),
                json={"content_type": "image/jpeg", "size_bytes": len(data)},
            )
            if slot.status_code != 201:
                raise click.ClickException(f"photo slot refused: {slot.status_code} {slot.text[:200]}")
            body = slot.json()
            self._upload(body["upload"], data)
            if self.rng.random() < SHARE_UPLOAD_TWICE:
                self._upload(body["upload"], data, again=True)
            said = self.call("uploaded", "POST", f"{base}/{body['photo_id']}/uploaded", ok=(202,))
            if said.status_code != 202:
                raise click.ClickException(f"uploaded refused: {said.status_code} {said.text[:200]}")
            photo_ids.append(body["photo_id"])
            with self.journal.lock:
                self.journal.photos += 1
        far = self.rng.random() < SHARE_FAR
        store_lat, store_lon = float(task["store"]["lat"]), float(task["store"]["lon"])
        at = (store_lat + (FAR_AWAY_DEG if far else 0.0001), store_lon)
        self.position = (store_lat, store_lon)
        key = secrets.token_hex(12)
        payload = {
            "photo_ids": photo_ids,
            "location": {"lat": at[0], "lon": at[1], "accuracy_m": 10.0, "is_mock": False},
            "captured_at": _now_iso(),
            "device_id": f"fleet-phone-{self.index}",
        }
        headers = {"Idempotency-Key": key}
        submitted = self.call(
            "submit",
            "POST",
            f"/api/v1/assignments/{assignment}/submit",
            ok=(202,),
            json=payload,
            headers=headers,
        )
        if submitted.status_code != 202:
            raise click.ClickException(f"submit refused: {submitted.status_code} {submitted.text[:300]}")
        acknowledged = time.monotonic()
        with self.journal.lock:
            self.journal.acknowledged[assignment] = acknowledged
        if self.rng.random() < SHARE_SUBMIT_TWICE:  # the answer was lost: sent again, same key
            again = self.call(
                "submit",
                "POST",
                f"/api/v1/assignments/{assignment}/submit",
                ok=(202,),
                json=payload,
                headers=headers,
            )
            if again.status_code != 202 or again.json().get("id") != submitted.json().get("id"):
                with self.journal.lock:
                    self.journal.repeats_differing.append(f"{assignment}: {again.status_code}")
        deadline = acknowledged + DECISION_TIMEOUT_S
        while time.monotonic() < deadline:
            status = self.call("status", "GET", f"/api/v1/assignments/{assignment}", ok=(200,))
            if status.status_code == 200 and status.json()["status"] in ("approved", "rejected", "in_review"):
                with self.journal.lock:
                    self.journal.decided[assignment] = time.monotonic()
                return
            time.sleep(POLL_S)

    def _upload(self, instruction: dict[str, Any], data: bytes, *, again: bool = False) -> None:
        headers = {k: v for k, v in instruction["headers"].items() if v}
        for attempt in range(RETRIES):
            try:
                answer = httpx.request(
                    instruction["method"], instruction["url"], content=data, headers=headers, timeout=30
                )
            except httpx.HTTPError:
                time.sleep(0.25 * 2**attempt)
                continue
            if again or answer.status_code in (200, 201, 204):
                return  # sent again: the store refuses a second write (412), which changes nothing
            if answer.status_code == 412:
                return  # the first attempt got through; its answer was lost
            time.sleep(0.25 * 2**attempt)
        raise click.ClickException("an upload kept failing")


def _now_iso() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()


def _reviewer(base_url: str, token: str, stop: threading.Event, journal: Journal) -> None:
    """Decides flagged work as it comes (approve), until told to stop."""
    http = httpx.Client(base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {token}"})
    try:
        while not stop.is_set():
            try:
                queue = http.get("/api/v1/review/queue", params={"reason": "flagged", "limit": 20})
                items = queue.json()["items"] if queue.status_code == 200 else []
                for item in items:
                    claim = http.post(f"/api/v1/review/{item['assignment_id']}/claim")
                    if claim.status_code != 200:
                        continue
                    decided = http.post(
                        f"/api/v1/review/{item['assignment_id']}/decision",
                        json={"decision": "approve", "reasons": [], "comment": "fleet reviewer"},
                    )
                    journal.add(Record("review", journal.now(), 0.0, decided.status_code))
            except httpx.HTTPError:
                journal.add(Record("review", journal.now(), 0.0, 0))
            except (ValueError, KeyError) as exc:
                with journal.lock:
                    journal.failures.append(f"reviewer: {type(exc).__name__}: {exc}"[:300])
            stop.wait(0.5)
    finally:
        http.close()


# The run -------------------------------------------------------------------------------------
def _check_bound_limit(maker: PhotoMaker, echo: Callable[[str], None]) -> float:
    """Photos a minute this machine can check: cores x 60 s / one photo's whole pipeline."""
    from fieldcheck.settings import Settings as Plain
    from fieldcheck.storage import LocalStorage
    from fieldcheck.tools.bench.photos import _median_cpu_ms, pipeline_work

    with tempfile.TemporaryDirectory(prefix="fieldcheck-fleet-limit-") as home:
        storage = LocalStorage(Plain(home=Path(home)))
        samples = []
        for index in range(5):
            key = f"limit/{index}.jpg"
            storage.put(key, maker.photo(), content_type="image/jpeg")
            samples.append(_median_cpu_ms(lambda key=key: pipeline_work(storage, key, [])))  # type: ignore[misc]
    per_photo_ms = statistics.median(samples)
    cores = os.cpu_count() or 1
    limit = cores * 60_000 / per_photo_ms
    echo(
        f"per-photo pipeline: {per_photo_ms:.1f} ms of CPU (median of 5 of the fleet's photos); "
        f"check-bound limit: {cores} cores x 60 s / {per_photo_ms:.1f} ms = {limit:.0f} photos/min"
    )
    return limit


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run(options: Options, echo: Callable[[str], None] = click.echo) -> dict[str, Any]:
    base = Settings()
    if base.is_sqlite:
        raise click.ClickException(
            "the fleet runs on PostgreSQL: set FIELDCHECK_DATABASE_URL (its server; the bench makes a scratch database)"
        )
    if base.broker_kind not in ("rabbitmq", "redis"):
        raise click.ClickException(
            "the fleet needs a broker: set FIELDCHECK_BROKER_URL (amqp://... or redis://...)"
        )
    # A SIGTERM (a test's timeout, Ctrl-C's cousin) unwinds like an error: the clean-up runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    maker = PhotoMaker(options.seed)
    limit_photos = _check_bound_limit(maker, echo)
    from fieldcheck.tools.bench.proxy import Proxies

    with Scratch(base) as scratch:
        proxies = Proxies()
        try:
            return _run(options, base, scratch, proxies, maker, limit_photos, echo)
        finally:
            proxies.close()


def _run(
    options: Options,
    base: Settings,
    scratch: Scratch,
    proxies: Any,
    maker: PhotoMaker,
    limit_photos: float,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    from fieldcheck import migrations
    from fieldcheck.ratelimit import BUCKETS

    database = proxies.add("postgres", [_target(scratch.database_url.replace("+psycopg", ""), 5432)])
    broker = proxies.add(
        "broker", [_target(base.broker_url, 5672 if base.broker_kind == "rabbitmq" else 6379)]
    )
    api_ports = [free_port(), free_port()]
    api = proxies.add("api", [("127.0.0.1", port) for port in api_ports])
    api_url = f"http://{api.address}"
    access, secret = scratch.s3_keys()
    token_secret = secrets.token_urlsafe(32)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDCHECK_")}
    env.update(
        {
            "FIELDCHECK_HOME": str(scratch.home),
            "FIELDCHECK_DATABASE_URL": _through(
                scratch.database_url.replace("+psycopg", ""), database.address
            ),
            "FIELDCHECK_BROKER_URL": _through(base.broker_url, broker.address),
            "FIELDCHECK_QUEUE_PREFIX": scratch.queue_prefix,
            "FIELDCHECK_S3_BUCKET": scratch.bucket,
            "FIELDCHECK_S3_ENDPOINT_URL": scratch.s3_endpoint,
            "FIELDCHECK_S3_REGION": base.s3_region,
            "FIELDCHECK_S3_ACCESS_KEY_ID": access,
            "FIELDCHECK_S3_SECRET_ACCESS_KEY": secret,
            "FIELDCHECK_S3_CREATE_BUCKET": "true",
            "FIELDCHECK_TOKEN_SECRET": token_secret,
            "FIELDCHECK_PUBLIC_BASE_URL": api_url,
            "FIELDCHECK_INPROCESS_WORKER": "false",
            "FIELDCHECK_RUN_SCHEDULER": "false",
            "FIELDCHECK_AUTO_MIGRATE": "false",
            "FIELDCHECK_LOG_LEVEL": "WARNING",
            # One address for all the phones: the request limits would stop them; measured elsewhere.
            "FIELDCHECK_RATE_LIMIT_ADDRESS_FACTOR": "0",
            **{f"FIELDCHECK_{name.upper()}": "0" for name, _ in BUCKETS.values()},
        }
    )
    direct = Settings(
        home=scratch.home,
        database_url=scratch.database_url.replace("+psycopg", ""),
        broker_url=base.broker_url,
        queue_prefix=scratch.queue_prefix,
        s3_bucket=scratch.bucket,
        s3_endpoint_url=scratch.s3_endpoint,
        s3_region=base.s3_region,
        s3_access_key_id=access,
        s3_secret_access_key=secret,
        s3_create_bucket=True,
        token_secret=token_secret,
        public_base_url=api_url,
        inprocess_worker=False,
    )
    migrations.upgrade(direct)
    logs = scratch.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    processes: dict[str, Process] = {}
    for index, port in enumerate(api_ports, 1):
        processes[f"api-{index}"] = Process(
            f"api-{index}",
            ["serve", "--port", str(port), "--no-migrate"],
            env,
            logs / f"api-{index}.log",
            ready_url=f"http://127.0.0.1:{port}/health/ready",
        )
    for index in (1, 2):
        port = free_port()
        processes[f"worker-{index}"] = Process(
            f"worker-{index}",
            ["worker", "--metrics-port", str(port)],
            env,
            logs / f"worker-{index}.log",
            ready_url=f"http://127.0.0.1:{port}/metrics",
        )
    processes["scheduler"] = Process("scheduler", ["scheduler"], env, logs / "scheduler.log")
    failed = True
    try:
        for process in processes.values():
            process.start()
        for process in processes.values():
            process.wait_ready()
        figures = _drive(options, direct, scratch, processes, proxies, api_url, maker, limit_photos, echo)
        failed = bool(figures["invariants_failed"])
        return figures
    finally:
        for process in processes.values():
            process.stop()
        if failed:  # the processes' logs, for whoever looks into it (the scratch folder goes)
            kept = Path("bench-results") / f"fleet-{scratch.token}"
            with contextlib.suppress(OSError):
                shutil.copytree(logs, kept, dirs_exist_ok=True)
                echo(f"the processes' logs are kept in {kept}")


@dataclass
class Seeded:
    campaign_id: str
    client: str
    reviewer: str
    workers: list[str]


def _seed(direct: Settings, api_url: str, phones: int) -> Seeded:
    from fieldcheck.auth.models import Role
    from fieldcheck.runtime import Runtime
    from fieldcheck.tools.services import account_token

    runtime = Runtime(direct)
    try:

        def account(role: Role, organization_id: uuid.UUID | None = None) -> str:
            return account_token(runtime, role, label="fleet", organization_id=organization_id)

        admin = account(Role.admin)
        http = httpx.Client(base_url=api_url, timeout=60)

        def ok(answer: httpx.Response, status: int) -> dict[str, Any]:
            if answer.status_code != status:
                raise click.ClickException(
                    f"{answer.request.method} {answer.request.url}: {answer.status_code} {answer.text[:300]}"
                )
            body: dict[str, Any] = answer.json()
            return body

        org = ok(
            http.post("/api/v1/admin/organizations", json={"name": "Fleet Retail"}, headers=_bearer(admin)),
            201,
        )
        client = account(Role.client, uuid.UUID(org["id"]))
        rng = np.random.default_rng(7)
        stores = [
            ok(
                http.post(
                    "/api/v1/stores",
                    json={
                        "name": f"Fleet store {i + 1}",
                        "lat": CENTRE[0] + float(rng.uniform(-AREA_DEG, AREA_DEG)),
                        "lon": CENTRE[1] + float(rng.uniform(-AREA_DEG, AREA_DEG)),
                    },
                    headers=_bearer(client),
                ),
                201,
            )["id"]
            for i in range(STORES)
        ]
        slots = phones + 2
        ok(
            http.post(
                "/api/v1/organizations/me/deposits",
                json={
                    "amount_cents": min(direct.max_deposit_cents, REWARD_CENTS * STORES * slots * 2),
                    "currency": "EUR",
                },
                headers={**_bearer(client), "Idempotency-Key": secrets.token_hex(8)},
            ),
            201,
        )
        campaign = ok(
            http.post(
                "/api/v1/campaigns",
                json={
                    "title": "Yoghurt shelf, fleet",
                    "instructions": "Photograph the whole yoghurt shelf.",
                    "reward_cents": REWARD_CENTS,
                    "currency": "EUR",
                    "estimated_minutes": 15,
                    "slots_per_store": slots,
                    "store_ids": stores,
                    "reservation_minutes": 60,
                    "photo_rules": {"min_photos": 1, "max_photos": 6, "min_short_side_px": 1000},
                },
                headers=_bearer(client),
            ),
            201,
        )
        ok(http.post(f"/api/v1/campaigns/{campaign['id']}/activate", headers=_bearer(client)), 200)
        http.close()
        return Seeded(
            campaign_id=campaign["id"],
            client=client,
            reviewer=account(Role.reviewer),
            workers=[account(Role.worker) for _ in range(phones)],
        )
    finally:
        runtime.close()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _export(api_url: str, client: str, campaign_id: str, timeout_s: float = 240) -> tuple[str, int | None]:
    """Ask for a CSV export, wait for it, download it: (status, data rows)."""
    http = httpx.Client(base_url=api_url, timeout=30, headers=_bearer(client))
    try:
        started = time.monotonic()
        asked = None
        while asked is None and time.monotonic() - started < timeout_s:
            with contextlib.suppress(httpx.HTTPError):
                answer = http.post(f"/api/v1/campaigns/{campaign_id}/exports", json={"format": "csv"})
                if answer.status_code == 202:
                    asked = answer.json()
                    break
            time.sleep(1)
        if asked is None:
            return "not accepted", None
        body = asked
        while body["status"] not in ("done", "failed") and time.monotonic() - started < timeout_s:
            time.sleep(1)
            with contextlib.suppress(httpx.HTTPError, ValueError):
                answer = http.get(f"/api/v1/exports/{asked['id']}")
                if answer.status_code == 200:
                    body = answer.json()
        if body["status"] != "done" or not body.get("download_url"):
            return str(body["status"]), None
        data = httpx.get(body["download_url"], timeout=60).content.decode("utf-8-sig")
        rows = list(csv.reader(io.StringIO(data)))
        return "done", max(0, len(rows) - 1)
    finally:
        http.close()


def _drive(
    options: Options,
    direct: Settings,
    scratch: Scratch,
    processes: dict[str, Process],
    proxies: Any,
    api_url: str,
    maker: PhotoMaker,
    limit_photos: float,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    seeded = _seed(direct, api_url, options.phones)
    planned = options.visits or int(options.phones * options.duration_s / 4)  # a visit takes >= 4 s
    maker.prepare(min(2000, planned * options.photos_per_visit))
    journal = Journal()
    stop, reviewer_stop = threading.Event(), threading.Event()
    started_visits = [0]
    count_lock = threading.Lock()

    def budget() -> bool:
        if options.visits is None:
            return True
        with count_lock:
            if started_visits[0] >= options.visits:
                return False
            started_visits[0] += 1
            return True

    phones = [
        Phone(i, api_url, token, options, journal, maker, stop, budget)
        for i, token in enumerate(seeded.workers)
    ]
    threads = [threading.Thread(target=p.run, name=f"phone-{p.index}", daemon=True) for p in phones]
    reviewer = threading.Thread(
        target=_reviewer,
        args=(api_url, seeded.reviewer, reviewer_stop, journal),
        name="reviewer",
        daemon=True,
    )
    exported: dict[str, Any] = {}

    def export_during_run() -> None:
        exported["status"], exported["rows"] = _export(api_url, seeded.client, seeded.campaign_id)

    duration = options.duration_s
    faults = _Faults(processes, proxies, journal)
    schedule = [
        (0.20, "kill -9 worker-1", faults.kill_worker),
        (0.35, "kill -9 api-1", faults.kill_api),
        (0.50, "client export", None),
        (0.60, "PostgreSQL connections cut", faults.cut_database),
        (0.78, "broker connections cut", faults.cut_broker),
    ]
    echo(
        f"fleet: {options.phones} phones, {options.photos_per_visit} photos a visit, "
        + (f"{options.visits} visits" if options.visits else f"{duration:.0f} s")
        + f"; 2 API processes, 2 workers, 1 scheduler on PostgreSQL ({scratch.database}), "
        f"{direct.broker_kind} ({scratch.queue_prefix}.*), S3 {'(moto)' if scratch.moto else ''} ({scratch.bucket})"
    )
    meter = CpuMeter(processes, scratch.moto)
    journal.started = time.monotonic()
    meter.start()
    reviewer.start()
    for thread in threads:
        thread.start()
    exporter = threading.Thread(target=export_during_run, name="export", daemon=True)
    try:
        for share, what, action in schedule:
            if options.visits is not None:
                break  # a run of a number of visits has no fixed time line: no faults
            _sleep_until(journal, share * duration, stop)
            echo(f"  {journal.now():6.1f} s  {what}")
            if action is None:
                exporter.start()
            else:
                action()
        if options.visits is None:
            _sleep_until(journal, duration, stop)
            stop.set()
        else:
            exporter.start()
    except BaseException:
        stop.set()  # a fault that could not be made: everyone stops before the processes go
        reviewer_stop.set()
        raise
    for thread in threads:
        thread.join(timeout=DECISION_TIMEOUT_S + 60)
    elapsed = journal.now()
    cpu = meter.finish()
    jobs = _job_times(processes)
    drained = _drain(direct, scratch, seeded.campaign_id)
    exporter.join(timeout=300)
    reviewer_stop.set()
    reviewer.join(timeout=30)
    final_status, final_rows = _export(api_url, seeded.client, seeded.campaign_id)
    # With the workers stopped, what they had taken from the queues without finishing is back in
    # them: counted now with the delayed and the dead-lettered messages, nothing may be left.
    for name, process in processes.items():
        if name.startswith("worker"):
            process.stop()
    drained.update(_queue_counts(direct.broker_url, scratch.queue_prefix), scheduled=_scheduled_later(direct))
    drained["waiting"] = _delayed_not_due_nor_done(direct, scratch)
    return _report(
        options,
        direct,
        seeded,
        journal,
        elapsed,
        limit_photos,
        exported,
        (final_status, final_rows),
        drained,
        cpu,
        jobs,
        echo,
    )


def _job_times(processes: dict[str, Process]) -> dict[str, tuple[int, float]]:
    """Job runs and their total seconds by actor, from the workers' metrics (a killed worker's
    are lost with it)."""
    from prometheus_client.parser import text_string_to_metric_families

    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for name, process in processes.items():
        if not name.startswith("worker") or process.ready_url is None:
            continue
        try:
            text = httpx.get(process.ready_url, timeout=5).text
        except httpx.HTTPError:
            continue
        for family in text_string_to_metric_families(text):
            if family.name == "fieldcheck_photo_measurements":
                for sample in family.samples:
                    if sample.name.endswith("_total"):
                        totals["measured at " + sample.labels.get("when", "?")][0] += sample.value
                continue
            if family.name != "fieldcheck_job_duration_seconds":
                continue
            for sample in family.samples:
                actor = sample.labels.get("actor", "?")
                if sample.name.endswith("_count"):
                    totals[actor][0] += sample.value
                elif sample.name.endswith("_sum"):
                    totals[actor][1] += sample.value
    return {actor: (int(count), seconds) for actor, (count, seconds) in totals.items()}


def _delayed_not_due_nor_done(direct: Settings, scratch: Scratch) -> int | None:
    """Delayed messages that are neither a job scheduled for later (an outbox row's delay not over
    yet) nor a copy of a job already done (at-least-once: a message sent again after a cut): work
    left undone, waiting for a retry. None on Redis (not inspected)."""
    from sqlalchemy import text

    from fieldcheck.db import Database

    delayed = _delayed_jobs(direct.broker_url, scratch.queue_prefix)
    if delayed is None:
        return None
    database = Database(direct)
    try:
        with database.transaction(read_only=True) as session:
            done = {str(r[0]) for r in session.execute(text("SELECT job_id FROM job_executions")).all()}
            later = {
                str(r[0])
                for r in session.execute(
                    text(
                        "SELECT id FROM outbox_messages WHERE delay_ms > 0 "
                        "AND created_at + delay_ms * interval '1 millisecond' > now()"
                    )
                ).all()
            }
    finally:
        database.dispose()
    return sum(1 for job_id, _ in delayed if job_id not in done and job_id not in later)


def _scheduled_later(direct: Settings) -> int:
    """Jobs sent with a delay that is not over yet (an upload's object removed once its signed
    URL has expired, a reservation's end): they wait in the delayed queues, as they should."""
    from sqlalchemy import text

    from fieldcheck.db import Database

    database = Database(direct)
    try:
        with database.transaction(read_only=True) as session:
            return int(
                session.execute(
                    text(
                        "SELECT count(*) FROM outbox_messages WHERE sent_at IS NOT NULL AND delay_ms > 0 "
                        "AND created_at + delay_ms * interval '1 millisecond' > now()"
                    )
                ).scalar_one()
            )
    finally:
        database.dispose()


def _sleep_until(journal: Journal, at: float, stop: threading.Event) -> None:
    remaining = at - journal.now()
    if remaining > 0:
        stop.wait(remaining)


@dataclass
class _Faults:
    processes: dict[str, Process]
    proxies: Any
    journal: Journal

    def _window(self, name: str, action: Callable[[], None]) -> None:
        start = self.journal.now()
        action()
        with self.journal.lock:
            self.journal.windows.append((name, start, self.journal.now() + FAULT_GRACE_S))

    def _restart(self, name: str, what: str) -> None:
        def act() -> None:
            process = self.processes[name]
            process.kill()
            time.sleep(1)
            process.start()
            process.wait_ready()

        self._window(what, act)

    def kill_worker(self) -> None:
        self._restart("worker-1", "worker killed")

    def kill_api(self) -> None:
        self._restart("api-1", "api killed")

    def _cut(self, name: str) -> None:
        proxy = next(p for p in self.proxies.proxies if p.name == name)

        def act() -> None:
            proxy.cut(CUT_S)
            time.sleep(CUT_S)

        self._window(f"{name} cut", act)

    def cut_database(self) -> None:
        self._cut("postgres")

    def cut_broker(self) -> None:
        self._cut("broker")


def _drain(direct: Settings, scratch: Scratch, campaign_id: str) -> dict[str, Any]:
    """Wait until everything submitted is decided for good and no job is left; what was left."""
    from sqlalchemy import text

    from fieldcheck.db import Database

    database = Database(direct)
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    undecided = outbox = queued = -1
    try:
        while time.monotonic() < deadline:
            with database.transaction(read_only=True) as session:
                undecided = int(
                    session.execute(
                        text(
                            "SELECT count(*) FROM assignments WHERE campaign_id = :campaign "
                            "AND submitted_at IS NOT NULL AND status NOT IN ('approved', 'rejected')"
                        ),
                        {"campaign": campaign_id},
                    ).scalar_one()
                )
                outbox = int(
                    session.execute(
                        text("SELECT count(*) FROM outbox_messages WHERE sent_at IS NULL")
                    ).scalar_one()
                )
            queued = _queued_messages(direct.broker_url, scratch.queue_prefix)
            # Retries waiting in the delayed queues are work left too.
            if (
                undecided == 0
                and outbox == 0
                and queued == 0
                and not _delayed_not_due_nor_done(direct, scratch)
            ):
                break
            time.sleep(1)
    finally:
        database.dispose()
    return {"undecided": undecided, "outbox": outbox, "queued": queued}


def _invariants(
    direct: Settings,
    seeded: Seeded,
    journal: Journal,
    exported: dict[str, Any],
    final: tuple[str, int | None],
    drained: dict[str, Any],
) -> list[tuple[str, bool, str]]:
    from sqlalchemy import text

    from fieldcheck.campaigns.models import Campaign
    from fieldcheck.db import Database
    from fieldcheck.money import verify_money
    from fieldcheck.results import views

    database = Database(direct)
    results: list[tuple[str, bool, str]] = []
    ids = list(journal.acknowledged)
    try:
        with database.transaction(read_only=True) as session:
            rows = session.execute(
                text(
                    "SELECT a.id, a.status, "
                    "(SELECT count(*) FROM assignment_events e WHERE e.assignment_id = a.id AND e.from_status = 'submitted'), "
                    "(SELECT count(*) FROM assignment_events e WHERE e.assignment_id = a.id AND e.from_status = 'in_review' "
                    "  AND e.to_status IN ('approved', 'rejected')), "
                    "(SELECT count(*) FROM assignment_events e WHERE e.assignment_id = a.id AND e.to_status = 'in_review'), "
                    "(SELECT count(*) FROM ledger_transactions t WHERE t.reference = 'assignment:' || a.id::text "
                    "  AND t.movement = 'release') "
                    "FROM assignments a WHERE a.campaign_id = :campaign AND a.submitted_at IS NOT NULL"
                ),
                {"campaign": seeded.campaign_id},
            ).all()
            by_id = {str(r[0]): r for r in rows}
            missing = [a for a in ids if a not in by_id]
            twice = [a for a, r in by_id.items() if r[2] != 1]
            for assignment in twice[:3]:  # what happened to them, for whoever looks into it
                history = session.execute(
                    text(
                        "SELECT from_status, to_status, actor_type, reason, at FROM assignment_events "
                        "WHERE assignment_id = :id ORDER BY at"
                    ),
                    {"id": assignment},
                ).all()
                print(
                    f"  assignment {assignment}: "
                    + "; ".join(
                        f"{r[0]}->{r[1]} by {r[2]} at {r[4]:%H:%M:%S.%f} ({r[3][:60]})" for r in history
                    )
                )
            reviewed = [a for a, r in by_id.items() if r[4] and r[3] != 1]
            final_states = [a for a, r in by_id.items() if r[1] not in ("approved", "rejected")]
            results.append(
                (
                    "every acknowledged submission decided exactly once",
                    not missing and not twice and not reviewed and not final_states,
                    f"{len(ids)} acknowledged, {len(by_id)} submitted in the database; lost {len(missing)}, "
                    f"decided by the checks other than once {len(twice)}, by the reviewer other than once "
                    f"{len(reviewed)}, not decided for good {len(final_states)}",
                )
            )
            approved = [r for r in by_id.values() if r[1] == "approved"]
            unpaid = [r for r in approved if r[5] != 1]
            paid_wrongly = [r for r in by_id.values() if r[1] != "approved" and r[5]]
            results.append(
                (
                    "every approved visit paid exactly once",
                    not unpaid and not paid_wrongly,
                    f"{len(approved)} approved; paid other than once {len(unpaid)}, paid without approval {len(paid_wrongly)}",
                )
            )
            report = verify_money(session)
            results.append(
                ("ledger verify", report.ok, "clean" if report.ok else "; ".join(report.problems[:3]))
            )
            campaign = session.get(Campaign, uuid.UUID(seeded.campaign_id))
            delivered = views.count(session, campaign) if campaign is not None else -1
    finally:
        database.dispose()
    results.append(
        (
            "no job stuck",
            drained["outbox"] == 0
            and drained["ready"] == 0
            and drained["dead"] == 0
            and (
                drained["waiting"] == 0
                if drained["waiting"] is not None
                else drained["delayed"] <= drained["scheduled"]
            ),
            f"outbox unsent {drained['outbox']}; once the workers stopped: ready {drained['ready']}, "
            f"dead-lettered {drained['dead']}, delayed {drained['delayed']} for {drained['scheduled']} "
            "jobs due later"
            + (
                f" ({drained['waiting']} neither due later nor copies of jobs done)"
                if drained["waiting"] is not None
                else ""
            ),
        )
    )
    results.append(
        (
            "the export is complete",
            exported.get("status") == "done" and final[0] == "done" and final[1] == delivered,
            f"during the run: {exported.get('status')} ({exported.get('rows')} rows); after it: {final[0]}, "
            f"{final[1]} rows for {delivered} delivered visits",
        )
    )
    server_errors = [r for r in journal.records if r.status >= 500 and not journal.in_fault(r)]
    network = [r for r in journal.records if r.status == 0 and not journal.in_fault(r)]
    excused = [r for r in journal.records if (r.status >= 500 or r.status == 0) and journal.in_fault(r)]
    results.append(
        (
            "no 5xx outside the fault windows",
            not server_errors and not network,
            f"{len(server_errors)} 5xx and {len(network)} network errors outside; {len(excused)} inside the "
            f"{len(journal.windows)} fault windows"
            + "".join(
                f"; {r.endpoint} {r.status or 'network error'} at {r.at:.1f} s"
                for r in (server_errors + network)[:5]
            ),
        )
    )
    results.append(
        (
            "no phone, reviewer or request gave up",
            not journal.failures,
            f"{len(journal.failures)} failures" + (f": {journal.failures[:3]}" if journal.failures else ""),
        )
    )
    results.append(
        (
            "a submission sent again got the same answer",
            not journal.repeats_differing,
            f"{len(journal.repeats_differing)} differing"
            + (f": {journal.repeats_differing[:3]}" if journal.repeats_differing else ""),
        )
    )
    return results


def _report(
    options: Options,
    direct: Settings,
    seeded: Seeded,
    journal: Journal,
    elapsed: float,
    limit_photos: float,
    exported: dict[str, Any],
    final: tuple[str, int | None],
    drained: dict[str, Any],
    cpu: dict[str, float],
    jobs: dict[str, tuple[int, float]],
    echo: Callable[[str], None],
) -> dict[str, Any]:
    minutes = elapsed / 60
    visits = len(journal.decided)
    per_minute = visits / minutes if minutes else 0.0
    photos_per_minute = journal.photos / minutes if minutes else 0.0
    limit_visits = limit_photos / options.photos_per_visit
    share = per_minute / limit_visits if limit_visits else 0.0
    echo(
        f"visits decided: {visits} in {elapsed:.0f} s = {per_minute:.0f} visits/min; photos checked "
        f"{photos_per_minute:.0f}/min; check-bound limit {limit_visits:.0f} visits/min "
        f"({limit_photos:.0f} photos/min): {share:.0%} of it"
    )
    figures: dict[str, Any] = {"visits": visits, "visits_per_min": per_minute, "share_of_limit": share}
    by_endpoint: dict[str, list[float]] = defaultdict(list)
    for record in journal.records:
        if record.status and record.status < 500 and not journal.in_fault(record):
            by_endpoint[record.endpoint].append(record.seconds * 1000)
    for endpoint in ENDPOINTS:
        values = by_endpoint.get(endpoint, [])
        if not values:
            continue
        p50, p95, p99 = (_percentile(values, s) for s in (0.5, 0.95, 0.99))
        figures[endpoint] = {"p50": p50, "p95": p95, "p99": p99, "count": len(values)}
        echo(
            f"  {endpoint:11} {len(values):6} requests  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  p99 {p99:6.1f} ms"
        )
    waits = [
        journal.decided[a] - journal.acknowledged[a] for a in journal.decided if a in journal.acknowledged
    ]
    if waits:
        echo(
            f"  submit to decision: p50 {statistics.median(waits) * 1000:.0f} ms, p99 "
            f"{_percentile(waits, 0.99) * 1000:.0f} ms ({len(waits)} visits)"
        )
        figures["decision_p50_ms"] = statistics.median(waits) * 1000
    available, machine = cpu.pop("_available"), cpu.pop("_machine")
    echo(
        f"  CPU over the load: {machine:.0f} s used of {available:.0f} s ({machine / available:.0%}): "
        + ", ".join(
            f"{role} {seconds:.0f} s ({seconds / machine:.0%})"
            for role, seconds in sorted(cpu.items(), key=lambda i: -i[1])
        )
    )
    workers = cpu.get("workers", 0.0)
    if workers and visits:
        per_visit = workers / visits
        cores = os.cpu_count() or 1
        echo(
            f"  the workers' CPU: {per_visit * 1000:.0f} ms a visit ({per_visit * 1000 / options.photos_per_visit:.0f} ms "
            f"a photo, jobs' overheads included): with the whole machine, {cores * 60 / per_visit:.0f} visits/min"
        )
    measured = {actor: count for actor, (count, _) in jobs.items() if actor.startswith("measured at ")}
    if measured:
        echo("  photos " + ", ".join(f"{what} {count}" for what, count in sorted(measured.items())))
    busiest = sorted(((a, j) for a, j in jobs.items() if a not in measured), key=lambda item: -item[1][1])[:5]
    if busiest:
        echo(
            "  jobs by time spent (the workers still running): "
            + ", ".join(
                f"{actor} {count} x {seconds / max(count, 1) * 1000:.0f} ms"
                for actor, (count, seconds) in busiest
            )
        )
    figures["cpu"] = {**cpu, "machine": machine, "available": available}
    lag = _outbox_lag(direct)
    if lag is not None:
        echo(f"  outbox lag (committed to sent) p99: {lag * 1000:.0f} ms")
    for name, start, end in journal.windows:
        echo(f"  fault window: {name}, {start:.1f} s to {end:.1f} s")
    results = _invariants(direct, seeded, journal, exported, final, drained)
    for name, ok, detail in results:
        echo(f"  invariant {'OK    ' if ok else 'FAILED'} {name}: {detail}")
    failed = [name for name, ok, _ in results if not ok]
    figures["invariants_failed"] = failed
    verdict = "invariants OK" if not failed else f"invariants FAILED: {', '.join(failed)}"
    echo(
        f"fleet: {visits} visits, {per_minute:.0f} visits/min, {share:.0%} of the check-bound limit, {verdict}"
    )
    return figures


def _outbox_lag(direct: Settings) -> float | None:
    from sqlalchemy import text

    from fieldcheck.db import Database

    database = Database(direct)
    try:
        with database.transaction(read_only=True) as session:
            lags = [
                float(r[0])
                for r in session.execute(
                    text(
                        "SELECT EXTRACT(EPOCH FROM sent_at - created_at) FROM outbox_messages WHERE sent_at IS NOT NULL"
                    )
                ).all()
            ]
    finally:
        database.dispose()
    return _percentile(lags, 0.99) if lags else None


@click.command("fleet")
@click.option("--phones", default=8, show_default=True, help="Simulated phones, each a worker.")
@click.option(
    "--duration", "duration_s", default=120.0, show_default=True, help="Seconds of load (with faults)."
)
@click.option("--visits", default=None, type=int, help="Stop after this many visits instead (no faults).")
@click.option("--photos-per-visit", default=2, show_default=True)
@click.option("--seed", default=1, show_default=True)
def fleet_command(
    phones: int, duration_s: float, visits: int | None, photos_per_visit: int, seed: int
) -> None:
    """A multi-process deployment driven by simulated phones, with crashes and network cuts; then
    every invariant is checked (exit 1 when one fails). Services from FIELDCHECK_DATABASE_URL,
    FIELDCHECK_BROKER_URL and FIELDCHECK_S3_* (moto's server when no S3 is given)."""
    figures = run(Options(phones, duration_s, visits, photos_per_visit, seed))
    if figures["invariants_failed"]:
        sys.exit(1)
