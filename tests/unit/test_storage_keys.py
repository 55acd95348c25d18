"""Object keys cannot escape their place, whatever a caller passes."""

from __future__ import annotations

import pytest

from fieldcheck.errors import BadRequest
from fieldcheck.storage import validate_key


@pytest.mark.parametrize(
    "key", ["../etc/passwd", "a/../../b", "/abs", "a//b", "", "a/./b", "x" * 600, "a\\b"]
)
def test_keys_cannot_escape(key: str) -> None:
    with pytest.raises(BadRequest):
        validate_key(key)
