"""The API documentation at /schema: Swagger UI served by fieldcheck itself, under a strict policy.

Litestar's own render plugins load their script and styles from a public CDN, so on a closed
network the documentation stays blank. This page loads nothing from elsewhere: Swagger UI's files
come from the swagger-ui-py package (its static files only, read through importlib.resources) and
a small start script of our own lives beside them, because the page's policy runs no inline script.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from litestar import Request, Response, Router
from litestar.datastructures import ResponseHeader
from litestar.enums import MediaType
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.params import FromPath

from fieldcheck.errors import NotFound
from fieldcheck.web import get

ASSET_ROUTE = "fieldcheck-apidocs-asset"
# An asset's URL carries a digest of its content, so a browser may keep it for a year: another
# Swagger UI (or start script) is another URL.
ASSET_CACHE_CONTROL = "public, max-age=31536000, immutable"

# Swagger UI writes style attributes, hence 'unsafe-inline' for styles; scripts come only from here.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

# Litestar adds "; charset=utf-8" to text types itself.
JAVASCRIPT = "text/javascript"
CSS = "text/css"

# The only files of the swagger-ui-py package that are served, with their types: never a path.
SWAGGER_UI_FILES = {
    "swagger-ui-bundle.js": JAVASCRIPT,
    "swagger-ui.css": CSS,
    "index.css": CSS,
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
    "LICENSE": "text/plain",
}

START_SCRIPT = "init.js"
# The page names the OpenAPI document in a data attribute, so this file never changes per request.
START_SCRIPT_SOURCE = b"""\
"use strict";
// Starts Swagger UI on the page's #swagger-ui element, with the document its data-openapi-url names.
// validatorUrl null: Swagger UI would otherwise ask validator.swagger.io to check the document.
window.ui = SwaggerUIBundle({
  url: document.getElementById("swagger-ui").dataset.openapiUrl,
  dom_id: "#swagger-ui",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
"""


@dataclass(frozen=True)
class Asset:
    content: bytes
    media_type: str
    version: str  # a digest of the content, for the URL

    @classmethod
    def of(cls, content: bytes, media_type: str) -> Asset:
        return cls(content, media_type, hashlib.sha256(content).hexdigest()[:16])


@cache
def assets() -> dict[str, Asset]:
    """Every file the page may load, read once per process (about 1.7 MB, most of it the bundle)."""
    static = resources.files("swagger_ui") / "static"
    found = {
        name: Asset.of((static / name).read_bytes(), media_type)
        for name, media_type in SWAGGER_UI_FILES.items()
    }
    found[START_SCRIPT] = Asset.of(START_SCRIPT_SOURCE, JAVASCRIPT)
    return found


@get("/assets/{asset:str}", name=ASSET_ROUTE, include_in_schema=False, sync_to_thread=False)
def serve_asset(asset: FromPath[str]) -> Response[bytes]:
    found = assets().get(asset)
    if found is None:
        raise NotFound("the API documentation has no such file")
    return Response(
        found.content, media_type=found.media_type, headers={"Cache-Control": ASSET_CACHE_CONTROL}
    )


class SwaggerUIPage(OpenAPIRenderPlugin):
    """Swagger UI at the documentation's root and at /swagger, with its files served beside it."""

    def __init__(self) -> None:
        super().__init__(path=["/", "/swagger"], media_type=MediaType.HTML)
        assets()  # a broken install fails at start, not at someone's first visit

    def receive_router(self, router: Router) -> None:
        router.register(serve_asset)
        # The policy covers everything under the documentation's path: the page, its files, the
        # OpenAPI document and the not-found page; Litestar builds the page's handler itself.
        router.response_headers = [
            *(router.response_headers or ()),
            *(ResponseHeader(name=name, value=value) for name, value in PAGE_HEADERS.items()),
        ]

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        def url(name: str) -> str:
            location = request.app.route_reverse(ASSET_ROUTE, asset=name)
            return html.escape(f"{location}?v={assets()[name].version}")

        title = html.escape(str(openapi_schema.get("info", {}).get("title", "API")))
        document = html.escape(self.get_openapi_json_route(request))
        return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<!-- Swagger UI, Apache License 2.0: {url("LICENSE")} -->
<link rel="icon" type="image/png" sizes="32x32" href="{url("favicon-32x32.png")}">
<link rel="icon" type="image/png" sizes="16x16" href="{url("favicon-16x16.png")}">
<link rel="stylesheet" href="{url("swagger-ui.css")}">
<link rel="stylesheet" href="{url("index.css")}">
<script src="{url("swagger-ui-bundle.js")}" defer></script>
<script src="{url(START_SCRIPT)}" defer></script>
</head>
<body>
<div id="swagger-ui" data-openapi-url="{document}"></div>
<noscript><p>This page needs JavaScript. The OpenAPI document is at <a href="{document}">{document}</a>.</p></noscript>
</body>
</html>
""".encode()
