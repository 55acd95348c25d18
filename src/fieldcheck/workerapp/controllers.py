"""The workers' phone app, served by fieldcheck itself at /app/ (no build step, no CDN), and the
small page at / that sends people to it or to the console.

The app is a handful of static files and the texts of the chosen language; everything else it
reads and writes through the JSON API, like any native app would. Its shell (these files) is
cached by its service worker, so it opens in a store's basement too.
"""

from __future__ import annotations

import hashlib
from functools import cache
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from litestar import Controller, Request, Response
from litestar.di import NamedDependency
from litestar.params import FromPath

from fieldcheck.errors import NotFound
from fieldcheck.i18n import LANGUAGES, _, negotiate, text, translate
from fieldcheck.settings import Settings
from fieldcheck.web import get
from fieldcheck.workerapp.texts import TEXTS

STATIC = Path(__file__).parent / "static"
FILES = {
    "app.js": "text/javascript",
    "app.css": "text/css",
    "manifest.webmanifest": "application/manifest+json",
    "icon.svg": "image/svg+xml",
    "icon-192.png": "image/png",
    "icon-512.png": "image/png",
}
SHELL = ("index.html", *FILES)


def _csp(settings: Settings) -> str:
    """Only the app's own files run; it talks to the API and to the object storage it uploads to."""
    connect = ["'self'"]
    for endpoint in (settings.s3_public_endpoint_url, settings.s3_endpoint_url):
        if endpoint and settings.s3_bucket:
            parts = urlsplit(endpoint)
            connect.append(f"{parts.scheme}://{parts.netloc}")
    if settings.s3_bucket and not (settings.s3_public_endpoint_url or settings.s3_endpoint_url):
        connect.append("https://*.amazonaws.com")
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data: http: https:; "
        f"connect-src {' '.join(dict.fromkeys(connect))}; manifest-src 'self'; worker-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    )


def _headers(settings: Settings, *, document: bool) -> dict[str, str]:
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        # The shell is checked for a newer version at every load (the service worker serves it offline).
        "Cache-Control": "no-cache",
    }
    if document:
        headers.update({"Content-Security-Policy": _csp(settings), "X-Frame-Options": "DENY"})
    return headers


@cache
def _read(name: str) -> bytes:
    return (STATIC / name).read_bytes()


@cache
def shell_version() -> str:
    """Changes whenever a file of the shell or a text changes: the service worker's cache name."""
    digest = hashlib.sha256()
    for name in SHELL:
        digest.update(_read(name))
    for language in LANGUAGES:
        digest.update(repr(sorted(texts_in(language).items())).encode())
    return digest.hexdigest()[:12]


@cache
def texts_in(language: str) -> dict[str, str]:
    return {key: translate(message, language) for key, message in TEXTS.items()}


class WorkerAppController(Controller):
    path = "/"
    include_in_schema = False

    @get("/")
    def landing(self, request: Request[Any, Any, Any]) -> Response[str]:
        """A small page instead of a JSON 404: workers to the app, the others to the console."""
        language = negotiate(request.headers.get("accept-language"))
        title = escape(text(_("fieldcheck: photo tasks in stores, checked and paid")).render(language))
        worker = escape(text(_("I do tasks in stores: open the app")).render(language))
        console = escape(text(_("I review work or run campaigns: open the console")).render(language))
        docs = escape(text(_("The API and its documentation")).render(language))
        page = (
            f'<!doctype html><html lang="{language}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>fieldcheck</title><link rel="stylesheet" href="/app/app.css"></head>'
            f'<body class="landing"><main><h1>fieldcheck</h1><p>{title}</p>'
            f'<p><a class="button primary wide" href="/app/">{worker}</a></p>'
            f'<p><a class="button wide" href="/console/">{console}</a></p>'
            f'<p><a href="/schema">{docs}</a></p></main></body></html>'
        )
        settings: Settings = request.app.state.runtime.settings
        return Response(page, media_type="text/html", headers=_headers(settings, document=True))

    @get("/app/")
    def index(self, settings: NamedDependency[Settings]) -> Response[bytes]:
        return Response(
            _read("index.html"),
            media_type="text/html",
            headers=_headers(settings, document=True),
        )

    @get("/app/sw.js")
    def service_worker(self, settings: NamedDependency[Settings]) -> Response[bytes]:
        body = _read("sw.js").replace(b"__VERSION__", shell_version().encode())
        return Response(
            body,
            media_type="text/javascript",
            headers={**_headers(settings, document=False), "Service-Worker-Allowed": "/app/"},
        )

    @get("/app/texts/{language:str}")
    def texts(self, language: FromPath[str], settings: NamedDependency[Settings]) -> Response[dict[str, str]]:
        chosen = language.removesuffix(".json")
        if chosen not in LANGUAGES:
            raise NotFound(text(_("no texts in that language")), code="language_not_found")
        return Response(texts_in(chosen), headers=_headers(settings, document=False))

    @get("/app/{name:str}")
    def file(self, name: FromPath[str], settings: NamedDependency[Settings]) -> Response[bytes]:
        if name not in FILES:
            raise NotFound(text(_("no such file")), code="not_found")
        return Response(_read(name), media_type=FILES[name], headers=_headers(settings, document=False))
