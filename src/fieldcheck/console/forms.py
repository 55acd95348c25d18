"""What the console's forms share: the body type, reading values, errors placed by field."""

from __future__ import annotations

from typing import Annotated, Any

from litestar.enums import RequestEncodingType
from litestar.params import Body
from pydantic import ValidationError

from fieldcheck.errors import DomainError

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]


def one(form: dict[str, Any], name: str) -> str:
    """The field's value as sent (the first one, when sent several times); "" when missing."""
    value = form.get(name, "")
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value)


def stripped(form: dict[str, Any], name: str) -> str:
    return one(form, name).strip()


def many(form: dict[str, Any], name: str) -> list[str]:
    value = form.get(name, [])
    return [str(v) for v in value] if isinstance(value, list) else [str(value)] if value else []


def field_errors(
    exc: ValidationError, names: dict[str, str] | None = None, *, fallback: str = ""
) -> dict[str, str]:
    """pydantic's errors by form field (the first one of each; `names` maps the model's field
    names to the form's); an error of the whole model goes on `fallback`."""
    found: dict[str, str] = {}
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or fallback
        found.setdefault((names or {}).get(field, field), str(error["msg"]).removeprefix("Value error, "))
    return found


def problem_errors(
    exc: DomainError, names: dict[str, str] | None = None, *, fallback: str = ""
) -> dict[str, str]:
    """A problem's field errors by form field; a problem without any goes on `fallback`."""
    found: dict[str, str] = {}
    for error in exc.extra.get("errors") or []:
        field = str(error.get("field") or fallback)
        found.setdefault((names or {}).get(field, field), str(error.get("message") or exc.detail))
    return found or {fallback: exc.detail}
