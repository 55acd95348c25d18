"""Password hashing: argon2id at the configured cost."""

from __future__ import annotations

from fieldcheck.auth.security import Passwords
from fieldcheck.settings import Settings


def test_password_hashes_are_argon2id_with_the_configured_cost() -> None:
    passwords = Passwords(Settings())
    hashed = passwords.hash("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert "m=65536,t=3,p=4" in hashed
    assert passwords.verify(hashed, "correct horse battery")
    assert not passwords.verify(hashed, "correct horse batterx")
    assert not passwords.verify(None, "correct horse battery")
