"""The clients' webhook pages: endpoints (create, rotate, disable), the delivery log, redelivery."""

from __future__ import annotations

from typing import Any

ROUTES: list[Any] = []
