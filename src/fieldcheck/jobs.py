"""Background jobs: dramatiq broker by URL, a transactional outbox, and a scheduler.

- `enqueue(session, "name", **kwargs)` only writes an outbox row in the caller's transaction.
  After that transaction commits, the row is handed to the broker (at once, by an after-commit
  hook; and again by the relay loop if the broker was down). A rolled-back job never runs.
- Delivery is at-least-once, so every job run first claims its outbox id in `job_executions`
  inside its own transaction: a second delivery of the same message finds the claim and does
  nothing, which makes each committed job's effects happen exactly once.
- Periodic jobs claim (name, period start) rows: with any number of scheduler loops running,
  each period's job is enqueued once.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import CurrentMessage
from sqlalchemy import Column, Index, String, delete, func, text
from sqlmodel import Field, Session, SQLModel, col, select

from fieldcheck import metrics, tracing
from fieldcheck.db import Database, JSONType, UTCDateTime, insert_ignore, new_id, utcnow
from fieldcheck.errors import job_var
from fieldcheck.settings import Settings

if TYPE_CHECKING:
    from fieldcheck.runtime import Runtime

log = logging.getLogger("fieldcheck.jobs")

OUTBOX_SESSION_KEY = "fieldcheck_outbox_ids"
RELAY_BATCH = 500


# Tables --------------------------------------------------------------------------------------
class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index(
            "ix_outbox_messages_unsent",
            "created_at",
            sqlite_where=text("sent_at IS NULL"),
            postgresql_where=text("sent_at IS NULL"),
        ),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    job_name: str = Field(sa_column=Column(String(100), nullable=False))
    queue: str = Field(sa_column=Column(String(100), nullable=False))
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONType, nullable=False))
    delay_ms: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    attempts: int = Field(default=0)
    last_error: str | None = Field(default=None, sa_column=Column(String(500), nullable=True))


class JobExecution(SQLModel, table=True):
    """One row per job message whose effects were committed: the at-most-once half of the deal."""

    __tablename__ = "job_executions"

    job_id: uuid.UUID = Field(primary_key=True)
    job_name: str = Field(sa_column=Column(String(100), nullable=False))
    finished_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True)
    )


class ScheduleSlot(SQLModel, table=True):
    """One row per (periodic job, period start) ever enqueued."""

    __tablename__ = "schedule_slots"

    name: str = Field(sa_column=Column(String(100), primary_key=True))
    slot_start: datetime = Field(sa_column=Column(UTCDateTime, primary_key=True))


# Registry ------------------------------------------------------------------------------------
class AlreadyDone(Exception):
    """This job's effects were committed by an earlier delivery of the same message."""


class JobContext:
    """What a job runs with. `session` is its one write transaction, begun on first use.

    The claim on the job's id is the first statement of that transaction, so a job can do slow
    work first (downloads, image processing) with `reading()` sessions that take no write lock,
    and only then write, in a short transaction.
    """

    def __init__(self, runtime: Runtime, job_id: uuid.UUID, job_name: str) -> None:
        self.runtime = runtime
        self.job_id = job_id
        self.job_name = job_name
        self._session: Session | None = None

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def session(self) -> Session:
        if self._session is None:
            session = self.runtime.db.session()
            if not _claim_execution(session, self.job_id, self.job_name):
                session.rollback()
                session.close()
                raise AlreadyDone(self.job_id)
            self._session = session
        return self._session

    def claim(self) -> None:
        """Claim this job now: do it before any effect outside the database that must not repeat."""
        _ = self.session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self.runtime.db.transaction(read_only=True) as session:
            yield session

    def finish(self) -> None:
        self.session.commit()  # claims now if the job wrote nothing, so a repeat stays a no-op

    def abandon(self) -> None:
        if self._session is not None:
            self._session.rollback()

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


JobFn = Callable[..., None]


@dataclass(frozen=True)
class JobSpec:
    name: str
    fn: JobFn
    queue: str
    max_retries: int
    min_backoff_ms: int
    max_backoff_ms: int
    time_limit_ms: int


@dataclass(frozen=True)
class PeriodicSpec:
    job_name: str
    every: timedelta


JOBS: dict[str, JobSpec] = {}
PERIODIC: dict[str, PeriodicSpec] = {}


