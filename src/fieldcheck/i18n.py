"""French and English for every text a worker reads: check explanations, decisions, problem details.

English is the source language: texts are written in the code as gettext message ids, marked with
`_()` (which returns them unchanged) so Babel's extractor finds them; `locale/messages.pot` is that
extraction, and `locale/fr/LC_MESSAGES/messages.po` their French translation (read at start: no
compile step). A test keeps the code, the template and the French catalogue in step.

A text that depends on values is a `Text`: a message id with named `{placeholders}` and their
values. It is stored as such (check results, history, decision reasons) and rendered in the
reader's language when read: numbers are written the way that language writes them (1.5 px,
1,5 px). The language of a request comes from its `Accept-Language` header (`negotiate`), or from
the app's own setting, which sends that header.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from babel import Locale
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

LANGUAGES = ("en", "fr")
DEFAULT_LANGUAGE = "en"
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"

# The language of the request or job being served (set by the app's middleware).
language_var: ContextVar[str] = ContextVar("language", default=DEFAULT_LANGUAGE)


def _(message: str) -> str:
    """Mark a message id for the catalogues; it is translated when rendered, not here."""
    return message


@functools.cache
def catalogue(language: str) -> Mapping[str, str]:
    """Message id -> translation, for a language other than the source (empty for English)."""
    if language == DEFAULT_LANGUAGE:
        return {}
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as handle:
        found = read_po(handle, locale=language)
    return {
        str(message.id): str(message.string)
        for message in found
        if message.id and message.string and not message.fuzzy and isinstance(message.id, str)
    }


def translate(message: str, language: str | None = None) -> str:
    """The message in `language` (the current one by default); the English id when untranslated."""
    chosen = language or language_var.get()
    return catalogue(chosen).get(message, message) if chosen in LANGUAGES else message


class _LocaleFormatter(string.Formatter):
    """str.format, but floats and ints are written as the language writes numbers."""

    def __init__(self, language: str) -> None:
        self.locale = Locale.parse(language)

    def format_field(self, value: Any, format_spec: str) -> str:
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if not numeric or (format_spec and not (format_spec.startswith(".") and format_spec[-1] in "f%")):
            return str(super().format_field(value, format_spec))
        if not format_spec and isinstance(value, int):
            return str(value)  # counts and sizes in pixels: as they are, in every language
        percent = format_spec.endswith("%")
        digits = int(format_spec[1:-1] or 0) if format_spec else None
        pattern = None if digits is None else "0" + ("." + "0" * digits if digits else "")
        written = str(format_decimal(value * 100 if percent else value, format=pattern, locale=self.locale))
        if percent:
            written += "\u00a0%" if self.locale.language == "fr" else "%"
        return written


@functools.cache
def _formatter(language: str) -> _LocaleFormatter:
    return _LocaleFormatter(language)


def render(message: str, params: Mapping[str, Any] | None = None, language: str | None = None) -> str:
    """The message in `language` with its placeholders filled, numbers written as it writes them.
    Parameters that are Texts themselves are rendered in the same language first."""
    chosen = language or language_var.get()
    if chosen not in LANGUAGES:
        chosen = DEFAULT_LANGUAGE
    values = {
        key: value.render(chosen) if isinstance(value, Text) else value
        for key, value in (params or {}).items()
    }
    template = translate(message, chosen)
    return _formatter(chosen).vformat(template, (), values) if values else template


@dataclass(frozen=True)
class Text:
    """A message id and its values: what is stored, rendered in the reader's language."""

    message: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def render(self, language: str | None = None) -> str:
        return render(self.message, self.params, language)

    @property
    def english(self) -> str:
        return self.render(DEFAULT_LANGUAGE)

    def as_json(self) -> dict[str, Any]:
        return {"message": self.message, "params": {k: _json(v) for k, v in self.params.items()}}

    @classmethod
    def from_json(cls, stored: Mapping[str, Any]) -> Text:
        params = {k: cls.from_json(v) if _is_text(v) else v for k, v in (stored.get("params") or {}).items()}
        return cls(str(stored["message"]), params)


def _json(value: Any) -> Any:
    return value.as_json() if isinstance(value, Text) else value


def _is_text(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"message", "params"}


def text(message: str, **params: Any) -> Text:
    """A Text of a message id marked for the catalogues: `text(_("{n} photos"), n=3)`."""
    return Text(message, params)


def render_stored(
    stored: Mapping[str, Any] | None, fallback: str | None, language: str | None = None
) -> str | None:
    """A stored Text (JSON) in the reader's language; `fallback` (the English stored beside it)
    for rows written before texts were stored."""
    if not stored:
        return fallback
    return Text.from_json(stored).render(language)


def negotiate(accept_language: str | None) -> str:
    """The best of LANGUAGES for an Accept-Language header (RFC 9110 quality values)."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _sep, rest = part.strip().partition(";")
        quality = 1.0
        for parameter in rest.split(";"):
            name, _eq, value = parameter.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary == "*":
            primary = DEFAULT_LANGUAGE
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else DEFAULT_LANGUAGE


CONTENT_LANGUAGE = b"content-language"


def language_middleware(app: Any) -> Any:
    """Serve each request in the language its Accept-Language header asks for (English or French):
    problem details, check explanations, decisions. The answer says which (Content-Language)."""

    async def middleware(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        header = next((v for k, v in scope["headers"] if k == b"accept-language"), b"")
        language = negotiate(header.decode("latin-1"))
        token = language_var.set(language)

        async def send_with_language(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != CONTENT_LANGUAGE]
                headers += [(CONTENT_LANGUAGE, language.encode()), (b"vary", b"Accept-Language")]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await app(scope, receive, send_with_language)
        finally:
            language_var.reset(token)

    return middleware
