"""The admins' pages: overview (money, ledger verify), users and organizations, payouts, reversals."""

from __future__ import annotations

from typing import Any

ROUTES: list[Any] = []
