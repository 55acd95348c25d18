from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import func, select

from fieldcheck.jobs import PERIODIC, JobExecution, OutboxMessage, ScheduleSlot, enqueue, pending_count
from fieldcheck.runtime import Runtime
from fieldcheck.settings import Settings
from tests.support.jobs import lines

BROKERS = [
    pytest.param("embedded", id="embedded"),
    pytest.param("services", id="rabbitmq", marks=pytest.mark.services),
    pytest.param("services-redis", id="redis", marks=pytest.mark.services),
]


@pytest.fixture(params=BROKERS)
def runtime(request: pytest.FixtureRequest, backends: Any) -> Any:
    settings: Settings = backends.make(request.param)
    runtime = Runtime(settings)
    runtime.start(worker=True, relay=False, scheduler=False)
    yield runtime
    runtime.close()


def test_rolled_back_job_never_runs_and_committed_job_runs_once(runtime: Runtime, tmp_path: Path) -> None:
    out = tmp_path / "effects.txt"
    with pytest.raises(RuntimeError), runtime.db.transaction() as session:
        enqueue(session, "tests.append_line", path=str(out), text="rolled back")
        raise RuntimeError("the request failed after enqueueing")
    with runtime.db.transaction() as session:
        enqueue(session, "tests.append_line", path=str(out), text="committed")
    runtime.jobs.join()
    assert lines(out) == ["committed"]
    with runtime.db.transaction(read_only=True) as session:
        assert pending_count(session) == 0
        assert session.exec(select(func.count()).select_from(OutboxMessage)).one() == 1


def test_releasing_a_savepoint_is_not_the_commit_that_sends_jobs(runtime: Runtime, tmp_path: Path) -> None:
    """SQLAlchemy says "after commit" when a SAVEPOINT is released; a job written inside one is
    sent only once the outer transaction commits (a console decision runs in a savepoint)."""
    out = tmp_path / "effects.txt"
    seen: list[object] = []
    runtime.db.after_commit_hooks.insert(0, seen.append)
    with runtime.db.transaction() as session:
        with session.begin_nested():
            job_id = enqueue(session, "tests.append_line", path=str(out), text="after the commit")
        assert seen == []  # released, not committed: nothing may be sent yet
        row = session.get(OutboxMessage, job_id)
        assert row is not None and row.sent_at is None
    assert seen  # the outer commit (and the relay's own after it)
    runtime.jobs.join()
    assert lines(out) == ["after the commit"]


def test_a_redelivered_job_does_nothing_the_second_time(runtime: Runtime, tmp_path: Path) -> None:
    out = tmp_path / "effects.txt"
    with runtime.db.transaction() as session:
        job_id = enqueue(session, "tests.append_line", path=str(out), text="once")
    runtime.jobs.join()
    with runtime.db.transaction(read_only=True) as session:
        row = session.get(OutboxMessage, job_id)
        assert row is not None and row.sent_at is not None
    # At-least-once delivery: the broker may hand the same message over again.
    runtime.jobs._send(row)
    runtime.jobs._send(row)
    runtime.jobs.join()
    assert lines(out) == ["once"]
    with runtime.db.transaction(read_only=True) as session:
        assert session.get(JobExecution, job_id) is not None


