"""HTTP conventions shared by every controller, defined once: route decorators (the unit of work),
pages, their limit and cursor parameters, and request bodies spooled to disk."""

from __future__ import annotations

import functools
import inspect
import tempfile
import typing
from collections.abc import Callable
from typing import IO, Annotated, Any, Generic, TypeVar, cast

import anyio
import litestar
from litestar._signature.types import ExtendedMsgSpecValidationError  # what Litestar maps to 400
from litestar.enums import ScopeType
from litestar.params import Parameter
from litestar.plugins.pydantic import PydanticInitPlugin
from litestar.plugins.pydantic.plugins.init import is_pydantic_v2_model_class
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Receive, Scope, Send
from pydantic import BaseModel, BeforeValidator, Field, ValidationError
from sqlmodel import Session

from fieldcheck.errors import BadRequest, PayloadTooLarge
from fieldcheck.i18n import _, text

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


# Amounts of money in requests: whole cents, a JSON integer (never true or "12"), at most
# ten billion in the currency's unit: far above any real payment, far below what a 64-bit column
# or a JavaScript number holds exactly.
MAX_AMOUNT_CENTS = 1_000_000_000_000


def _json_integer(value: Any) -> Any:
    if isinstance(value, bool | str | bytes):
        raise ValueError("must be a JSON integer")
    return value


# A count or an amount in a body: a JSON integer (1.0 is one, as JSON Schema says), never `true`
# or a string of digits, which lax validation would turn into numbers.
JsonInt = Annotated[int, BeforeValidator(_json_integer)]
Cents = Annotated[JsonInt, Field(gt=0, le=MAX_AMOUNT_CENTS)]

# A name or a title that must not be blank, as the schema says it: at least one character that
# str.strip() and str.split() keep (Python's whitespace includes the separators \x1c-\x1f, which
# Unicode's does not), and no NUL anywhere (no text may hold one: `refuse_unsafe_text`), written so
# that Python's re, pydantic's Rust regex and JSON Schema's ECMA 262 read it alike. Only the schema
# carries it; the field's validator strips and says "must not be blank" in words.
_SPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK = rf"^[^\x00]*[^\x00{_SPACE}][^\x00]*$"


def not_blank_schema() -> dict[str, Any]:
    """The `json_schema_extra` of a field that must not be blank (a new dict: Litestar edits it)."""
    return {"pattern": NOT_BLANK}


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
                raise PayloadTooLarge(
                    text(_("the body may be at most {limit} bytes"), limit=max_bytes), max_bytes=max_bytes
                )
            await anyio.to_thread.run_sync(spooled.write, chunk)
    except BaseException:
        spooled.close()
        raise
    spooled.seek(0)
    return spooled


# Requests -----------------------------------------------------------------------------------
# Far deeper than any body of the API (three levels at most), far shallower than the decoder's
# own recursion limit.
MAX_JSON_DEPTH = 32
CHECKED_KEY = "fieldcheck_text_checked"


def refuse_unsafe_text(value: Any, *, source: str) -> None:
    """No NUL character in any text (PostgreSQL cannot store one), no structure nested too deep.

    Walks the decoded value without recursion, so a hostile body cannot exhaust the stack.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise BadRequest(
                    text(_("text in the {source} may not contain NUL characters"), source=source),
                    code="nul_character",
                )
            if not item.isascii():
                try:
                    item.encode()
                except UnicodeEncodeError:  # a lone surrogate (\ud800): not text any database stores
                    raise BadRequest(
                        text(_("text in the {source} is not valid Unicode"), source=source),
                        code="invalid_text",
                    ) from None
        elif isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise BadRequest(
                    text(
                        _("the {source} is nested more than {limit} levels deep"),
                        source=source,
                        limit=MAX_JSON_DEPTH,
                    ),
                    code="too_deeply_nested",
                )
            if isinstance(item, dict):
                stack.extend((key, depth + 1) for key in item)
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)


class ApiRequest(litestar.Request[Any, Any, Any]):
    """Litestar's request, with bodies that are safe to hand to the domains and the database."""

    async def json(self) -> Any:
        try:
            value = await super().json()
        except RecursionError:
            raise BadRequest(
                text(
                    _("the {source} is nested more than {limit} levels deep"),
                    source="body",
                    limit=MAX_JSON_DEPTH,
                ),
                code="too_deeply_nested",
            ) from None
        self._check_once(value)
        return value

    async def form(self) -> Any:
        form = await super().form()
        self._check_once([text for pair in form.multi_items() for text in pair if isinstance(text, str)])
        return form

    def _check_once(self, value: Any) -> None:
        state = self.scope.setdefault("state", {})
        if not state.get(CHECKED_KEY):
            refuse_unsafe_text(value, source="body")
            state[CHECKED_KEY] = True


def refuse_nul_in_url_middleware(app: ASGIApp) -> ASGIApp:
    """A NUL character in the path or the query is refused before any handler sees it."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            query = scope.get("query_string", b"")
            if "\x00" in scope["path"] or b"%00" in query or b"\x00" in query:
                raise BadRequest(text(_("the URL may not contain NUL characters")), code="nul_character")
        await app(scope, receive, send)

    return middleware


def allow_every_method(app: litestar.Litestar) -> None:
    """OPTIONS answers list every method of the path.

    Litestar makes a path's OPTIONS handler with its first handler and keeps it when the others
    are merged in, so `Allow` named only the first method (GET and DELETE of one assignment gave
    `Allow: DELETE, OPTIONS`). Each one now reads the methods of the route it ended up in.
    """
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        allow = ", ".join(sorted(route.methods))
        for handler in route.route_handlers:
            if handler.http_methods == {"OPTIONS"} and handler.handler_name == "options_handler":
                handler._fn = _options_answer(allow)  # type: ignore[assignment]


def _options_answer(allow: str) -> Callable[[Scope], litestar.Response[None]]:
    def options_handler(scope: Scope) -> litestar.Response[None]:
        return litestar.Response(
            content=None, status_code=204, headers={"Allow": allow}, media_type="text/plain"
        )

    return options_handler


class FieldStrictPydantic(PydanticInitPlugin):
    """Bodies validated as their models say, field by field.

    Litestar validates request bodies with `model_validate(value, strict=False)`, which turns
    every `StrictInt` and `StrictFloat` lax again: `true` was an amount of 1 cent and `false` a
    longitude. Called without `strict`, each field's own setting holds.
    """

    @classmethod
    def decoders(
        cls, validate_strict: bool = False
    ) -> list[tuple[Callable[[Any], bool], Callable[[Any, Any], Any]]]:
        return [
            (predicate, _validate_as_declared if predicate is is_pydantic_v2_model_class else decoder)
            for predicate, decoder in super().decoders(validate_strict)
        ]


def _validate_as_declared(model_type: type[BaseModel], value: Any) -> BaseModel:
    try:
        return model_type.model_validate(value)
    except ValidationError as error:
        hide_input = model_type.model_config.get("hide_input_in_errors", False)
        raise ExtendedMsgSpecValidationError(
            errors=cast("Any", error.errors(include_input=not hide_input))
        ) from error
