"""The OpenAPI document says what the server does: its error answers, and the limits in force.

Mobile teams generate their clients from /schema/openapi.json, so a status or a limit missing
from it is a bug in their app. Two things are added here to what Litestar derives from the
handlers, once for every route:

- The error answers each route gives, all `application/problem+json` with one Problem schema:
  400 (an invalid request) everywhere; 401 and 403 where a token is needed; 404 where a path names
  something or an account is read; 409 on every change (a rule of the current state) and on the
  reads that depend on it; 413 where a body is read; 422 where a body or query is checked against
  rules; 429 where attempts are throttled. A handler can describe an answer more precisely (its `responses`): that stays.
- Limits that come from settings (largest photo, photo types, currencies, search radius and
  page size) are
  written into the schemas from the settings in force, so the document and the server agree
  whatever the deployment configured.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from litestar import Litestar
from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIFormat,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
)
from pydantic import BaseModel

from fieldcheck.errors import PROBLEM_MEDIA_TYPE
from fieldcheck.idempotency import HEADER, KEY_PATTERN
from fieldcheck.results import views as result_views
from fieldcheck.settings import Settings

PROBLEM_SCHEMA = "Problem"
NO_NUL_PATTERN = "^[^\\u0000]*$"
# Sign-in answers 401 for a wrong e-mail address or password, without a token.
CREDENTIAL_PATHS = frozenset({"/api/v1/auth/token"})
# Where attempts are throttled (sign-in, sign-up, a new password) or requests limited per account
# and address (fieldcheck.ratelimit.BUCKETS), as (path, method).
THROTTLED = frozenset(
    {
        ("/api/v1/auth/token", "post"),
        ("/api/v1/auth/register", "post"),
        ("/api/v1/me/password", "post"),
        ("/api/v1/tasks/nearby", "get"),
        ("/api/v1/tasks/{task_id}/reservations", "post"),
        ("/api/v1/assignments/{assignment_id}/photos", "post"),
        ("/api/v1/assignments/{assignment_id}/submit", "post"),
        ("/api/v1/campaigns/{campaign_id}/exports", "post"),
        ("/api/v1/me/export", "post"),
    }
)
STORE_IMPORT = "/api/v1/stores/import"
RESULTS = "/api/v1/campaigns/{campaign_id}/results"
# Bodies naming a currency: the accepted ones are those with a pay floor.
CURRENCY_INPUTS = ("DepositIn", "PayoutIn", "CampaignCreate")
CHANGING_METHODS = ("post", "put", "patch", "delete")
# Reads that depend on the state of what they name: a statement exists for rejections only.
STATE_READ_PATHS = frozenset({"/api/v1/assignments/{assignment_id}/statement"})
ERROR_DESCRIPTIONS = {
    400: "The request is malformed or a value is invalid (`validation_error` with `errors` per field, "
    "`nul_character`, `too_deeply_nested`, `invalid_text`, `invalid_value`, `idempotency_key_required`).",
    401: "No valid credentials (`invalid_credentials`) or access token (`not_authenticated`, "
    "`invalid_token`, `token_expired`, `token_revoked`, `account_inactive`); sign in again.",
    403: "The token's role or organization may not do this (`wrong_role`, `no_organization`).",
    404: "Nothing with this id that this account may see.",
    409: "The current state does not allow it (see `code`: e.g. `no_slot_left`, `already_reserved`, "
    "`reservation_limit_reached`, `insufficient_funds`, `idempotency_key_reused`).",
    413: "The body is larger than this route accepts.",
    422: "The request is well-formed but a rule refuses it (see `code` and `errors`; on lists, "
    "`invalid_cursor`: not a cursor this API gave out).",
    429: "Too many attempts or requests: wait the `Retry-After` seconds (`login_throttled`, "
    "`sign_up_throttled`, `rate_limited`).",
}


def problem_schema() -> Schema:
    text = Schema(type=OpenAPIType.STRING)
    field_error = Schema(
        type=OpenAPIType.OBJECT,
        required=["message"],
        description="One error: which field (of the body, query, path or header) and why; a file "
        "import names the line instead, and the field when one column is at fault.",
        properties={
            "field": Schema(
                one_of=[Schema(type=OpenAPIType.STRING), Schema(type=OpenAPIType.NULL)],
                description="the field's name (dotted for nested ones); the column of an imported line",
            ),
            "message": text,
            "source": Schema(type=OpenAPIType.STRING, enum=["body", "query", "path", "header"]),
            "line": Schema(type=OpenAPIType.INTEGER, description="the line of an imported file"),
        },
    )
    return Schema(
        type=OpenAPIType.OBJECT,
        title=PROBLEM_SCHEMA,
        description="RFC 9457 problem details. `code` is stable: clients branch on it, never on `detail`.",
        required=["type", "code", "title", "status", "detail"],
        properties={
            "type": Schema(type=OpenAPIType.STRING, description="urn:fieldcheck:problem:<code>"),
            "code": Schema(type=OpenAPIType.STRING, description="machine-readable reason"),
            "title": text,
            "status": Schema(type=OpenAPIType.INTEGER),
            "detail": Schema(type=OpenAPIType.STRING, description="for people; may change"),
            "instance": Schema(type=OpenAPIType.STRING, description="the path that was asked for"),
            "request_id": Schema(type=OpenAPIType.STRING, description="quote it when reporting a problem"),
            "errors": Schema(type=OpenAPIType.ARRAY, items=field_error, description="per field, when known"),
            "retry_after_s": Schema(type=OpenAPIType.INTEGER, description="with 429: seconds to wait"),
        },
        additional_properties=True,
    )


def _error_statuses(path: str, method: str, operation: Operation) -> list[int]:
    statuses = {400}
    parameters = [p for p in operation.parameters or [] if isinstance(p, Parameter)]
    secured = bool(operation.security)
    if secured:
        statuses |= {401, 403, 404}
    if any(p.param_in == "path" for p in parameters):
        statuses.add(404)
    if method in CHANGING_METHODS or path in STATE_READ_PATHS:
        statuses.add(409)
    if operation.request_body is not None:
        statuses |= {413, 422}
    if any(p.param_in == "query" for p in parameters) or operation.request_body is not None:
        statuses.add(422)
    if (path, method) in THROTTLED:
        statuses.add(429)
    if path in CREDENTIAL_PATHS:
        statuses.add(401)
    return sorted(statuses)


def _problem_response(status: int) -> OpenAPIResponse:
    headers: dict[str, OpenAPIHeader | Reference] | None = None
    if status == 429:
        headers = {"Retry-After": OpenAPIHeader(schema=Schema(type=OpenAPIType.INTEGER), required=True)}
    if status == 401:
        headers = {"WWW-Authenticate": OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING), required=True)}
    return OpenAPIResponse(
        description=ERROR_DESCRIPTIONS[status],
        headers=headers,
        content={
            PROBLEM_MEDIA_TYPE: OpenAPIMediaType(schema=Reference(f"#/components/schemas/{PROBLEM_SCHEMA}"))
        },
    )


def _set(schema: Any, **values: Any) -> None:
    for name, value in values.items():
        setattr(schema, name, value)


def _follow_settings(openapi: OpenAPI, settings: Settings) -> None:
    schemas = openapi.components.schemas or {}
    upload = schemas.get("PhotoUploadIn")
    if upload is not None and upload.properties:
        _set(upload.properties["size_bytes"], maximum=settings.photo_max_bytes)
        _set(upload.properties["content_type"], enum=list(settings.photo_types), min_length=None)
    for name in CURRENCY_INPUTS:
        schema = schemas.get(name)
        if schema is not None and schema.properties:
            _set(schema.properties["currency"], enum=sorted(settings.pay_floor_cents_per_hour))
    results = (openapi.paths or {}).get(RESULTS)
    if results is not None and results.get is not None:
        for parameter in results.get.parameters or []:
            if isinstance(parameter, Parameter) and parameter.name == "status":
                for schema in _schemas_in(parameter.schema):
                    if schema.type == OpenAPIType.STRING:
                        schema.pattern = result_views.status_pattern()
    nearby = (openapi.paths or {}).get("/api/v1/tasks/nearby")
    if nearby is not None and nearby.get is not None:
        for parameter in nearby.get.parameters or []:
            if isinstance(parameter, Parameter) and isinstance(parameter.schema, Schema):
                if parameter.name == "radius_m":
                    _set(parameter.schema, maximum=settings.nearby_max_radius_m)
                elif parameter.name == "limit":
                    _set(parameter.schema, maximum=settings.nearby_max_limit)


def _require_idempotency_keys(operation: Operation) -> None:
    """The header is optional to the handler (so that its absence gets our own problem, 400
    `idempotency_key_required`), never to a client: the document says so."""
    for parameter in operation.parameters or []:
        if isinstance(parameter, Parameter) and parameter.param_in == "header" and parameter.name == HEADER:
            parameter.required = True
            parameter.description = (
                "Any unique string (1 to 255 printable ASCII characters), sent again unchanged when "
                "the request is retried: a retry gets the first answer and changes nothing twice."
            )
            parameter.schema = Schema(
                type=OpenAPIType.STRING, min_length=1, max_length=255, pattern=KEY_PATTERN.pattern
            )


def _schemas_in(node: Any) -> Iterator[Schema]:
    """Every Schema object under `node` (properties, items, alternatives), depth first."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Schema):
            yield item
            stack.extend((item.properties or {}).values())
            stack.extend(item.one_of or [])
            stack.extend(item.any_of or [])
            stack.extend(item.all_of or [])
            stack.extend(i for i in (item.items, item.additional_properties) if isinstance(i, Schema))
        elif isinstance(item, list | tuple):
            stack.extend(item)


