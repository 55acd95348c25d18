"""GET /api/v1/transparency (JSON, public) and /transparency (a page), in French or English."""

from __future__ import annotations

from html import escape
from typing import Any

from litestar import Controller, Request, Response
from litestar.di import NamedDependency

from fieldcheck.i18n import _, language_var, text
from fieldcheck.settings import Settings
from fieldcheck.transparency.service import document
from fieldcheck.web import get

TITLE = _("How fieldcheck decides")
GENERATED = _("Generated from")
DECISION = _("The decision")
EVERY_CHECK = _("Every automated check")
READS = _("Reads")
MEASURES = _("Measures")
THRESHOLDS = _("Thresholds")
YOUR_DATA = _("Your data")

PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class TransparencyController(Controller):
    path = "/"
    tags = ["transparency"]

    @get(
        "/api/v1/transparency",
        summary="Every automated check and rule in force, generated from the code (public)",
        description="In the language of Accept-Language (French or English).",
    )
    def as_json(self, settings: NamedDependency[Settings]) -> dict[str, Any]:
        return document(settings)

    @get("/transparency", include_in_schema=False)
    def as_page(self, request: Request[Any, Any, Any], settings: NamedDependency[Settings]) -> Response[str]:
        found = document(settings)
        language = language_var.get()

        def say(message: str) -> str:
            return escape(text(message).render(language))

        parts = [
            f'<!doctype html><html lang="{language}"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{say(TITLE)}</title>",
            '<link rel="stylesheet" href="/app/app.css"></head><body><main>',
            f"<h1>{say(TITLE)}</h1>",
            f'<p class="muted">{say(GENERATED)}: {escape(found["generated_from"])}.</p>',
            f"<h2>{say(DECISION)}</h2><ul>",
            *[f"<li>{escape(line)}</li>" for line in found["decision"]],
            "</ul>",
            f"<h2>{say(EVERY_CHECK)}</h2>",
        ]
        for check in found["checks"]:
            parts += [
                f'<section class="checkgroup" id="{escape(check["name"])}"><h3>{escape(check["title"])} '
                f'<span class="muted small">({escape(check["name"])})</span></h3>',
                f"<p>{escape(check['when'])}.</p>",
                f"<p><strong>{say(READS)}:</strong> {escape(check['reads'])}.</p>",
                f"<p><strong>{say(MEASURES)}:</strong> {escape(check['measures'])}.</p>",
            ]
            if check["thresholds"]:
                parts.append(
                    f"<p><strong>{say(THRESHOLDS)}:</strong> {escape('; '.join(check['thresholds']))}.</p>"
                )
            parts.append("<ul>")
            parts += [
                f'<li><span class="tag {outcome}">{escape(outcome)}</span> {escape(effect)}</li>'
                for outcome, effect in check["outcomes"].items()
            ]
            parts.append("</ul>")
            parts += [f'<p class="muted">{escape(note)}</p>' for note in check["notes"]]
            parts.append("</section>")
        for key, title in (
            ("review", _("Review by a person")),
            ("appeal", _("Appeals")),
            ("pay_floor", _("The pay floor")),
            ("reservations", _("Reservations")),
        ):
            parts.append(f"<h2>{say(title)}</h2><p>{escape(found[key]['text'])}</p>")
        parts.append(f"<h2>{say(YOUR_DATA)}</h2><ul>")
        parts += [f"<li>{escape(line)}</li>" for line in found["data"]]
        parts.append("</ul></main></body></html>")
        return Response("".join(parts), media_type="text/html", headers=PAGE_HEADERS)
