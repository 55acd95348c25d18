"""Liveness and readiness: the process answers; its database, broker and storage answer too."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from litestar import Controller, Response
from litestar.di import NamedDependency
from pydantic import BaseModel, Field
from sqlalchemy import text

from fieldcheck.discovery import spatial
from fieldcheck.runtime import Runtime
from fieldcheck.web import get

CHECK_TIMEOUT_S = 5.0
_pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="fieldcheck-health")


class ComponentStatus(BaseModel):
    status: str
    latency_ms: float
    detail: str | None = None


class Readiness(BaseModel):
    status: str
    components: dict[str, ComponentStatus]
    discovery: str | None = Field(
        default=None,
        description="The spatial search discovery uses: postgis (GiST index, KNN ordering), "
        "nearest-first (SQLite's band index in growing boxes) or portable (the band index over the "
        "whole search box); null while the database does not answer.",
    )


def _database(runtime: NamedDependency[Runtime]) -> None:
    with runtime.db.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _timed(check: Callable[[], None]) -> ComponentStatus:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:
        return ComponentStatus(
            status="down",
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
            detail=f"{type(exc).__name__}: {exc}"[:300],
        )
    return ComponentStatus(status="up", latency_ms=round((time.perf_counter() - started) * 1000, 1))


class HealthController(Controller):
    path = "/health"
    tags = ["health"]

    @get("/live", summary="The process is up")
    async def live(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready", summary="Database, broker and storage answer")
    def ready(self, runtime: NamedDependency[Runtime]) -> Response[Readiness]:
        checks: dict[str, Callable[[], None]] = {
            "database": lambda: _database(runtime),
            "broker": runtime.jobs.check,
            "storage": runtime.storage.check,
        }
        futures = {name: _pool.submit(_timed, check) for name, check in checks.items()}
        components: dict[str, ComponentStatus] = {}
        for name, future in futures.items():
            try:
                components[name] = future.result(timeout=CHECK_TIMEOUT_S)
            except FutureTimeout:
                components[name] = ComponentStatus(
                    status="down", latency_ms=CHECK_TIMEOUT_S * 1000, detail="no answer in time"
                )
        ok = all(c.status == "up" for c in components.values())
        search = None
        if components["database"].status == "up":
            with contextlib.suppress(Exception):  # the database answered a moment ago; if not now, null
                search = spatial.search_kind(runtime.db.engine, runtime.settings.nearby_search)
        body = Readiness(status="ok" if ok else "unavailable", components=components, discovery=search)
        return Response(content=body, status_code=200 if ok else 503)
