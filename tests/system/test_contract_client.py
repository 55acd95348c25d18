"""The contract holds for a client's token: Schemathesis, every check on, finds nothing
(tests/support/contract.py says how)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.contract import Served, check_role, seeded


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with seeded(tmp_path_factory.mktemp("contract")) as server:
        yield server


def test_the_contract_holds_for_a_client(served: Served) -> None:
    check_role(served, "client")
