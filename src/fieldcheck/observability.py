"""What operators' monitoring reads: /metrics on each API process (and --metrics-port on workers and
schedulers), the counters of fieldcheck.metrics plus the figures of the shared state, read from the
database when scraped: the outbox backlog and its oldest age, reviews waiting, the oldest and those
past their deadline, money in escrow per currency, and the last scheduled ledger verification.

Closed unless the caller is on loopback or sends `Authorization: Bearer <FIELDCHECK_METRICS_TOKEN>`.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import SkipValidation
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlmodel import col, select

from fieldcheck.assignments.models import Assignment, AssignmentStatus
from fieldcheck.db import Database, utcnow
from fieldcheck.errors import Forbidden, Unauthorized
from fieldcheck.i18n import _, text
from fieldcheck.jobs import OutboxMessage
from fieldcheck.ledger import service as ledger
from fieldcheck.runtime import Runtime
from fieldcheck.settings import Settings

log = logging.getLogger("fieldcheck.metrics")
WAITING_FOR_A_PERSON = (AssignmentStatus.in_review.value, AssignmentStatus.appealed.value)


class StateCollector(Collector):
    """Figures of the shared state, one short read-only transaction per scrape."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterable[Metric]:
        now = utcnow()
        with self.db.transaction(read_only=True) as session:
            backlog, oldest = session.exec(
                select(func.count(), func.min(OutboxMessage.created_at)).where(
                    col(OutboxMessage.sent_at).is_(None)
                )
            ).one()
            waiting, since, late = session.exec(
                select(
                    func.count(),
                    func.min(func.coalesce(Assignment.appealed_at, Assignment.submitted_at)),
                    func.count().filter(col(Assignment.review_due_at) < now),
                ).where(col(Assignment.status).in_(WAITING_FOR_A_PERSON))
            ).one()
            escrow = ledger.escrow_totals(session)
            verified = ledger.last_verification(session)
        yield _gauge("fieldcheck_outbox_backlog", "Jobs written but not yet handed to the broker", backlog)
        yield _gauge(
            "fieldcheck_outbox_oldest_age_seconds",
            "Age of the oldest job not yet handed to the broker (0: none)",
            _age(now, oldest),
        )
        yield _gauge(
            "fieldcheck_reviews_waiting", "Work waiting for a person (in review or appealed)", waiting
        )
        yield _gauge(
            "fieldcheck_reviews_oldest_age_seconds",
            "How long the oldest work waiting for a person has waited (0: none)",
            _age(now, since),
        )
        yield _gauge(
            "fieldcheck_reviews_past_deadline", "Work waiting for a person past its review deadline", late
        )
        money = GaugeMetricFamily(
            "fieldcheck_escrow_cents", "Money held in escrow for campaigns, per currency", labels=["currency"]
        )
        for currency, cents in sorted(escrow.items()):
            money.add_metric([currency], cents)
        yield money
        if verified is not None:  # nothing until the first scheduled verification has run
            yield _gauge(
                "fieldcheck_ledger_verify_ok", "1 when the last ledger verification held, else 0", verified.ok
            )
            yield _gauge(
                "fieldcheck_ledger_verify_problems",
                "Problems the last ledger verification found",
                verified.problem_count,
            )
            yield _gauge(
                "fieldcheck_ledger_verify_last_run_timestamp_seconds",
                "When the last ledger verification ran (Unix time)",
                verified.at.timestamp(),
            )


def _gauge(name: str, documentation: str, value: Any) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value or 0))


def _age(now: datetime, since: datetime | None) -> float:
    # min() and coalesce() keep their column's type: a timezone-aware UTC time on every engine.
    return 0.0 if since is None else max(0.0, (now - since).total_seconds())


def exposition(db: Database) -> bytes:
    """The process's counters and the shared state's figures, in Prometheus' text format."""
    state = CollectorRegistry(auto_describe=False)
    state.register(StateCollector(db))
    return generate_latest(REGISTRY) + generate_latest(state)


def allowed(address: str | None, authorization: str | None, settings: Settings) -> bool | None:
    """True to answer; False for a wrong token (401); None when closed to this caller (403)."""
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    if authorization and token:
        given = authorization.removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), token.encode())
    try:
        if address and ipaddress.ip_address(address).is_loopback:
            return True
    except ValueError:
        pass
    return False if token and authorization else None


class MetricsController(Controller):
    path = "/metrics"
    include_in_schema = False

    @get("/", summary="Prometheus metrics", cache=False, sync_to_thread=True)
    def metrics(
        self, request: Request[Any, Any, Any], runtime: NamedDependency[SkipValidation[Runtime]]
    ) -> Response[bytes]:
        address = request.client.host if request.client else None
        verdict = allowed(address, request.headers.get("authorization"), runtime.settings)
        if verdict is None:
            raise Forbidden(
                text(_("metrics are served on loopback, or with the metrics token")), code="metrics_closed"
            )
        if verdict is False:
            raise Unauthorized(text(_("wrong metrics token")), code="wrong_metrics_token")
        return Response(exposition(runtime.db), media_type=CONTENT_TYPE_LATEST)


def serve_metrics(db: Database, settings: Settings, port: int, host: str = "0.0.0.0") -> WSGIServer:  # noqa: S104
    """/metrics for a worker or scheduler process (the same rule: loopback, or the token)."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        verdict = allowed(environ.get("REMOTE_ADDR"), environ.get("HTTP_AUTHORIZATION"), settings)
        if environ.get("PATH_INFO", "/") not in ("/", "/metrics"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return iter([b"not found\n"])
        if not verdict:
            start_response(
                "401 Unauthorized" if verdict is False else "403 Forbidden", [("Content-Type", "text/plain")]
            )
            return iter([b"metrics are served on loopback, or with the metrics token\n"])
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
        return iter([exposition(db)])

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            log.debug(format, *args)

    server = make_server(host, port, app, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, name="fieldcheck-metrics", daemon=True).start()
    return server
