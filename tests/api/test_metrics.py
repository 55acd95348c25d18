"""Prometheus metrics for operators: closed unless on loopback or with the token; requests, jobs and
the shared state's figures (outbox, reviews waiting, escrow) as a scrape sees them."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from fieldcheck import money
from fieldcheck.auth.models import Role
from fieldcheck.jobs import enqueue
from fieldcheck.ledger import service as ledger
from fieldcheck.ledger.verify import Report
from fieldcheck.observability import allowed, serve_metrics
from fieldcheck.settings import Settings
from tests.api.test_review import claim, decide, flagged
from tests.conftest import BACKENDS
from tests.support.backends import BackendFactory, free_port
from tests.support.factories import make_account, problem, runtime_of
from tests.support.submissions import Field

TOKEN = "scrape-me-0123456789"


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, backends: BackendFactory) -> Settings:
    return backends.make(request.param, metrics_token=TOKEN)


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def scrape(client: Any) -> list[tuple[str, dict[str, str], float]]:
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return samples(answer.text)


def value(found: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    return sum(v for n, tags, v in found if n == name and all(tags.get(k) == w for k, w in labels.items()))


def test_metrics_are_closed_to_others(app_client: Any) -> None:
    problem(app_client.get("/metrics"), 403, "metrics_closed")  # the test client is not on loopback
    problem(app_client.get("/metrics", headers={"Authorization": "Bearer nope"}), 401, "wrong_metrics_token")
    assert "/metrics" not in app_client.get("/schema/openapi.json").json()["paths"]


def test_a_scrape_shows_requests_jobs_and_the_shared_state(app_client: Any) -> None:
    before = scrape(app_client)
    field = Field(app_client)  # a campaign activated: its slots' money is in escrow
    flagged(app_client, field)  # an imprecise position: waits for a person
    _worker, decided = flagged(app_client, field)
    reviewer = make_account(runtime_of(app_client), Role.reviewer)
    assert claim(app_client, reviewer, decided).status_code == 200
    assert decide(app_client, reviewer, decided, "approve").status_code == 200
    runtime_of(app_client).jobs.join()
    found = scrape(app_client)
    approved = {"outcome": "approved", "decided_by": "reviewer"}
    assert (
        value(found, "fieldcheck_decisions_total", **approved)
        == value(before, "fieldcheck_decisions_total", **approved) + 1
    )
    assert value(found, "fieldcheck_check_outcomes_total") > value(before, "fieldcheck_check_outcomes_total")
    # Submitted without instant checks: each photo measured at submission.
    measured = {"when": "submission"}
    assert value(found, "fieldcheck_photo_measurements_total", **measured) >= (
        value(before, "fieldcheck_photo_measurements_total", **measured) + 2
    )
    reserved = value(
        found, "fieldcheck_http_requests_total", route="/api/v1/tasks/{task_id}/reservations", status="201"
    )
    assert reserved >= 1 + value(
        before, "fieldcheck_http_requests_total", route="/api/v1/tasks/{task_id}/reservations", status="201"
    )
    timed = value(
        found, "fieldcheck_http_request_duration_seconds_count", route="/api/v1/tasks/{task_id}/reservations"
    )
    assert timed >= reserved
    assert value(found, "fieldcheck_jobs_finished_total", result="succeeded") > value(
        before, "fieldcheck_jobs_finished_total", result="succeeded"
    )
    assert value(found, "fieldcheck_jobs_enqueued_total") > value(before, "fieldcheck_jobs_enqueued_total")
    assert value(found, "fieldcheck_job_queue_lag_seconds_count") > value(
        before, "fieldcheck_job_queue_lag_seconds_count"
    )
    assert value(found, "fieldcheck_job_duration_seconds_count") > 0
    assert value(found, "fieldcheck_reviews_waiting") >= 1
    assert value(found, "fieldcheck_reviews_oldest_age_seconds") > 0
    assert value(found, "fieldcheck_escrow_cents", currency="EUR") > 0
    assert any(n == "fieldcheck_outbox_backlog" for n, _, _ in found)
    assert any(n == "process_cpu_seconds_total" for n, _, _ in found)  # the process's own figures


def test_the_rule_is_loopback_or_the_token() -> None:
    with_token = Settings(metrics_token=TOKEN)
    without = Settings()
    assert allowed("127.0.0.1", None, without) is True
    assert allowed("::1", None, without) is True
    assert allowed("10.1.2.3", None, without) is None
    assert allowed("10.1.2.3", f"Bearer {TOKEN}", without) is None  # no token configured: closed
    assert allowed("10.1.2.3", f"Bearer {TOKEN}", with_token) is True
    assert allowed("10.1.2.3", "Bearer wrong", with_token) is False
    assert allowed("testclient", None, with_token) is None


def test_a_worker_serves_its_metrics_on_its_own_port(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    port = free_port()
    server = serve_metrics(runtime.db, runtime.settings, port, host="127.0.0.1")
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
        assert answer.status_code == 200, answer.text
        names = {n for n, _, _ in samples(answer.text)}
        assert {"fieldcheck_outbox_backlog", "fieldcheck_reviews_waiting"} <= names
        assert httpx.get(f"http://127.0.0.1:{port}/other", timeout=10).status_code == 404
    finally:
        server.shutdown()
        server.server_close()


MONITORING = Path(__file__).resolve().parents[2] / "infra" / "monitoring"
METRIC_NAME = re.compile(r"\bfieldcheck_[a-z_]+")


def exported_names(text: str) -> set[str]:
    """Every series name a scrape can hold, from its families (a labelled family with no sample yet
    is still declared): counters as *_total, histograms as *_bucket, *_count and *_sum."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        if family.type == "counter":
            names |= {family.name + "_total", family.name + "_created"}
        elif family.type == "histogram":
            names |= {family.name + suffix for suffix in ("_bucket", "_count", "_sum", "_created")}
        else:
            names.add(family.name)
    return names


