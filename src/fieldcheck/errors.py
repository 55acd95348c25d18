"""Domain errors carry their HTTP meaning; one set of handlers renders RFC 9457 problem details."""

from __future__ import annotations

import logging
import secrets
from contextvars import ContextVar
from typing import Any

from litestar import Request, Response
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from sqlalchemy.exc import DataError

from fieldcheck.i18n import Text, _, render, text

log = logging.getLogger("fieldcheck.errors")

PROBLEM_MEDIA_TYPE = "application/problem+json"
REQUEST_ID_HEADER = "x-request-id"
request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
# The job being run, for its log lines: (job id, actor name).
job_var: ContextVar[tuple[str, str] | None] = ContextVar("job", default=None)


class DomainError(Exception):
    """A business rule said no. Subclasses fix the status; `code` is stable for API clients.

    `detail` is a Text (a message id of the catalogues and its values) when a worker may read it:
    the answer gives it in the request's language; `self.detail` is its English.
    """

    status_code = 400
    code = "bad_request"
    title = _("Bad request")

    def __init__(self, detail: str | Text, *, code: str | None = None, **extra: Any) -> None:
        self.text = detail if isinstance(detail, Text) else None
        self.detail = detail.english if isinstance(detail, Text) else detail
        super().__init__(self.detail)
        if code is not None:
            self.code = code
        self.extra = extra
        self.headers: dict[str, str] = {}

    def localized_detail(self) -> str:
        return self.text.render() if self.text is not None else self.detail


class BadRequest(DomainError):
    status_code = 400
    code = "bad_request"
    title = _("Bad request")


class Unauthorized(DomainError):
    status_code = 401
    code = "unauthorized"
    title = _("Not authenticated")

    def __init__(self, detail: str | Text, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail, code=code, **extra)
        self.headers["WWW-Authenticate"] = 'Bearer realm="fieldcheck"'


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"
    title = _("Not allowed")


class NotFound(DomainError):
    status_code = 404
    code = "not_found"
    title = _("Not found")


class Conflict(DomainError):
    status_code = 409
    code = "conflict"
    title = _("Conflict")


class PreconditionFailed(DomainError):
    status_code = 412
    code = "precondition_failed"
    title = _("Precondition failed")


class PreconditionRequired(DomainError):
    status_code = 428
    code = "precondition_required"
    title = _("Precondition required")


class PayloadTooLarge(DomainError):
    status_code = 413
    code = "payload_too_large"
    title = _("Payload too large")


class UnsupportedMediaType(DomainError):
    status_code = 415
    code = "unsupported_media_type"
    title = _("Unsupported media type")


class Unprocessable(DomainError):
    status_code = 422
    code = "unprocessable"
    title = _("Unprocessable request")


class TooManyRequests(DomainError):
    status_code = 429
    code = "too_many_requests"
    title = _("Too many requests")

    def __init__(
        self, detail: str | Text, *, retry_after_s: int, code: str | None = None, **extra: Any
    ) -> None:
        super().__init__(detail, code=code, retry_after_s=retry_after_s, **extra)
        self.headers["Retry-After"] = str(retry_after_s)


def field_error(field: str, message: str | Text, source: str = "body") -> dict[str, str]:
    """One entry of a problem's `errors` list: which field (of the body, query or path) and why.

    Every field error of the API has this shape, whether it comes from validation or a rule. A
    Text message is written in the language of the request being served.
    """
    return {
        "field": field,
        "message": render(message.message, message.params) if isinstance(message, Text) else message,
        "source": source,
    }


