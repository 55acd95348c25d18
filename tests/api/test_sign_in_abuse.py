"""Password guessing, sign-up floods and forged client addresses, over real connections.

The app runs under uvicorn on loopback, which is a trusted proxy by default: each request says
which client it comes from with X-Forwarded-For, as a load balancer would.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from fieldcheck.auth.models import LoginFailure, Role, User
from fieldcheck.auth.service import throttle_delay
from fieldcheck.db import Database
from fieldcheck.proxies import client_address
from fieldcheck.ratelimit import RateLimits
from fieldcheck.settings import Settings
from tests.support.factories import DEFAULT_PASSWORD, problem
from tests.support.server import running

OWNER_HOME = "198.51.100.7"
ATTACKER = "203.0.113.66"
GUESS = "guess-guess-guess"


def sign_in(url: str, email: str, password: str, address: str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{url}/api/v1/auth/token",
        json={"email": email, "password": password},
        headers={"X-Forwarded-For": address, **headers},
    )


def sign_up(url: str, email: str, address: str | None = None) -> httpx.Response:
    return httpx.post(
        f"{url}/api/v1/auth/register",
        json={"email": email, "password": DEFAULT_PASSWORD, "display_name": "Ana"},
        headers={"X-Forwarded-For": address} if address else {},
    )


def make_owner(url: str, email: str = "ana@example.com") -> None:
    assert sign_up(url, email, address=OWNER_HOME).status_code == 202


def backdate_failures(settings: Settings, seconds: float) -> None:
    """As if the failures so far happened `seconds` earlier (the wait has passed)."""
    database = Database(settings)
    try:
        with database.transaction() as session:
            for failure in session.exec(select(LoginFailure)).all():
                failure.at -= timedelta(seconds=seconds)
                session.add(failure)
    finally:
        database.dispose()


def test_guessing_slows_the_guesser_down_never_the_owner(settings: Settings) -> None:
    settings.login_free_failures = 3
    with running(settings) as url:
        make_owner(url)
        for _ in range(3):
            problem(sign_in(url, "ana@example.com", GUESS, ATTACKER), 401, "invalid_credentials")
        # The guesser waits, even with the right password, and each failure doubles the wait.
        waits = []
        for _ in range(3):
            refused = problem(
                sign_in(url, "ana@example.com", DEFAULT_PASSWORD, ATTACKER), 429, "login_throttled"
            )
            assert refused["retry_after_s"] > 0
            waits.append(int(sign_in(url, "ana@example.com", GUESS, ATTACKER).headers["Retry-After"]))
            backdate_failures(settings, settings.login_delay_max_s)
            problem(sign_in(url, "ana@example.com", GUESS, ATTACKER), 401, "invalid_credentials")
        assert waits == [2, 4, 8], waits
        # No lock: the owner signs in from home, and from an address never seen before.
        assert sign_in(url, "ana@example.com", DEFAULT_PASSWORD, OWNER_HOME).status_code == 200
        assert sign_in(url, "ana@example.com", DEFAULT_PASSWORD, "192.0.2.44").status_code == 200
        # A success from home does not reset the count of the guesser's address.
        problem(sign_in(url, "ana@example.com", GUESS, ATTACKER), 429, "login_throttled")


def test_an_address_guessing_at_many_accounts_waits(settings: Settings) -> None:
    settings.login_free_failures_per_address = 4
    with running(settings) as url:
        make_owner(url)
        for index in range(4):
            problem(sign_in(url, f"someone{index}@example.com", GUESS, ATTACKER), 401)
        problem(sign_in(url, "ana@example.com", DEFAULT_PASSWORD, ATTACKER), 429, "login_throttled")
        assert sign_in(url, "ana@example.com", DEFAULT_PASSWORD, OWNER_HOME).status_code == 200


def test_an_account_attacked_from_many_addresses_stays_open_to_its_owner(settings: Settings) -> None:
    settings.login_account_alert_failures = 6
    with running(settings) as url:
        make_owner(url)
        botnet = [f"203.0.113.{n}" for n in range(1, 7)]
        for address in botnet:
            problem(sign_in(url, "ana@example.com", GUESS, address), 401, "invalid_credentials")
        # Under attack, every address that failed on the account waits after one failure...
        for address in botnet:
            problem(sign_in(url, "ana@example.com", GUESS, address), 429, "login_throttled")
        # ...and an address that did not fail is not slowed down at all.
        assert sign_in(url, "ana@example.com", DEFAULT_PASSWORD, OWNER_HOME).status_code == 200


def test_a_forwarded_for_header_from_an_untrusted_peer_changes_nothing(settings: Settings) -> None:
    settings.trusted_proxies = ["10.0.0.0/8"]  # loopback, where the test connects from, is not trusted
    settings.login_free_failures = 2
    with running(settings) as url:
        make_owner(url)
        problem(sign_in(url, "ana@example.com", GUESS, "203.0.113.1"), 401)
        problem(sign_in(url, "ana@example.com", GUESS, "203.0.113.2"), 401)
        # Every forged address was counted as the real peer, 127.0.0.1: it waits, whatever it says.
        problem(sign_in(url, "ana@example.com", DEFAULT_PASSWORD, "203.0.113.3"), 429, "login_throttled")
    database = Database(settings)
    try:
        with database.transaction(read_only=True) as session:
            addresses = set(session.exec(select(LoginFailure.address)).all())
    finally:
        database.dispose()
    assert addresses == {"127.0.0.1"}


def test_sign_ups_per_address_are_limited_across_processes(settings: Settings) -> None:
    settings.signup_max_per_address_per_hour = 3
    with running(settings) as first, running(settings) as second:
        assert [
            sign_up(url, f"w{i}@example.com", ATTACKER).status_code
            for i, url in enumerate([first, second, first])
        ] == [202, 202, 202]
        refused = problem(sign_up(second, "w3@example.com", ATTACKER), 429, "sign_up_throttled")
        assert 0 < refused["retry_after_s"] <= 3600
        problem(sign_up(first, "w4@example.com", ATTACKER), 429, "sign_up_throttled")
        # Another address is not affected.
        assert sign_up(second, "w5@example.com", OWNER_HOME).status_code == 202
    database = Database(settings)
    try:
        with database.transaction(read_only=True) as session:
            emails = set(session.exec(select(User.email).where(col(User.role) == Role.worker.value)).all())
    finally:
        database.dispose()
    assert emails == {"w0@example.com", "w1@example.com", "w2@example.com", "w5@example.com"}


def test_rate_limits_count_exactly_under_concurrency(settings: Settings) -> None:
    """30 threads at once for a limit of 7: exactly 7 pass, on SQLite and on PostgreSQL."""
    from fieldcheck import migrations

    migrations.upgrade(settings)
    database = Database(settings)
    limits = RateLimits(database)
    key = uuid.uuid4().hex
    answers: list[int | None] = []
    barrier = threading.Barrier(30)

    def hit() -> None:
        barrier.wait()
        answers.append(limits.hit("test", key, limit=7, window_s=3600, now=time.time()))

    threads = [threading.Thread(target=hit) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    database.dispose()
    assert answers.count(None) == 7
    assert all(isinstance(wait, int) and 0 < wait <= 3600 for wait in answers if wait is not None)


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("127.0.0.1", [], "127.0.0.1"),
        ("127.0.0.1", ["203.0.113.9"], "203.0.113.9"),
        # The client wrote the left part itself; the right-most untrusted hop is who connected.
        ("127.0.0.1", ["6.6.6.6, 203.0.113.9"], "203.0.113.9"),
        ("127.0.0.1", ["6.6.6.6", "203.0.113.9, 10.1.2.3"], "203.0.113.9"),
        ("127.0.0.1", ["10.1.2.3, 10.4.5.6"], "10.1.2.3"),
        ("127.0.0.1", ["unknown, 203.0.113.9"], "203.0.113.9"),
        ("127.0.0.1", ["203.0.113.9, garbage"], "127.0.0.1"),
        ("127.0.0.1", ["[2001:db8::7]:443"], "2001:db8::7"),
        ("127.0.0.1", ["203.0.113.9:51000"], "203.0.113.9"),
        ("198.51.100.1", ["203.0.113.9"], "198.51.100.1"),  # not a trusted proxy: header ignored
    ],
)
def test_the_client_address_is_the_right_most_untrusted_hop(
    peer: str, forwarded: list[str], client: str
) -> None:
    networks = Settings(trusted_proxies="127.0.0.1/32, ::1, 10.0.0.0/8").trusted_proxy_networks
    assert client_address(peer, forwarded, networks) == client


def test_trusted_proxies_and_the_token_secret_are_validated(tmp_path: Any) -> None:
    assert Settings(home=tmp_path, trusted_proxies='["10.0.0.0/8"]').trusted_proxies == ["10.0.0.0/8"]
    with pytest.raises(ValueError, match="not an address"):
        Settings(home=tmp_path, trusted_proxies="10.0.0.0/8, example.com")
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Settings(home=tmp_path, token_secret="x")
    assert Settings(home=tmp_path, token_secret="x" * 32).secret == b"x" * 32


def test_throttle_delays_double_up_to_the_maximum() -> None:
    settings = Settings(login_delay_base_s=2, login_delay_max_s=60)
    assert [throttle_delay(n, 3, settings) for n in range(9)] == [0, 0, 0, 2, 4, 8, 16, 32, 60]
    assert throttle_delay(10_000, 3, settings) == 60
