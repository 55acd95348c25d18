"""OpenTelemetry traces: an optional extra (`fieldcheck[otel]`), set by the standard OTEL_* variables.

Traces are on when the variables ask for them and the extra is installed:
- OTEL_TRACES_EXPORTER (`otlp`, `console`, or both comma-separated; `none` turns them off), or an
  OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; OTLP over
  HTTP, so the port is usually 4318). OTEL_SDK_DISABLED=true turns them off.
- OTEL_SERVICE_NAME names the process (by default fieldcheck-api, fieldcheck-worker or
  fieldcheck-scheduler). The SDK itself reads OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and
  OTEL_TRACES_SAMPLER_ARG, OTEL_EXPORTER_OTLP_HEADERS and the others, and OTEL_PROPAGATORS
  (for requests; what a job carries is the W3C trace context only, never a caller's baggage).

What is traced:
- Each HTTP request is a span named by its route template (`POST /api/v1/assignments/{assignment_id}/submit`).
  Its URL attributes keep the template only: a query string (a nearby search's position, a signed
  link's signature) never leaves the process.
- `jobs.enqueue` keeps the caller's trace context with the outbox row, the relay sends it in the
  message, and the job's span continues that trace in whichever worker runs it: a submission's
  check job appears under the request that submitted it, even when the broker was down for a
  while in between.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger("fieldcheck.tracing")

# The outbox payload's key for the trace context (a W3C traceparent and tracestate).
CARRIER_KEY = "_trace"

_state: dict[str, Any] = {"tracer": None}


def requested() -> bool:
    """Whether the OTEL_* variables ask for traces."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters:
        return exporters != "none"
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def active() -> bool:
    return _state["tracer"] is not None


def configure(service: str, *, exporter: SpanExporter | None = None) -> bool:
    """Start tracing for this process when asked (or with `exporter`, for tests); once per process."""
    if active():
        return True
    if exporter is None and not requested():
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError:
        log.warning(
            "OTEL_* variables ask for traces but OpenTelemetry is not installed: "
            "install fieldcheck with its extra, pip install 'fieldcheck[otel]'"
        )
        return False
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service}
    provider = TracerProvider(resource=Resource.create(attributes))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        for made in _exporters():
            provider.add_span_processor(BatchSpanProcessor(made))
    trace.set_tracer_provider(provider)
    _state["provider"] = provider
    _state["tracer"] = provider.get_tracer("fieldcheck")
    log.info("OpenTelemetry traces on for %s", service)
    return True


def _exporters() -> list[SpanExporter]:
    names = [
        n.strip() for n in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").lower().split(",") if n.strip()
    ]
    made: list[SpanExporter] = []
    for name in names:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            made.append(OTLPSpanExporter())  # endpoint, headers, timeout: from the OTEL_* variables
        elif name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            made.append(ConsoleSpanExporter())
        elif name != "none":
            log.warning("OTEL_TRACES_EXPORTER %r is not one fieldcheck knows (otlp, console)", name)
    return made


def flush() -> None:
    """Send the spans still buffered now (an API process that stops serving)."""
    provider = _state.get("provider")
    if provider is not None:
        provider.force_flush()


def shutdown() -> None:
    """Send the spans still buffered (a process that stops)."""
    provider = _state.pop("provider", None)
    _state["tracer"] = None
    if provider is not None:
        provider.shutdown()


# Jobs --------------------------------------------------------------------------------------
def current_carrier() -> dict[str, str] | None:
    """The current trace context as message headers (None when not tracing or outside a span)."""
    if not active():
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    # The W3C trace context only (traceparent, tracestate): never a caller's baggage.
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier or None


@contextmanager
def job_span(
    name: str,
    job_id: str,
    queue: str,
    carrier: dict[str, str] | None,
    *,
    expected: tuple[type[BaseException], ...] = (),
) -> Iterator[None]:
    """A job run's span, continuing the trace that enqueued the job. `expected` exceptions end it
    without an error (a repeated delivery skipped)."""
    tracer = _state["tracer"]
    if tracer is None:
        yield
        return
    from opentelemetry.trace import SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    with tracer.start_as_current_span(
        f"job {name}",
        context=TraceContextTextMapPropagator().extract(carrier or {}),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "dramatiq",
            "messaging.operation": "process",
            "messaging.destination.name": queue,
            "messaging.message.id": job_id,
            "fieldcheck.job": name,
        },
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield
        except expected:
            span.set_attribute("fieldcheck.job.skipped", True)
            raise
        except BaseException as exc:
            # The kind of error only: a message can quote SQL parameters (a position, an e-mail).
            span.add_event("exception", {"exception.type": type(exc).__name__})
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise


# Requests ----------------------------------------------------------------------------------
_URL_ATTRIBUTES = ("http.url", "url.full")
_TARGET_ATTRIBUTES = ("http.target", "url.path")
# The query string, and the caller's address (personal data; the logs do not keep it either).
_DROPPED_ATTRIBUTES = (
    "url.query",
    "net.peer.ip",
    "net.peer.port",
    "client.address",
    "client.port",
    "http.client_ip",
)


def _span_details(scope: Any) -> tuple[str, dict[str, str]]:
    # Before routing (Litestar runs this middleware around its router): the route comes later.
    method = str(scope.get("method", "")).strip()
    return (f"{method} (no route)" if method else "(no route)"), {"http.route": "(no route)"}


def _keep_template_only(span: Any, scope: Any) -> None:
    """The instrumentation records the URL with its query string: keep the route template instead."""
    attributes = getattr(span, "attributes", None) or {}
    route = scope.get("path_template") or "(no route)"
    for key in _URL_ATTRIBUTES:
        if key in attributes:
            span.set_attribute(key, f"{scope.get('scheme', 'http')}://{route}")
    for key in _TARGET_ATTRIBUTES:
        if key in attributes:
            span.set_attribute(key, route)
    for key in _DROPPED_ATTRIBUTES:
        if key in attributes:
            span.set_attribute(key, "")


def _route_naming(app: Any) -> Any:
    """After routing: the request's span takes the route template for its name and URL."""

    async def middleware(scope: Any, receive: Any, send: Any) -> None:
        route = scope.get("path_template")
        if route and scope.get("type") == "http":
            from opentelemetry import trace

            span = trace.get_current_span()
            if span.is_recording():
                span.update_name(f"{scope.get('method', '')} {route}")
                span.set_attribute("http.route", route)
                _keep_template_only(span, scope)
        await app(scope, receive, send)

    return middleware


def request_middleware() -> list[Any]:
    """The ASGI middleware that makes a span of each request, when tracing is on."""
    if not active():
        return []
    from litestar.enums import ScopeType
    from litestar.plugins.opentelemetry import OpenTelemetryConfig

    config = OpenTelemetryConfig(
        tracer=_state["tracer"],
        scope_span_details_extractor=_span_details,
        server_request_hook_handler=_keep_template_only,
        exclude_spans=["receive", "send"],
        scopes={ScopeType.HTTP},
    )
    return [config.middleware, _route_naming]
