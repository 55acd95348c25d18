"""The one cursor codec of the API: what a page ends with comes back exactly, anything else is a
clear 400, never a crash."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldcheck.errors import Unprocessable
from fieldcheck.pagination import Position, decode_cursor, encode_cursor

# Hypothesis takes naive bounds and adds the time zone itself.
EARLIEST, LATEST = datetime(2000, 1, 1), datetime(2100, 1, 1)  # noqa: DTZ001


@given(
    at=st.datetimes(timezones=st.just(UTC), min_value=EARLIEST, max_value=LATEST),
    identifier=st.uuids(),
)
def test_a_position_comes_back_exactly(at: datetime, identifier: uuid.UUID) -> None:
    cursor = encode_cursor(Position(at, identifier))
    assert decode_cursor(cursor) == Position(at, identifier)
    assert cursor.isascii() and "=" not in cursor  # safe in a query string as it is


def test_no_cursor_is_the_first_page() -> None:
    assert decode_cursor(None) is None
    assert decode_cursor("") is None


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "%%%",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b'{"t": "yesterday", "i": "x"}').decode(),
        base64.urlsafe_b64encode(b'{"t": "2026-01-01T00:00:00+00:00"}').decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_anything_else_is_a_clear_400(cursor: str) -> None:
    with pytest.raises(Unprocessable) as refused:
        decode_cursor(cursor)
    assert refused.value.code == "invalid_cursor"


@given(st.text(max_size=80))
def test_no_input_crashes_the_codec(cursor: str) -> None:
    """Any text decodes to a position or is refused as invalid_cursor; nothing else escapes."""
    refused: Unprocessable | None = None
    try:
        decode_cursor(cursor)
    except Unprocessable as error:
        refused = error
    assert refused is None or refused.code == "invalid_cursor"
