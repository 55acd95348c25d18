"""The clients' pages before the results: stores, a new campaign, money, a campaign's life."""

from __future__ import annotations

from typing import Any

ROUTES: list[Any] = []
