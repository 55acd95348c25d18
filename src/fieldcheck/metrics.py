"""Prometheus metrics (prometheus-client; every name starts with `fieldcheck_`).

Counters and histograms live in each process: HTTP requests by route template, method and status
with their latency; jobs by actor (enqueued by the relay, started, succeeded, failed, skipped as a
repeated delivery, retried), their duration and their queue lag (from enqueue, or from the time a
delayed job was due, to its start). Figures of the shared state (outbox backlog and its oldest
age, reviews waiting and the oldest, money in escrow) are read from the database when scraped, by
the collector the app registers (`observability.py`). The process's own figures (CPU, memory,
open files) come with prometheus-client's default collectors.

Served at /metrics by each API process and, with --metrics-port, by workers and schedulers.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)

HTTP_REQUESTS = Counter(
    "fieldcheck_http_requests",
    "HTTP requests answered, by route template, method and status",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "fieldcheck_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
CHECKS = Counter(
    "fieldcheck_check_outcomes",
    "Automated checks recorded at submission, by check and outcome",
    ["check", "outcome"],
)
PHOTO_MEASUREMENTS = Counter(
    "fieldcheck_photo_measurements",
    "Photos decoded and checked, by when: upload (the instant checks), submission (measured then), "
    "reused (the submission took the instant checks' result)",
    ["when"],
)
DECISIONS = Counter(
    "fieldcheck_decisions",
    "Decisions on delivered work, by outcome and decider (system or reviewer)",
    ["outcome", "decided_by"],
)
EXPORTS = Counter(
    "fieldcheck_exports",
    "Exports finished, by kind (campaign, worker_data) and result (done, failed)",
    ["kind", "result"],
)
WEBHOOK_DELIVERIES = Counter(
    "fieldcheck_webhook_delivery_attempts",
    "Webhook delivery attempts, by result: succeeded, retrying (another attempt is due) or failed (for good)",
    ["result"],
)
JOBS_ENQUEUED = Counter(
    "fieldcheck_jobs_enqueued", "Jobs handed to the broker by the outbox relay", ["actor"]
)
JOBS_STARTED = Counter("fieldcheck_jobs_started", "Job attempts started", ["actor"])
JOBS_RETRIED = Counter("fieldcheck_jobs_retried", "Job attempts that are retries of a failed one", ["actor"])
JOBS_FINISHED = Counter(
    "fieldcheck_jobs_finished",
    "Job attempts finished, by result: succeeded, failed (retried later while retries remain) or "
    "skipped (a repeated delivery of a job already done)",
    ["actor", "result"],
)
JOB_DURATION = Histogram(
    "fieldcheck_job_duration_seconds", "Time a job attempt ran, by actor", ["actor"], buckets=JOB_BUCKETS
)
JOB_QUEUE_LAG = Histogram(
    "fieldcheck_job_queue_lag_seconds",
    "From a job's enqueue (or the moment a delayed job was due) to its start, by actor",
    ["actor"],
    buckets=JOB_BUCKETS,
)