def test_the_dashboard_and_the_alerts_use_only_exported_metrics(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    with runtime.db.transaction() as session:  # the ledger's gauges appear once it has been verified
        enqueue(session, money.VERIFY_JOB)
    runtime.jobs.join()
    answer = app_client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    exported = exported_names(answer.text)
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"][0]["rules"]
    assert {
        "FieldcheckServerErrors",
        "FieldcheckJobQueueLag",
        "FieldcheckOutboxStuck",
        "FieldcheckReviewsPastDeadline",
    } <= {r["alert"] for r in rules}
    expressions = [r["expr"] for r in rules]
    for rule in rules:
        assert rule["for"] and rule["labels"]["severity"] and rule["annotations"]["summary"], rule
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    assert dashboard["panels"]
    expressions += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for expression in expressions for name in METRIC_NAME.findall(expression)}
    assert len(used) >= 12, used
    assert used <= exported, used - exported
    # And the check can fail: a name the code does not export is caught.
    assert "fieldcheck_not_a_metric_total" not in exported


def test_the_hourly_ledger_verification_is_kept_and_scraped(
    app_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = runtime_of(app_client)
    Field(app_client)  # some money moved
    with runtime.db.transaction() as session:
        enqueue(session, money.VERIFY_JOB)
    runtime.jobs.join()
    found = scrape(app_client)
    assert value(found, "fieldcheck_ledger_verify_ok") == 1
    assert value(found, "fieldcheck_ledger_verify_problems") == 0
    assert value(found, "fieldcheck_ledger_verify_last_run_timestamp_seconds") > time.time() - 600
    with runtime.db.transaction(read_only=True) as session:
        last = ledger.last_verification(session)
        assert last is not None and last.ok and last.checked

    def broken(session: Any) -> Report:
        return Report(checked={"transactions": 1}, problems=["escrow of campaign X holds 5 cents too many"])

    monkeypatch.setattr(money, "verify_money", broken)
    with runtime.db.transaction() as session:
        enqueue(session, money.VERIFY_JOB)
    runtime.jobs.join()
    found = scrape(app_client)
    assert value(found, "fieldcheck_ledger_verify_ok") == 0
    assert value(found, "fieldcheck_ledger_verify_problems") == 1
    with runtime.db.transaction(read_only=True) as session:
        last = ledger.last_verification(session)
        assert last is not None and last.problems == ["escrow of campaign X holds 5 cents too many"]
