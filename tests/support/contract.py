"""Schemathesis against the embedded server, seeded with the demo (tests/system/test_contract_*.py).

Every check is on (`--checks all`): no 5xx, every status, content type, header and body as
documented, schema-valid requests accepted and invalid ones refused. tests/contract/schemathesis.toml
lists the only exceptions: business rules no schema can express, answered as documented 422
problems. One file per role, so that the runs share the machine's cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from fieldcheck.auth.models import Role
from fieldcheck.runtime import Runtime
from fieldcheck.settings import Settings
from fieldcheck.tools.demo import DEMO_PASSWORD, seed
from tests.support.backends import ARTIFACTS_DIR, ROOT
from tests.support.factories import make_account
from tests.support.server import running

CONFIG = ROOT / "tests" / "contract" / "schemathesis.toml"
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# Generated cases per operation beyond the coverage phase (which tries every documented
# boundary and every kind of wrong value by itself): enough to vary bodies and parameters while
# each role's run stays around a minute on two cores. FIELDCHECK_CONTRACT_EXAMPLES digs deeper.
MAX_EXAMPLES = int(os.environ.get("FIELDCHECK_CONTRACT_EXAMPLES", "10"))
# Signing out revokes the token the run uses: it has its own run, last.
SIGN_OUT = "/api/v1/auth/logout"


@dataclass
class Served:
    url: str
    tokens: dict[str, str]
    config: Path


@contextmanager
def seeded(home: Path) -> Iterator[Served]:
    """The demo, served; an access token per role."""
    settings = Settings(
        home=home,
        argon2_time_cost=1,
        argon2_memory_kib=8192,
        argon2_parallelism=1,
        worker_poll_ms=10,
        # The runs sign in and sign up thousands of times from loopback: that is not an attack.
        login_free_failures=1_000_000,
        login_free_failures_per_address=1_000_000,
        signup_max_per_address_per_hour=1_000_000,
    )
    accounts = seed(settings)
    runtime = Runtime(settings)
    admin = make_account(runtime, Role.admin)
    runtime.close()
    with running(settings) as url:
        tokens = {"admin": admin.token}
        for role, email in (
            ("client", accounts.client),
            ("reviewer", accounts.reviewers[0]),
            ("worker", accounts.workers[0]),
        ):
            answer = httpx.post(f"{url}/api/v1/auth/token", json={"email": email, "password": DEMO_PASSWORD})
            assert answer.status_code == 200, answer.text
            tokens[role] = answer.json()["access_token"]
        yield Served(url, tokens, config_for(url, home))


def config_for(url: str, folder: Path) -> Path:
    """The checked-in configuration, and the lists read from the document (their cursors)."""
    document = httpx.get(f"{url}/schema/openapi.json").json()
    sections = [CONFIG.read_text()]
    for path, item in sorted(document["paths"].items()):
        for method, operation in item.items():
            if any(p["name"] == "cursor" for p in operation.get("parameters", [])):
                sections.append(
                    f'[[operations]]\ninclude-path = "{path}"\ninclude-method = "{method.upper()}"\n'
                    "checks.positive_data_acceptance.expected-statuses = "
                    '["2xx", 401, 403, 404, 409, 422, 429]\n'
                )
    config = folder / "schemathesis.toml"
    config.write_text("\n".join(sections))
    return config


def schemathesis(served: Served, role: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(served.config),
        "run",
        f"{served.url}/schema/openapi.json",
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {served.tokens[role]}",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        "20261201",
        "--workers",
        "1",
        "--suppress-health-check",
        "too_slow",
        "--no-color",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)


def assert_clean(run: subprocess.CompletedProcess[str], name: str) -> None:
    output = run.stdout + run.stderr
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    (ARTIFACTS_DIR / f"contract-{name}.txt").write_text(output)
    assert run.returncode == 0, output[-20000:]
    assert " 0 failures" in output or "No issues found" in output or "passed" in output, output[-3000:]


def check_role(served: Served, role: str) -> None:
    assert_clean(schemathesis(served, role, "--exclude-path", SIGN_OUT), role)