def _is_plain_text(schema: Schema) -> bool:
    types = schema.type if isinstance(schema.type, list | tuple) else [schema.type]
    return OpenAPIType.STRING in types and not (
        schema.enum or schema.format or schema.pattern or schema.const
    )


def _forbid_unknown_fields(schemas: dict[str, Schema]) -> None:
    """Bodies refuse fields they do not know (extra="forbid"): the document says so."""
    pending: list[type[BaseModel]] = [BaseModel]
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        schema = schemas.get(model.__name__)
        if schema is not None and model.model_config.get("extra") == "forbid":
            schema.additional_properties = False


def _any_case(name: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in name)


# E-mail addresses are checked by email-validator, which refuses special-use domains (RFC 6761:
# `.test`, `.localhost`...): a pattern says so, built from its own list.
EMAIL_PATTERN = "^(?!.*[@.](" + "|".join(_any_case(n) for n in SPECIAL_USE_DOMAIN_NAMES) + ")$)"


def _text_without_nul(openapi: OpenAPI) -> None:
    """Text never holds NUL (the server answers 400 `nul_character`): every free string says so.
    E-mail addresses say which domains they may not be at."""
    roots: list[Any] = list((openapi.components.schemas or {}).values())
    for item in (openapi.paths or {}).values():
        for method in ("get", "put", "post", "delete", "patch"):
            operation: Operation | None = getattr(item, method)
            if operation is not None:
                roots.extend(p.schema for p in operation.parameters or [] if isinstance(p, Parameter))
    for schema in _schemas_in(roots):
        if _is_plain_text(schema):
            schema.pattern = NO_NUL_PATTERN
        elif schema.format == OpenAPIFormat.EMAIL and not schema.pattern:
            schema.pattern = EMAIL_PATTERN


