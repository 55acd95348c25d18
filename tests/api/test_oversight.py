"""Human oversight figures, from what people decided: checks overturned, appeals, reviewers."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from fieldcheck.auth.models import Role
from fieldcheck.cli import main
from fieldcheck.reviews import oversight
from tests.api.test_review import claim, decide, flagged
from tests.api.test_statement_and_deadlines import rejected
from tests.support.console import sign_in
from tests.support.factories import make_account, problem, runtime_of
from tests.support.submissions import Field


def test_overturned_checks_appeals_and_reviewers_are_counted(app_client: Any, tmp_path: Path) -> None:
    runtime = runtime_of(app_client)
    field = Field(app_client)
    rita, raj = make_account(runtime, Role.reviewer), make_account(runtime, Role.reviewer)
    admin = make_account(runtime, Role.admin)
    # Two imprecise positions sent to a person: one approved (the doubt overturned), one rejected.
    _w1, approved_id = flagged(app_client, field)
    _w2, rejected_id = flagged(app_client, field)
    for item, verdict in ((approved_id, "approve"), (rejected_id, "reject")):
        assert claim(app_client, rita, item).status_code == 200
        answer = decide(
            app_client, rita, item, verdict, reasons=["not_in_store"] if verdict == "reject" else []
        )
        assert answer.status_code == 200, answer.text
    # The automated checks reject a blurred photo; on appeal another person approves it.
    worker, system_rejected = rejected(app_client, field)
    assert (
        app_client.post(
            f"/api/v1/assignments/{system_rejected}/appeal",
            json={"message": "It was readable."},
            headers=worker.headers,
        ).status_code
        == 201
    )
    assert claim(app_client, raj, system_rejected).status_code == 200
    assert decide(app_client, raj, system_rejected, "approve").status_code == 200

    answer = app_client.get("/api/v1/admin/oversight", headers=admin.headers)
    assert answer.status_code == 200, answer.text
    found = answer.json()
    by = {(c["name"], c["outcome"]): c for c in found["checks"]}
    accuracy = by[("location_accuracy", "warn")]
    assert (accuracy["fired"], accuracy["human_decided"], accuracy["overturned"]) == (2, 2, 1)
    assert accuracy["overturn_rate"] == 0.5
    blur = by[("blur", "fail")]
    assert (blur["human_decided"], blur["overturned"]) == (1, 1)
    assert by[("blur", "pass")]["fired"] >= 2
    assert found["appeals"]["system"] == {"decided": 1, "reversed": 1, "reversal_rate": 1.0}
    assert found["appeals"]["reviewer"]["decided"] == 0
    decisions = {r["reviewer_id"]: r["decisions"] for r in found["reviewers"]}
    assert decisions == {str(rita.id): 2, str(raj.id): 1}
    assert found["hours_to_human_decision"]["p50"] is not None
    assert found["needs_recalibration"] == []  # too few cases (20 by default)
    assert app_client.get("/api/v1/admin/oversight", headers=rita.headers).status_code == 403
    later = app_client.get("/api/v1/admin/oversight", params={"since": "2999-01-01"}, headers=admin.headers)
    assert later.status_code == 200 and later.json()["since"].startswith("2999-01-01T00:00:00+00:00")
    assert all(c["fired"] == 0 for c in later.json()["checks"])
    for wrong in ("0.5", "yesterday", "2026-13-45"):  # a bare number is not a time
        problem(
            app_client.get("/api/v1/admin/oversight", params={"since": wrong}, headers=admin.headers),
            400,
            "invalid_since",
        )

    with runtime.db.transaction(read_only=True) as session:
        strict = runtime.settings.model_copy(update={"oversight_min_cases": 2})
        marked = oversight.report(session, strict).needs_recalibration
    assert marked == ["location_accuracy:warn"]  # overturned half the time, over 2 cases: above 30 %

    labels = tmp_path / "labels.csv"
    env = {"FIELDCHECK_HOME": str(runtime.settings.home)}
    if runtime.settings.database_url:
        env["FIELDCHECK_DATABASE_URL"] = runtime.settings.database_url
    printed = CliRunner().invoke(main, ["oversight", "report", "--csv", str(labels)], env=env)
    assert printed.exit_code == 0, printed.output
    assert (
        "location_accuracy" in printed.output
        and "appeals against system decisions: 1 decided" in printed.output
    )
    rows = list(csv.DictReader(labels.open()))
    assert {(r["check"], r["human"], r["kind"]) for r in rows} >= {
        ("location_accuracy", "approve", "flagged"),
        ("location_accuracy", "reject", "flagged"),
        ("blur", "approve", "appeal"),
    }
    assert next(r for r in rows if r["human"] == "reject")["reason_codes"] == "not_in_store"
    # Admins read the same on a console page; reviewers may not.
    sign_in(app_client, admin)
    page = app_client.get("/console/oversight/")
    assert page.status_code == 200, page.text
    assert "Human oversight of the automated checks" in page.text and "location_accuracy" in page.text
    assert 'href="/console/oversight/"' in page.text
