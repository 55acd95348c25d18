"""HTTP conventions shared by every controller: route decorators, pages and cursors."""

from __future__ import annotations

import base64
import binascii
import inspect
import json
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import litestar
from pydantic import BaseModel

from fieldcheck.errors import BadRequest

T = TypeVar("T")

MAX_PAGE_LIMIT = 200
DEFAULT_PAGE_LIMIT = 50


def _route(decorator: Any) -> Callable[..., Callable[[Callable[..., Any]], Any]]:
    """Litestar's decorator, running plain functions in the thread pool (the database is sync)."""

    def factory(path: str | None = None, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        def apply(fn: Callable[..., Any]) -> Any:
            if not inspect.iscoroutinefunction(fn):
                kwargs.setdefault("sync_to_thread", True)
            return decorator(path, **kwargs)(fn)

        return apply

    return factory


get = _route(litestar.get)
post = _route(litestar.post)
put = _route(litestar.put)
patch = _route(litestar.patch)
delete = _route(litestar.delete)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


def encode_cursor(values: dict[str, Any]) -> str:
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest("the cursor is not one this API gave out", code="invalid_cursor") from None
    if not isinstance(value, dict):
        raise BadRequest("the cursor is not one this API gave out", code="invalid_cursor")
    return value
