"""HTTP conventions shared by every controller: route decorators, pages and cursors."""

from __future__ import annotations

import inspect
import tempfile
from collections.abc import Callable
from typing import IO, Any, Generic, TypeVar

import anyio
import litestar
from pydantic import BaseModel

from fieldcheck.errors import PayloadTooLarge

T = TypeVar("T")

MAX_PAGE_LIMIT = 200
DEFAULT_PAGE_LIMIT = 50
SPOOL_IN_MEMORY_BYTES = 1024 * 1024


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


async def spool_body(request: Any, max_bytes: int) -> IO[bytes]:
    """Copy the request body to a temporary file (in memory while small) without holding it twice."""
    spooled: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes:
                raise PayloadTooLarge(f"the body may be at most {max_bytes} bytes", max_bytes=max_bytes)
            await anyio.to_thread.run_sync(spooled.write, chunk)
    except BaseException:
        spooled.close()
        raise
    spooled.seek(0)
    return spooled