def test_relays_racing_on_the_same_rows_still_run_each_job_once(runtime: Runtime, tmp_path: Path) -> None:
    out = tmp_path / "effects.txt"
    runtime.jobs.db.after_commit_hooks.remove(runtime.jobs._after_commit)  # leave the rows to the relays
    try:
        with runtime.db.transaction() as session:
            for index in range(20):
                enqueue(session, "tests.append_line", path=str(out), text=f"job {index}")
        threads = [threading.Thread(target=runtime.jobs.relay_all) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        runtime.jobs.db.after_commit_hooks.append(runtime.jobs._after_commit)
    runtime.jobs.join()
    assert sorted(lines(out)) == sorted(f"job {index}" for index in range(20))


@pytest.mark.services
@pytest.mark.parametrize("broker", ["services", "services-redis"], ids=["rabbitmq", "redis"])
def test_job_committed_while_the_broker_is_down_is_sent_when_it_is_back(
    backends: Any, broker: str, tmp_path: Path
) -> None:
    good: Settings = backends.make(broker)
    dead_url = "amqp://guest:guest@127.0.0.1:1/" if broker == "services" else "redis://127.0.0.1:1/0"
    down = Runtime(good.model_copy(update={"broker_url": dead_url}))
    out = tmp_path / "effects.txt"
    try:
        with down.db.transaction() as session:
            enqueue(session, "tests.append_line", path=str(out), text="survived")
        with down.db.transaction(read_only=True) as session:
            row = session.exec(select(OutboxMessage)).one()
            assert row.sent_at is None
            assert row.attempts == 1
            assert row.last_error
    finally:
        down.close()
    back = Runtime(good)
    try:
        back.start(worker=True, relay=True, scheduler=False)  # the relay sends what is left over
        back.jobs.join()
        assert lines(out) == ["survived"]
    finally:
        back.close()


SCHEDULER_BACKENDS = [
    pytest.param("embedded", id="sqlite"),
    pytest.param("services", id="postgres", marks=pytest.mark.services),
]


@pytest.mark.parametrize("backend", SCHEDULER_BACKENDS)
def test_periodic_jobs_are_enqueued_once_per_period_by_racing_schedulers(backends: Any, backend: str) -> None:
    settings: Settings = backends.make(backend)
    runtimes = [Runtime(settings) for _ in range(3)]
    try:
        now = datetime(2026, 11, 28, 12, 0, 1, tzinfo=UTC)
        results: list[list[str]] = []

        def tick(rt: Runtime, at: datetime) -> None:
            results.append(rt.jobs.schedule_tick(at))

        for at in (now, now + timedelta(seconds=30), now + timedelta(hours=1)):
            threads = [threading.Thread(target=tick, args=(rt, at)) for rt in runtimes for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        enqueued = sorted(name for result in results for name in result)
        # Each periodic job once per distinct period among the tick times, whatever the races.
        ticks = (now, now + timedelta(seconds=30), now + timedelta(hours=1))
        expected = {
            name: len({math.floor(t.timestamp() / spec.every.total_seconds()) for t in ticks})
            for name, spec in PERIODIC.items()
        }
        assert expected["auth.purge_login_failures"] == 2
        assert expected["jobs.purge"] == 1
        assert {name: enqueued.count(name) for name in PERIODIC} == expected
        with runtimes[0].db.transaction(read_only=True) as session:
            assert session.exec(select(func.count()).select_from(ScheduleSlot)).one() == sum(
                expected.values()
            )
    finally:
        for rt in runtimes:
            rt.close()


def test_a_trace_context_left_in_a_payload_never_reaches_the_job(runtime: Runtime, tmp_path: Path) -> None:
    """A row written by a process that traces, relayed by one that does not take the context out
    (an older version during a rollout): the job still runs, without the context as an argument."""
    import dramatiq

    from fieldcheck import tracing

    out = tmp_path / "out.txt"
    actor = runtime.jobs.actors["tests.append_line"]
    carrier = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=actor.queue_name,
        actor_name=actor.actor_name,
        args=(),
        kwargs={
            "job_id": "6f1c2d3e-4b5a-4c6d-8e7f-000000000001",
            "path": str(out),
            "text": "ran",
            tracing.CARRIER_KEY: carrier,
        },
        options={},
    )
    runtime.jobs.broker.enqueue(message)
    deadline = datetime.now(UTC) + timedelta(seconds=20)
    while not lines(out) and datetime.now(UTC) < deadline:
        threading.Event().wait(0.05)
    assert lines(out) == ["ran"]


def test_a_failure_is_recorded_through_a_short_database_outage(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An export that fails while the database is away for a few seconds must still say so, or its
    own retry finds it "running" and leaves it to the abandoned-build sweep (found by the fleet
    benchmark's database cut)."""
    from sqlalchemy.exc import OperationalError

    import fieldcheck.db

    waits: list[float] = []
    monkeypatch.setattr(fieldcheck.db, "_pause", waits.append)
    attempts: list[int] = []

    def record(session: Any) -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise OperationalError("UPDATE exports ...", {}, ConnectionResetError("the network is cut"))
        session.add(ScheduleSlot(name="tests.recorded", slot_start=datetime(2026, 1, 1, tzinfo=UTC)))

    runtime.db.write_through_outages(record)
    assert len(attempts) == 3 and waits == [1.0, 2.0]
    with runtime.db.transaction(read_only=True) as session:
        assert (
            session.exec(
                select(func.count()).select_from(ScheduleSlot).where(ScheduleSlot.name == "tests.recorded")
            ).one()
            == 1
        )

    def never(session: Any) -> None:
        raise OperationalError("UPDATE exports ...", {}, ConnectionResetError("the network is cut"))

    with pytest.raises(OperationalError):
        runtime.db.write_through_outages(never, within_s=10)
