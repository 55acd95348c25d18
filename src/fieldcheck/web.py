"""HTTP conventions shared by every controller, defined once: route decorators (the unit of work),
pages, their limit and cursor parameters, and request bodies spooled to disk."""

from __future__ import annotations

import functools
import inspect
import tempfile
import typing
from collections.abc import Callable
from typing import IO, Annotated, Any, Generic, TypeVar

import anyio
import litestar
from litestar.params import Parameter
from pydantic import BaseModel
from sqlmodel import Session

from fieldcheck.errors import PayloadTooLarge

T = TypeVar("T")

MAX_PAGE_LIMIT = 200
DEFAULT_PAGE_LIMIT = 50
MAX_CURSOR_LENGTH = 500
SPOOL_IN_MEMORY_BYTES = 1024 * 1024

# The query parameters of every list: `limit` (capped) and the opaque `cursor` of the next page.
PageLimit = Annotated[
    int, Parameter(ge=1, le=MAX_PAGE_LIMIT, description=f"items per page, at most {MAX_PAGE_LIMIT}")
]
PageCursor = Annotated[
    str | None,
    Parameter(
        max_length=MAX_CURSOR_LENGTH, description="next_cursor of the previous page; none for the first"
    ),
]


SESSION_PARAMETER = "db_session"
FINISHED_KEY = "fieldcheck_unit_of_work_finished"


def finish_unit_of_work(session: Session) -> None:
    """Commit and close; on a failed commit, roll back. Marks the session so it is done once."""
    if session.info.get(FINISHED_KEY):
        return
    session.info[FINISHED_KEY] = True
    try:
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def discard_unit_of_work(session: Session) -> None:
    if session.info.get(FINISHED_KEY):
        return
    session.info[FINISHED_KEY] = True
    try:
        session.rollback()
    finally:
        session.close()


def _unit_of_work(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A sync handler that takes the request's session commits it in its own worker thread.

    The request's session dependency then has nothing left to do, which saves a second trip to
    the thread pool on every request. The edge still owns the transaction: this wrapper is it.
    """
    hints = typing.get_type_hints(fn, include_extras=True)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        session: Session = kwargs[SESSION_PARAMETER]
        try:
            result = fn(*args, **kwargs)
        except BaseException:
            discard_unit_of_work(session)
            raise
        finish_unit_of_work(session)
        return result

    # Litestar reads the annotations of the wrapper: give it the resolved ones of the handler.
    wrapper.__annotations__ = hints
    return wrapper


def _route(decorator: Any) -> Callable[..., Callable[[Callable[..., Any]], Any]]:
    """Litestar's decorator, running plain functions in the thread pool (the database is sync)."""

    def factory(path: str | None = None, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        def apply(fn: Callable[..., Any]) -> Any:
            if not inspect.iscoroutinefunction(fn):
                kwargs.setdefault("sync_to_thread", True)
                if SESSION_PARAMETER in inspect.signature(fn).parameters:
                    fn = _unit_of_work(fn)
            return decorator(path, **kwargs)(fn)

        return apply

    return factory


get = _route(litestar.get)
post = _route(litestar.post)
put = _route(litestar.put)
patch = _route(litestar.patch)
delete = _route(litestar.delete)


class Page(BaseModel, Generic[T]):
    """One page of a list; `next_cursor` asks for the next one, None on the last."""

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
