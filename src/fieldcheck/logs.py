"""Logging: one line per record, with the request id of the HTTP request it belongs to.

`FIELDCHECK_LOG_FORMAT=json` writes each record as one JSON object: time, level, logger, message,
request_id, and where they apply route (the template, never the path with its values), method,
status, duration_ms and role for requests, job_id and actor for jobs, exception. Nothing that names
a person reaches them: requests are logged by route template (a nearby search's position is in its
query string, which is not logged), and e-mail addresses and bearer tokens that a message might
carry are masked.
"""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import UTC, datetime
from typing import Any

from fieldcheck import metrics
from fieldcheck.errors import RequestIdLogFilter, job_var

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
ACCESS = logging.getLogger("fieldcheck.access")
REQUEST_FIELDS = ("route", "method", "status", "duration_ms", "role")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_BEARER = re.compile(r"(?i)\bbearer\s+\S+")
_JWT = re.compile(r"\beyJ[\w-]+\.[\w-]+\.[\w-]+")


def scrub(message: str) -> str:
    """A message without the e-mail addresses and tokens it may quote."""
    return _EMAIL.sub("<e-mail>", _JWT.sub("<token>", _BEARER.sub("Bearer <token>", message)))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
            "request_id": getattr(record, "request_id", "-"),
        }
        for name in REQUEST_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        job = job_var.get()
        if job is not None:
            entry["job_id"], entry["actor"] = job
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        job = job_var.get()
        return f"{line} (job {job[1]} {job[0]})" if job is not None else line


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    root = logging.getLogger()
    formatter = JsonFormatter() if fmt == "json" else _TextFormatter(FORMAT)
    ours = [h for h in root.handlers if getattr(h, "_fieldcheck", False)]
    if ours:
        for handler in ours:
            handler.setFormatter(formatter)
        root.setLevel(level)
        return
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdLogFilter())
    handler._fieldcheck = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("pika").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def access_log_middleware(app: Any) -> Any:
    """One record per HTTP request once it is answered: route template, method, status, duration
    and the caller's role (never who, never the path's values or the query string)."""

    async def middleware(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status: list[int] = []

        async def watching(message: Any) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
            await send(message)

        try:
            await app(scope, receive, watching)
        finally:
            route = scope.get("path_template") or "(no route)"
            user = scope.get("user")
            role = getattr(getattr(user, "role", None), "value", None)  # of the bearer token
            code = status[0] if status else 500
            elapsed = time.perf_counter() - started
            duration = round(elapsed * 1000, 1)
            metrics.HTTP_REQUESTS.labels(route, scope["method"], str(code)).inc()
            metrics.HTTP_DURATION.labels(route, scope["method"]).observe(elapsed)
            ACCESS.info(
                "%s %s %d %.1f ms",
                scope["method"],
                route,
                code,
                duration,
                extra={
                    "route": route,
                    "method": scope["method"],
                    "status": code,
                    "duration_ms": duration,
                    "role": role,
                },
            )

    return middleware
