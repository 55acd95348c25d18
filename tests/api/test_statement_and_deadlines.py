"""A rejection's written statement of reasons, and an appeal answered in time or decided in the
worker's favour (EU Platform Work Directive, Art. 11); on every backend."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import col, update

from fieldcheck.assignments.models import Assignment
from fieldcheck.reviews import service as reviews
from tests.support import photos
from tests.support.factories import problem, runtime_of
from tests.support.submissions import Field, by_check, checked, submit, upload


def rejected(client: Any, field: Field) -> tuple[Any, str]:
    worker = field.worker()
    assignment_id = field.reserve(worker)
    photo_id = upload(client, worker, assignment_id, photos.real("blur_honor7x_176_defocus.jpg"))
    assert submit(client, worker, assignment_id, [photo_id]).status_code == 202
    assert checked(client, worker, assignment_id)["status"] == "rejected"
    return worker, assignment_id


def test_a_rejection_has_a_written_statement_in_the_workers_language(app_client: Any) -> None:
    field = Field(app_client)
    worker, assignment_id = rejected(app_client, field)
    url = f"/api/v1/assignments/{assignment_id}/statement"
    answer = app_client.get(url, headers=worker.headers)
    assert answer.status_code == 200, answer.text
    statement = answer.json()
    assert statement["decided_by"] == "system" and statement["final"] is False
    blur = next(r for r in statement["reasons"] if r["check"] == "blur")
    assert blur["explanation"].startswith("The photo is blurred")
    assert blur["value"].endswith(" px") and "1.67" in blur["threshold"]
    assert statement["appeal_until"] and "You can appeal this decision until" in statement["appeal"]
    french = app_client.get(url, headers={**worker.headers, "Accept-Language": "fr"}).json()
    assert french["decision"] == "refusée"
    assert next(r for r in french["reasons"] if r["check"] == "blur")["explanation"].startswith(
        "La photo est floue"
    )
    page = app_client.get(url, headers={**worker.headers, "Accept": "text/html", "Accept-Language": "fr"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Exposé des motifs" in page.text and "La photo est floue" in page.text
    assert "<script" not in page.text
    # Someone else's assignment is not found; an assignment that was not rejected has no statement.
    other = field.worker()
    problem(app_client.get(url, headers=other.headers), 404)
    fresh = field.reserve(other)
    problem(
        app_client.get(f"/api/v1/assignments/{fresh}/statement", headers=other.headers), 409, "no_rejection"
    )


def test_an_appeal_not_answered_in_time_is_approved_and_paid_once(app_client: Any) -> None:
    runtime = runtime_of(app_client)
    assert runtime.settings.appeal_response_days == 7
    field = Field(app_client)
    worker, assignment_id = rejected(app_client, field)
    appealed = app_client.post(
        f"/api/v1/assignments/{assignment_id}/appeal",
        json={"message": "The shelf was sharp when I looked at it."},
        headers=worker.headers,
    )
    assert appealed.status_code == 201, appealed.text
    with runtime.db.transaction(read_only=True) as session:
        stored = session.get(Assignment, uuid.UUID(assignment_id))
        assert stored is not None and stored.review_due_at is not None and stored.appealed_at is not None
        assert stored.review_due_at - stored.appealed_at == timedelta(
            days=7
        )  # the setting, not the campaign's
    statement = app_client.get(
        f"/api/v1/assignments/{assignment_id}/statement", headers=worker.headers
    ).json()
    assert "with a person" in statement["appeal"]
    with runtime.db.transaction() as session:
        session.exec(
            update(Assignment)
            .where(col(Assignment.id) == uuid.UUID(assignment_id))
            .values(review_due_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    with runtime.db.transaction() as session:
        assert reviews.approve_overdue(session, runtime.settings) == 1
    with runtime.db.transaction() as session:
        assert reviews.approve_overdue(session, runtime.settings) == 0  # decided once
    result = checked(app_client, worker, assignment_id)
    assert result["status"] == "approved"
    assert result["payment"]["status"] == "released" and result["payment"]["amount_cents"] == 500
    assert result["history"][-1]["reason"].startswith(
        "Approved and paid because your appeal was not answered"
    )
    assert result["decision"]["reasons"] == [
        "Your appeal was not answered in time: the platform approved the work."
    ]
    french = app_client.get(
        f"/api/v1/assignments/{assignment_id}", headers={**worker.headers, "Accept-Language": "fr"}
    ).json()
    assert "votre contestation" in french["history"][-1]["reason"]
    assert by_check(result)["blur"][0]["outcome"] == "fail"  # the checks stay as they were
