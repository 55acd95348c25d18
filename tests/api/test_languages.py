"""A worker reads everything in French or English: checks, decisions, history, problems."""

from __future__ import annotations

from typing import Any

from tests.support import photos
from tests.support.factories import problem
from tests.support.submissions import Field, checked, submit, upload

FRENCH = {"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"}


def test_a_worker_reads_the_decision_on_their_work_in_french(app_client: Any) -> None:
    field = Field(app_client)
    worker = field.worker()
    assignment_id = field.reserve(worker)
    photo_id = upload(app_client, worker, assignment_id, photos.real("blur_honor7x_176_defocus.jpg"))
    assert submit(app_client, worker, assignment_id, [photo_id]).status_code == 202
    english = checked(app_client, worker, assignment_id)
    assert english["status"] == "rejected"
    answer = app_client.get(f"/api/v1/assignments/{assignment_id}", headers={**worker.headers, **FRENCH})
    assert answer.status_code == 200
    assert answer.headers["content-language"] == "fr"
    french = answer.json()
    assert [c["name"] for c in french["checks"]] == [c["name"] for c in english["checks"]]
    assert [c["outcome"] for c in french["checks"]] == [c["outcome"] for c in english["checks"]]
    blur = next(c for c in french["checks"] if c["name"] == "blur")
    assert blur["explanation"].startswith("La photo est floue"), blur
    assert blur["threshold"].startswith("contours les plus nets")
    assert french["decision"]["reasons"][0].startswith("La photo est floue")
    assert [h["reason"] for h in french["history"]] == [
        "Réservé pour 120 minutes.",
        "1 photo(s) envoyée(s) ; les vérifications automatiques sont en cours.",
        "Refusé par les vérifications automatiques ; vous pouvez faire appel auprès d'une personne.",
    ], french["history"]
    assert english["history"][-1]["reason"].startswith("Rejected by the automated checks")
    # Codes and statuses stay the same in every language; the detail is the reader's.
    again = problem(
        app_client.post(
            f"/api/v1/assignments/{assignment_id}/submit", json={}, headers={**worker.headers, **FRENCH}
        ),
        400,
    )
    assert again["title"] == "Requête invalide"
    gone = problem(
        app_client.get(
            "/api/v1/assignments/00000000-0000-4000-8000-000000000000", headers={**worker.headers, **FRENCH}
        ),
        404,
        "assignment_not_found",
    )
    assert gone["detail"] == "mission introuvable"
    assert gone["title"] == "Introuvable"
