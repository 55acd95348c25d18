"""create_app(settings) -> Litestar: the one composition root of the HTTP service."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from litestar import Litestar, Request
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig
from sqlmodel import Session

from fieldcheck import __version__, contract, tracing
from fieldcheck.apidocs import SwaggerUIPage
from fieldcheck.assignments.controllers import (
    AssignmentController,
    MyAssignmentController,
    ReservationController,
)
from fieldcheck.auth.controllers import (
    AdminOrganizationController,
    AdminUserController,
    AuthController,
    MeController,
)
from fieldcheck.auth.security import (
    AccountGate,
    Passwords,
    Principal,
    Tokens,
    bearer_auth_middleware,
    current_principal,
)
from fieldcheck.campaigns.controllers import CampaignController
from fieldcheck.console.controllers import CONSOLE_TEMPLATES, console_router
from fieldcheck.discovery.controllers import TaskController
from fieldcheck.errors import EXCEPTION_HANDLERS, request_id_middleware
from fieldcheck.exports.controllers import CampaignExportController, ExportController
from fieldcheck.health import HealthController
from fieldcheck.i18n import language_middleware
from fieldcheck.ledger.controllers import OrganizationMoneyController, WorkerMoneyController
from fieldcheck.logs import access_log_middleware, configure_logging
from fieldcheck.observability import MetricsController
from fieldcheck.privacy.controllers import DataExportController
from fieldcheck.privacy.service import close_account
from fieldcheck.proxies import trusted_proxies_middleware
from fieldcheck.ratelimit import RateLimits
from fieldcheck.references.controllers import ReferencePhotoController
from fieldcheck.results.controllers import CampaignResultsController
from fieldcheck.reviews.controllers import (
    AdminAssignmentController,
    AppealController,
    OversightController,
    ReviewController,
)
from fieldcheck.runtime import Runtime
from fieldcheck.settings import Settings
from fieldcheck.storage import LocalStorage, LocalStorageController, ObjectStorage
from fieldcheck.stores.controllers import StoreController
from fieldcheck.transparency.controllers import TransparencyController
from fieldcheck.web import (
    FINISHED_KEY,
    ApiRequest,
    FieldStrictPydantic,
    allow_every_method,
    discard_unit_of_work,
    finish_unit_of_work,
    refuse_nul_in_url_middleware,
)
from fieldcheck.webhooks.controllers import WebhookController
from fieldcheck.workerapp.controllers import WorkerAppController

log = logging.getLogger("fieldcheck.app")

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> Litestar:
    settings = settings or (runtime.settings if runtime else Settings())
    configure_logging(settings.log_level, settings.log_format)
    tracing.configure("fieldcheck-api")
    owns_runtime = runtime is None
    rt = runtime or Runtime(settings)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncGenerator[None, None]:
        await anyio.to_thread.run_sync(
            lambda: rt.start(
                worker=settings.runs_inprocess_worker, relay=True, scheduler=settings.run_scheduler
            )
        )
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(tracing.flush)
            if owns_runtime:
                await anyio.to_thread.run_sync(rt.close)
            else:
                await anyio.to_thread.run_sync(rt.jobs.stop_loops)
                await anyio.to_thread.run_sync(rt.jobs.stop_worker)

    async def provide_db_session(request: Request[Any, Any, Any]) -> AsyncGenerator[Session, None]:
        """One session per request, committed once after the handler succeeded (the edge owns it).

        Sync handlers finish it in their own thread (see web.py); what is left runs here.
        """
        session = rt.db.session(read_only=request.method in READ_METHODS)
        try:
            yield session
        except BaseException:
            if not session.info.get(FINISHED_KEY):
                await anyio.to_thread.run_sync(discard_unit_of_work, session)
            raise
        if not session.info.get(FINISHED_KEY):
            await anyio.to_thread.run_sync(finish_unit_of_work, session)

    def provide_principal(request: Request[Any, Any, Any]) -> Principal:
        return current_principal(request)

    dependencies: dict[str, Provide] = {
        "db_session": Provide(provide_db_session),
        "principal": Provide(provide_principal, sync_to_thread=False),
        "runtime": Provide(lambda: rt, sync_to_thread=False, use_cache=True),
        "settings": Provide(lambda: settings, sync_to_thread=False, use_cache=True),
        "storage": Provide(lambda: rt.storage, sync_to_thread=False, use_cache=True),
        "passwords": Provide(lambda: rt.passwords, sync_to_thread=False, use_cache=True),
        "tokens": Provide(lambda: rt.tokens, sync_to_thread=False, use_cache=True),
        "account_gate": Provide(lambda: rt.account_gate, sync_to_thread=False, use_cache=True),
        "rate_limits": Provide(lambda: rt.rate_limits, sync_to_thread=False, use_cache=True),
        "throttle": Provide(lambda: rt.throttle, sync_to_thread=False, use_cache=True),
        "payments": Provide(lambda: rt.payment_provider, sync_to_thread=False, use_cache=True),
        # DELETE /api/v1/me: closing an account reaches reservations and the ledger, above auth.
        "account_closer": Provide(lambda: close_account, sync_to_thread=False, use_cache=True),
    }
    handlers: list[Any] = [
        HealthController,
        MetricsController,
        AuthController,
        MeController,
        AdminOrganizationController,
        AdminUserController,
        StoreController,
        CampaignController,
        ReferencePhotoController,
        TaskController,
        ReservationController,
        AssignmentController,
        MyAssignmentController,
        AppealController,
        OrganizationMoneyController,
        WorkerMoneyController,
        ReviewController,
        AdminAssignmentController,
        OversightController,
        CampaignResultsController,
        CampaignExportController,
        ExportController,
        DataExportController,
        WebhookController,
    ]
    if isinstance(rt.storage, LocalStorage):
        handlers.append(LocalStorageController)
    handlers.append(console_router())
    handlers.append(WorkerAppController)
    handlers.append(TransparencyController)

    app = Litestar(
        route_handlers=handlers,
        # fieldcheck configures logging itself (text or JSON lines, one handler): Litestar adds none.
        logging_config=None,
        dependencies=dependencies,
        exception_handlers=EXCEPTION_HANDLERS,
        request_class=ApiRequest,
        plugins=[FieldStrictPydantic()],
        middleware=[
            *tracing.request_middleware(),  # first: the span covers the whole request
            request_id_middleware,
            access_log_middleware,
            language_middleware,
            refuse_nul_in_url_middleware,
            trusted_proxies_middleware(settings.trusted_proxy_networks),
            bearer_auth_middleware(rt.tokens, rt.account_gate),
        ],
        lifespan=[lifespan],
        openapi_config=_openapi_config(),
        cors_config=CORSConfig(
            allow_origins=settings.cors_origins,
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Idempotency-Key",
                "X-Request-ID",
                "Accept-Language",
            ],
        )
        if settings.cors_origins
        else None,
        signature_namespace={
            "Session": Session,
            "Runtime": Runtime,
            "Settings": Settings,
            "ObjectStorage": ObjectStorage,
            "LocalStorage": LocalStorage,
            "Passwords": Passwords,
            "Tokens": Tokens,
            "AccountGate": AccountGate,
            "RateLimits": RateLimits,
            "Principal": Principal,
        },
        template_config=TemplateConfig(directory=CONSOLE_TEMPLATES, engine=JinjaTemplateEngine),
        debug=False,
    )
    app.state.runtime = rt
    # Built now, on one thread: the nearby handler reads it from worker threads, and a
    # cached_property takes no lock (two early requests could each build one, with its own counts).
    _ = rt.throttle
    allow_every_method(app)
    contract.complete(app, settings)
    return app


def _openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="fieldcheck API",
        version=__version__,
        description="Field micro-task work: tasks, photo checks, human review, ledger and audits.",
        path="/schema",
        render_plugins=[SwaggerUIPage()],  # served from here: no CDN, closed networks included
        components=Components(
            security_schemes={
                "BearerToken": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    bearer_format="JWT",
                    description="POST /api/v1/auth/token gives the access token.",
                )
            }
        ),
    )