def _raw_bodies(openapi: OpenAPI, settings: Settings) -> None:
    """Handlers that read their body themselves (a CSV file) describe it here."""
    item = (openapi.paths or {}).get(STORE_IMPORT)
    if item is None or item.post is None:
        return
    csv_text = Schema(
        type=OpenAPIType.STRING,
        max_length=settings.store_import_max_bytes,
        description="UTF-8 (a BOM is fine), `,` or `;`; header external_ref,name,address,lat,lon[,geofence_m]",
    )
    item.post.request_body = RequestBody(
        required=True,
        description="The stores as CSV: the body itself, or the one file of a form.",
        content={
            "text/csv": OpenAPIMediaType(schema=csv_text),
            "multipart/form-data": OpenAPIMediaType(
                schema=Schema(
                    type=OpenAPIType.OBJECT,
                    required=["file"],
                    properties={"file": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)},
                )
            ),
        },
    )
    responses = item.post.responses or {}
    responses["415"] = OpenAPIResponse(
        description="Not CSV nor a multipart form (`unsupported_media_type`).",
        content={
            PROBLEM_MEDIA_TYPE: OpenAPIMediaType(schema=Reference(f"#/components/schemas/{PROBLEM_SCHEMA}"))
        },
    )
    item.post.responses = responses


def complete(app: Litestar, settings: Settings) -> None:
    """Write the error answers and the limits in force into the app's OpenAPI document."""
    openapi = app.openapi_schema
    if openapi.components.schemas is None:
        openapi.components.schemas = {}
    openapi.components.schemas[PROBLEM_SCHEMA] = problem_schema()
    _raw_bodies(openapi, settings)
    for path, item in (openapi.paths or {}).items():
        for method in ("get", "put", "post", "delete", "patch"):
            operation: Operation | None = getattr(item, method)
            if operation is None:
                continue
            responses = operation.responses if operation.responses is not None else {}
            for status in _error_statuses(path, method, operation):
                existing = responses.get(str(status))
                if (
                    isinstance(existing, OpenAPIResponse)
                    and existing.content
                    and PROBLEM_MEDIA_TYPE in existing.content
                ):
                    continue  # the handler described it itself
                responses[str(status)] = _problem_response(status)
            operation.responses = responses
            _require_idempotency_keys(operation)
    _follow_settings(openapi, settings)
    _forbid_unknown_fields(openapi.components.schemas)
    _text_without_nul(openapi)