def job(
    name: str,
    *,
    queue: str = "default",
    max_retries: int = 10,
    min_backoff_ms: int = 1_000,
    max_backoff_ms: int = 300_000,
    time_limit_ms: int = 600_000,
    every: timedelta | None = None,
) -> Callable[[JobFn], JobFn]:
    """Declare a job: `fn(ctx, **kwargs)` with JSON-able kwargs (ids, not objects)."""

    def register(fn: JobFn) -> JobFn:
        if name in JOBS and JOBS[name].fn is not fn:
            raise ValueError(f"job {name!r} declared twice")
        JOBS[name] = JobSpec(name, fn, queue, max_retries, min_backoff_ms, max_backoff_ms, time_limit_ms)
        if every is not None:
            PERIODIC[name] = PeriodicSpec(name, every)
        return fn

    return register


def enqueue(session: Session, job_name: str, *, delay: timedelta | None = None, **kwargs: Any) -> uuid.UUID:
    """Write the job into the caller's transaction; it is sent only once that commits."""
    spec = JOBS.get(job_name)
    if spec is None:
        raise KeyError(f"unknown job {job_name!r}")
    carrier = tracing.current_carrier()  # the job's span continues the caller's trace
    row = OutboxMessage(
        job_name=job_name,
        queue=spec.queue,
        payload={**kwargs, tracing.CARRIER_KEY: carrier} if carrier else kwargs,
        delay_ms=int(delay.total_seconds() * 1000) if delay else 0,
    )
    session.add(row)
    session.info.setdefault(OUTBOX_SESSION_KEY, []).append(row.id)
    return row.id


def _claim_execution(session: Session, job_id: uuid.UUID, job_name: str) -> bool:
    return insert_ignore(session, JobExecution, job_id=job_id, job_name=job_name, finished_at=utcnow())


# Broker --------------------------------------------------------------------------------------
def _count_start(actor: str) -> dramatiq.Message[Any] | None:
    """A job attempt starts: count it, whether it retries a failed one, and how long it waited.
    Returns the message it came in."""
    metrics.JOBS_STARTED.labels(actor).inc()
    message = CurrentMessage.get_current_message()
    if message is None:
        return None
    if message.options.get("retries", 0):
        metrics.JOBS_RETRIED.labels(actor).inc()
    due_ms = max(message.message_timestamp, int(message.options.get("eta") or 0))
    metrics.JOB_QUEUE_LAG.labels(actor).observe(max(0.0, time.time() - due_ms / 1000))
    return message


def create_broker(settings: Settings) -> dramatiq.Broker:
    broker = _broker(settings)
    broker.add_middleware(CurrentMessage())  # what a running job was sent as (its times, its retries)
    return broker


def _broker(settings: Settings) -> dramatiq.Broker:
    kind = settings.broker_kind
    if kind == "rabbitmq":
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        # Confirmed delivery: an outbox row is marked sent only once RabbitMQ has the message.
        return RabbitmqBroker(url=settings.broker_url, confirm_delivery=True)
    if kind == "redis":
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=settings.broker_url, namespace=settings.queue_prefix)  # type: ignore[no-untyped-call]
    return StubBroker(fail_fast_default=False)


def queue_name(settings: Settings, queue: str) -> str:
    return f"{settings.queue_prefix}.{queue}"


@dataclass
class _Loop:
    name: str
    interval_s: float
    body: Callable[[], Any]
    stop_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name=f"fieldcheck-{self.name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop_event.wait(self.interval_s):
            try:
                self.body()
            except Exception:
                log.exception("%s loop failed; trying again in %.1fs", self.name, self.interval_s)

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=30)


