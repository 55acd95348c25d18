"""The contract holds for a worker's token (Schemathesis, every check on, finds nothing; see
tests/support/contract.py), signing out keeps it, and the document is one a client can be
generated from."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.contract import SIGN_OUT, Served, assert_clean, check_role, schemathesis, seeded


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with seeded(tmp_path_factory.mktemp("contract")) as server:
        yield server


def test_the_contract_holds_for_a_worker(served: Served) -> None:
    check_role(served, "worker")


def test_a_client_can_be_generated_from_the_document(served: Served) -> None:
    """The document is valid OpenAPI 3.1 (Schemathesis loads it), names every error answer as a
    problem, and requires what the server requires."""
    document = httpx.get(f"{served.url}/schema/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    problem = {"$ref": "#/components/schemas/Problem"}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            errors = {s: r for s, r in operation["responses"].items() if s.startswith(("4", "5"))}
            assert "400" in errors, (method, path)
            for status, response in errors.items():
                assert response["content"] == {"application/problem+json": {"schema": problem}}, (
                    method,
                    path,
                    status,
                )
            if operation.get("security"):
                assert {"401", "403"} <= set(errors), (method, path)
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "Idempotency-Key":
                    assert parameter["required"] is True, (method, path)
    upload = document["components"]["schemas"]["PhotoUploadIn"]
    assert upload["properties"]["content_type"]["enum"] == [
        "image/jpeg",
        "image/png",
        "image/heic",
        "image/heif",
    ]
    assert upload["properties"]["size_bytes"]["maximum"] == 25 * 1024 * 1024
    assert upload["additionalProperties"] is False
    nearby = {p["name"]: p for p in document["paths"]["/api/v1/tasks/nearby"]["get"]["parameters"]}
    assert nearby["radius_m"]["schema"]["maximum"] == 50_000
    assert nearby["limit"]["schema"]["maximum"] == 100
    register = document["components"]["schemas"]["RegisterIn"]["properties"]["password"]
    assert (register["minLength"], register["maxLength"]) == (10, 256)


def test_signing_out_keeps_the_contract(served: Served) -> None:
    """Last in this file: it revokes the worker's token."""
    assert_clean(schemathesis(served, "worker", "--include-path", SIGN_OUT), "sign-out")
    headers = {"Authorization": f"Bearer {served.tokens['worker']}"}
    assert httpx.get(f"{served.url}/api/v1/me", headers=headers).status_code == 401
