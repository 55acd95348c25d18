"""OpenTelemetry traces (the `otel` extra): a span per request named by its route template, and the
check job of a submission continuing the submitting request's trace through the outbox and the
broker (the embedded one, and RabbitMQ on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar.testing import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from fieldcheck import tracing
from fieldcheck.app import create_app
from fieldcheck.settings import Settings
from tests.api.test_submissions import shelf
from tests.support.backends import TEST_BASE_URL
from tests.support.submissions import STORE_LAT, STORE_LON, Field, checked, submit, upload


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    assert tracing.configure("fieldcheck-test", exporter=exporter)
    try:
        yield exporter
    finally:
        tracing.shutdown()


def test_a_check_job_continues_the_trace_of_the_submission(
    settings: Settings, spans: InMemorySpanExporter
) -> None:
    with TestClient(create_app(settings), base_url=TEST_BASE_URL) as client:
        field = Field(client)
        worker = field.worker()
        assignment_id = field.reserve(worker)
        photo_ids = [upload(client, worker, assignment_id, shelf(seed)) for seed in (31, 32)]
        answer = submit(client, worker, assignment_id, photo_ids, lat=STORE_LAT + 0.0003, lon=STORE_LON)
        assert answer.status_code == 202, answer.text
        assert checked(client, worker, assignment_id)["status"] == "approved"
        nearby = client.get(
            "/api/v1/tasks/nearby", params={"lat": STORE_LAT, "lon": STORE_LON}, headers=worker.headers
        )
        assert nearby.status_code == 200, nearby.text

    finished = spans.get_finished_spans()
    submits = [s for s in finished if s.kind == SpanKind.SERVER and s.name.endswith("/submit")]
    assert [s.name for s in submits] == ["POST /api/v1/assignments/{assignment_id}/submit"]
    request = submits[0]
    assert request.attributes is not None
    assert request.attributes["http.route"] == "/api/v1/assignments/{assignment_id}/submit"
    assert request.resource.attributes["service.name"] == "fieldcheck-test"
    jobs = [s for s in finished if s.kind == SpanKind.CONSUMER]
    in_trace = [s for s in jobs if s.context.trace_id == request.context.trace_id]
    assert in_trace, [(s.name, s.context.trace_id) for s in jobs]
    check_job = in_trace[0]
    assert check_job.name.startswith("job ")
    assert check_job.parent is not None
    assert check_job.parent.trace_id == request.context.trace_id
    assert check_job.attributes is not None
    assert check_job.attributes["messaging.message.id"]
    assert check_job.status.is_ok
    # No position, signature or caller address leaves the process in a span.
    for span in finished:
        for key, value in (span.attributes or {}).items():
            text = str(value)
            assert str(STORE_LAT)[:6] not in text, (span.name, key, text)
            assert "signature" not in text, (span.name, key, text)
            assert key not in ("net.peer.ip", "client.address") or value == "", (span.name, key, value)
    searches = [s for s in finished if s.name == "GET /api/v1/tasks/nearby"]
    assert len(searches) == 1


def test_traces_are_off_unless_the_variables_ask(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    assert not tracing.requested()
    assert not tracing.configure("fieldcheck-api")
    assert tracing.current_carrier() is None
    assert tracing.request_middleware() == []
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert tracing.requested()
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not tracing.requested()
    monkeypatch.delenv("OTEL_SDK_DISABLED")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert not tracing.requested()