class JobSystem:
    """The broker, its actors bound to one runtime, the relay and the scheduler of a process."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.db: Database = runtime.db
        self.broker = create_broker(self.settings)
        self.actors: dict[str, dramatiq.Actor[Any, Any]] = {}
        for spec in JOBS.values():
            self.actors[spec.name] = dramatiq.Actor(
                self._bind(spec),
                broker=self.broker,
                actor_name=spec.name,
                queue_name=queue_name(self.settings, spec.queue),
                priority=0,
                options={
                    "max_retries": spec.max_retries,
                    "min_backoff": spec.min_backoff_ms,
                    "max_backoff": spec.max_backoff_ms,
                    "time_limit": spec.time_limit_ms,
                },
            )
        self.worker: dramatiq.Worker | None = None
        self._loops: list[_Loop] = []
        # For join(): the messages this process sent whose job has not run to its end yet, and
        # when each is due (a delayed one later).
        self._unfinished: dict[str, float] = {}
        self._finished = threading.Condition()
        self.db.after_commit_hooks.append(self._after_commit)

    # Running jobs ------------------------------------------------------------------------------
    def _bind(self, spec: JobSpec) -> Callable[..., None]:
        runtime = self.runtime

        def run(job_id: str, **kwargs: Any) -> None:
            ctx = JobContext(runtime, uuid.UUID(job_id), spec.name)
            logged_as = job_var.set((job_id, spec.name))
            message = _count_start(spec.name)
            # A row written by a newer process may reach an older relay with its trace context
            # still in the payload: it is taken out here too, never passed to the job.
            carrier = kwargs.pop(tracing.CARRIER_KEY, None)
            if message is not None:
                carrier = message.options.get("trace") or carrier
            started = time.perf_counter()
            result = "failed"
            try:
                with tracing.job_span(spec.name, job_id, spec.queue, carrier, expected=(AlreadyDone,)):
                    spec.fn(ctx, **kwargs)
                    ctx.finish()
                result = "succeeded"
            except AlreadyDone:
                ctx.abandon()
                result = "skipped"
                log.info("job %s %s already done; skipping the repeated delivery", spec.name, job_id)
            except BaseException:
                ctx.abandon()
                raise  # the broker delivers it again later: not finished
            finally:
                ctx.close()
                job_var.reset(logged_as)
                metrics.JOBS_FINISHED.labels(spec.name, result).inc()
                metrics.JOB_DURATION.labels(spec.name).observe(time.perf_counter() - started)
            self._done(job_id)

        run.__name__ = spec.name.replace(".", "_")
        return run

    def start_worker(self, threads: int | None = None, queues: Iterable[str] | None = None) -> None:
        names = {queue_name(self.settings, q) for q in queues} if queues else None
        self.worker = dramatiq.Worker(
            self.broker,
            queues=names,
            worker_threads=threads or self.settings.worker_threads,
            worker_timeout=self.settings.worker_poll_ms,
        )
        self.worker.start()

    def stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.stop(timeout=30_000)
            self.worker = None

    # Outbox relay ------------------------------------------------------------------------------
    def _after_commit(self, session: Session) -> None:
        ids = session.info.pop(OUTBOX_SESSION_KEY, None)
        if not ids:
            return
        try:
            self.relay(ids)
        except Exception:
            # The rows are committed; the relay loop will send them once the broker answers again.
            log.exception("could not hand %d committed job(s) to the broker yet", len(ids))

    def relay(self, ids: list[uuid.UUID] | None = None) -> int:
        """Send unsent outbox rows (those given, or the oldest) to the broker; returns how many."""
        sent = 0
        with self.db.transaction() as session:
            query = select(OutboxMessage).where(col(OutboxMessage.sent_at).is_(None))
            if ids is not None:
                query = query.where(col(OutboxMessage.id).in_(ids))
            query = query.order_by(col(OutboxMessage.created_at)).limit(RELAY_BATCH)
            if self.db.is_postgres:
                query = query.with_for_update(skip_locked=True)
            for row in session.exec(query).all():
                try:
                    self._send(row)
                except Exception as exc:
                    row.attempts += 1
                    row.last_error = f"{type(exc).__name__}: {exc}"[:500]
                    session.add(row)
                    log.warning("broker refused job %s (%s): %s", row.job_name, row.id, exc)
                    break
                row.sent_at = utcnow()
                session.add(row)
                sent += 1
        return sent

    def _send(self, row: OutboxMessage) -> None:
        actor = self.actors.get(row.job_name)
        if actor is None:
            raise KeyError(f"no actor for job {row.job_name!r}")
        payload = dict(row.payload)
        carrier = payload.pop(tracing.CARRIER_KEY, None)
        message: dramatiq.Message[Any] = dramatiq.Message(
            queue_name=actor.queue_name,
            actor_name=actor.actor_name,
            args=(),
            kwargs={"job_id": str(row.id), **payload},
            options={"trace": carrier} if carrier else {},
            message_id=str(row.id),
        )
        with self._finished:
            self._unfinished[str(row.id)] = time.monotonic() + row.delay_ms / 1000
        self.broker.enqueue(message, delay=row.delay_ms or None)
        metrics.JOBS_ENQUEUED.labels(row.job_name).inc()

    def _done(self, job_id: str) -> None:
        with self._finished:
            self._unfinished.pop(job_id, None)
            self._finished.notify_all()

    def relay_all(self) -> int:
        total = 0
        while sent := self.relay():
            total += sent
        return total

    # Scheduler ---------------------------------------------------------------------------------
    def schedule_tick(self, now: datetime | None = None) -> list[str]:
        """Enqueue every periodic job whose current period has not been claimed yet."""
        now = now or utcnow()
        enqueued: list[str] = []
        for spec in PERIODIC.values():
            period = spec.every.total_seconds()
            start = datetime.fromtimestamp(math.floor(now.timestamp() / period) * period, now.tzinfo)
            with self.db.transaction() as session:
                if self._claim_slot(session, spec.job_name, start):
                    enqueue(session, spec.job_name)
                    enqueued.append(spec.job_name)
        return enqueued

    def _claim_slot(self, session: Session, name: str, start: datetime) -> bool:
        return insert_ignore(session, ScheduleSlot, name=name, slot_start=start)

    # Background loops --------------------------------------------------------------------------
    def start_loops(self, *, relay: bool, scheduler: bool) -> None:
        if relay:
            self._loops.append(_Loop("relay", self.settings.relay_interval_s, self.relay_all))
        if scheduler:
            self._loops.append(_Loop("scheduler", self.settings.scheduler_tick_s, self.schedule_tick))
        for loop in self._loops:
            loop.start()

    def stop_loops(self) -> None:
        for loop in self._loops:
            loop.stop()
        self._loops.clear()

    def declared_queues(self) -> set[str]:
        return {actor.queue_name for actor in self.actors.values()}

    def join(self, timeout_s: float = 60) -> None:
        """Wait until every job sent has run, and every job those sent (tests, one-shot commands).

        A job that ends sends its own jobs after its commit, before it counts as finished, so
        when nothing sent is unfinished and nothing committed is left to relay, all is done.
        Only this process's worker is waited for, and not for jobs delayed past the timeout
        (housekeeping scheduled for later).
        """
        deadline = time.monotonic() + timeout_s

        def settled() -> bool:
            return all(due > deadline for due in self._unfinished.values())

        while True:
            relayed = self.relay_all()
            with self._finished:
                if not self._finished.wait_for(settled, timeout=max(0.0, deadline - time.monotonic())):
                    waiting = sum(due <= deadline for due in self._unfinished.values())
                    raise TimeoutError(f"{waiting} job(s) still unfinished after {timeout_s} s")
            if not relayed:
                # Rows the relay loop holds (it skips what another relay locked, and so did we)
                # are on their way to the broker: look again once they are.
                with self.db.transaction(read_only=True) as session:
                    if pending_count(session) == 0:
                        return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"committed jobs still not sent after {timeout_s} s")
                time.sleep(0.01)

    def check(self) -> None:
        """Readiness: the broker answers (and, embedded, the worker threads run)."""
        kind = self.settings.broker_kind
        if kind == "redis":
            self.broker.client.ping()  # type: ignore[attr-defined]
        elif kind == "rabbitmq":
            import pika

            params = pika.URLParameters(self.settings.broker_url)
            params.socket_timeout = 3
            params.blocked_connection_timeout = 3
            connection = pika.BlockingConnection(params)
            connection.close()
        elif self.settings.runs_inprocess_worker and self.worker is None:
            raise RuntimeError("the in-process job worker is not running")

    def close(self) -> None:
        self.stop_loops()
        self.stop_worker()
        if self._after_commit in self.db.after_commit_hooks:
            self.db.after_commit_hooks.remove(self._after_commit)
        self.broker.close()


# Housekeeping of this module's own tables -------------------------------------------------
SENT_OUTBOX_RETENTION = timedelta(days=7)
EXECUTION_RETENTION = timedelta(days=30)


@job("jobs.purge", every=timedelta(hours=6))
def purge_job_tables(ctx: JobContext) -> None:
    now = utcnow()
    ctx.session.exec(delete(OutboxMessage).where(col(OutboxMessage.sent_at) < now - SENT_OUTBOX_RETENTION))
    ctx.session.exec(delete(JobExecution).where(col(JobExecution.finished_at) < now - EXECUTION_RETENTION))
    ctx.session.exec(delete(ScheduleSlot).where(col(ScheduleSlot.slot_start) < now - SENT_OUTBOX_RETENTION))


def pending_count(session: Session) -> int:
    query = select(func.count()).select_from(OutboxMessage).where(col(OutboxMessage.sent_at).is_(None))
    return int(session.exec(query).one())
