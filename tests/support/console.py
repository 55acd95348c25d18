"""Signing in to the console over plain HTTP, for tests that check its rules without a browser."""

from __future__ import annotations

import re
from typing import Any

from tests.support.factories import Account

LOGIN_CSRF = re.compile(r'name="login_csrf" value="([^"]+)"')
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_in(client: Any, account: Account, *, next_path: str = "") -> Any:
    form = client.get("/console/login")
    assert form.status_code == 200, form.text
    token = LOGIN_CSRF.search(form.text)
    assert token is not None
    return client.post(
        "/console/login",
        data={
            "email": account.email,
            "password": account.password,
            "login_csrf": token.group(1),
            "next": next_path,
        },
        follow_redirects=False,
    )


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, html[:500]
    return found.group(1)