def problem_body(
    *, status: int, code: str, title: str, detail: str, instance: str | None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"urn:fieldcheck:problem:{code}",
        "code": code,
        "title": render(title),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body["request_id"] = request_id_var.get()
    body.update(extra)
    return body


def problem_response(
    request: Request[Any, Any, Any] | None,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response[dict[str, Any]]:
    instance = request.url.path if request is not None else None
    body = problem_body(status=status, code=code, title=title, detail=detail, instance=instance)
    body.update({k: v for k, v in extra.items() if k not in body})
    return Response(content=body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def domain_error_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, Any]]:
    return problem_response(
        request,
        status=exc.status_code,
        code=exc.code,
        title=exc.title,
        detail=exc.localized_detail(),
        headers=exc.headers or None,
        **exc.extra,
    )


def _field_errors(extra: Any) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    for item in extra if isinstance(extra, list) else []:
        if isinstance(item, dict):
            errors.append(
                field_error(
                    item.get("key") or "body",
                    str(item.get("message", "invalid value")),
                    item.get("source") or "body",
                )
            )
    return errors


def validation_error_handler(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, Any]]:
    errors = _field_errors(exc.extra)
    fields = ", ".join(sorted({e["field"] for e in errors}))
    detail = (
        text(_("Invalid value for: {fields}."), fields=fields).render()
        if errors
        else (exc.detail or render(_("The request is not valid.")))
    )
    return problem_response(
        request,
        status=400,
        code="validation_error",
        title=_("Invalid request"),
        detail=detail,
        errors=errors,
    )


_HTTP_CODES = {
    400: ("bad_request", _("Bad request")),
    401: ("unauthorized", _("Not authenticated")),
    403: ("forbidden", _("Not allowed")),
    404: ("not_found", _("Not found")),
    405: ("method_not_allowed", _("Method not allowed")),
    409: ("conflict", _("Conflict")),
    413: ("payload_too_large", _("Payload too large")),
    415: ("unsupported_media_type", _("Unsupported media type")),
    429: ("too_many_requests", _("Too many requests")),
}


def http_exception_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    if status >= 500:
        return internal_error_handler(request, exc)
    code, title = _HTTP_CODES.get(status, ("http_error", _("Request failed")))
    headers = dict(exc.headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="fieldcheck"')
    return problem_response(
        request,
        status=status,
        code=code,
        title=title,
        # Litestar's own details are English; the bare status phrase is given in the reader's language.
        detail=exc.detail if exc.detail and exc.detail.lower() != str(title).lower() else render(title),
        headers=headers or None,
    )


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.error(
        "unexpected error on %s %s (request %s)",
        request.method,
        request.url.path,
        request_id_var.get(),
        exc_info=exc,
    )
    return problem_response(
        request,
        status=500,
        code="internal_error",
        title=_("Internal error"),
        detail=render(_("Something went wrong on our side; quote the request id if you report it.")),
    )


def data_error_handler(request: Request[Any, Any, Any], exc: DataError) -> Response[dict[str, Any]]:
    """The database refused a value (a number out of range, text it cannot store).

    Requests are validated before they reach it, so this is a safety net: the request changed
    nothing (its transaction is rolled back) and gets a 400, and the gap is logged to be closed.
    """
    log.warning("the database refused a value on %s %s: %s", request.method, request.url.path, exc.orig)
    return problem_response(
        request,
        status=400,
        code="invalid_value",
        title=_("Invalid value"),
        detail=render(_("a value of the request is out of range or cannot be stored; nothing was changed")),
    )


EXCEPTION_HANDLERS: dict[Any, Any] = {
    DomainError: domain_error_handler,
    DataError: data_error_handler,
    ValidationException: validation_error_handler,
    HTTPException: http_exception_handler,
    Exception: internal_error_handler,
}


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """Give every request an id (the caller's X-Request-ID if sane), echo it, and log with it."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        incoming = next((v for k, v in scope["headers"] if k == REQUEST_ID_HEADER.encode()), b"")
        request_id = incoming.decode("latin-1") if _sane_request_id(incoming) else secrets.token_hex(8)
        token = request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)

    return middleware


def _sane_request_id(value: bytes) -> bool:
    return 0 < len(value) <= 64 and all(chr(c).isalnum() or chr(c) in "-_." for c in value)


class RequestIdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True
