"""The API documentation over plain HTTP: a page and files of fieldcheck's own, under a strict
policy, so it works on a network without the internet; the OpenAPI document is unchanged."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldcheck.settings import Settings
from fieldcheck.web import NOT_BLANK
from tests.support.backends import BackendFactory
from tests.support.factories import problem

DOCS_PAGES = ("/schema", "/schema/swagger")
ATTRIBUTE_URL = re.compile(r'\b(?:src|href|data-openapi-url)="([^"]*)"')
TYPE_OF = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    "LICENSE": "text/plain; charset=utf-8",
}


@pytest.fixture(params=[pytest.param("embedded", id="embedded")])
def settings(request: pytest.FixtureRequest, backends: BackendFactory) -> Settings:
    return backends.make(request.param)


def directives(policy: str) -> dict[str, list[str]]:
    parsed = (part.split() for part in policy.split(";") if part.strip())
    return {name: sources for name, *sources in parsed}


def page_urls(page: str) -> list[str]:
    return [url.replace("&amp;", "&") for url in ATTRIBUTE_URL.findall(page)]


@pytest.mark.parametrize("path", DOCS_PAGES)
def test_the_page_loads_only_fieldchecks_own_files_under_a_strict_policy(app_client: Any, path: str) -> None:
    answer = app_client.get(path)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    page = answer.text
    assert "http://" not in page and "https://" not in page  # no CDN, no other site
    assert all(url.startswith("/schema/") for url in page_urls(page)), page_urls(page)
    scripts = [url.split("?")[0] for url in re.findall(r'<script src="([^"]+)"', page)]
    assert scripts == ["/schema/assets/swagger-ui-bundle.js", "/schema/assets/init.js"]
    assert page.count("<script") == 2  # both from files: no inline script
    assert not re.search(r"\son[a-z]+=", page)  # no inline event handler either
    assert 'data-openapi-url="/schema/openapi.json"' in page

    policy = directives(answer.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]  # neither 'unsafe-inline' nor 'unsafe-eval'
    assert policy["connect-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_the_files_the_page_names_are_served_with_their_types_and_kept_long(app_client: Any) -> None:
    urls = [url for url in page_urls(app_client.get("/schema").text) if "/assets/" in url]
    names = {url.split("/assets/")[1].split("?")[0] for url in urls}
    assert {"swagger-ui-bundle.js", "swagger-ui.css", "init.js", "favicon-32x32.png"} <= names
    for url in urls:
        answer = app_client.get(url)
        assert answer.status_code == 200, url
        name = url.split("/assets/")[1].split("?")[0]
        suffix = next(s for s in TYPE_OF if name.endswith(s))
        assert answer.headers["content-type"] == TYPE_OF[suffix], url
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.content
    # A changed file is a changed URL: the version is a digest of the content.
    assert len({url.split("?v=")[1] for url in urls}) == len(urls)

    start = app_client.get("/schema/assets/init.js").text
    assert "SwaggerUIBundle(" in start and "dataset.openapiUrl" in start
    assert "validatorUrl: null" in start  # Swagger UI would otherwise call validator.swagger.io
    assert "http://" not in start and "https://" not in start
    assert "SwaggerUIBundle" in app_client.get("/schema/assets/swagger-ui-bundle.js").text[:2000]
    assert "Apache License" in app_client.get("/schema/assets/LICENSE").text


@pytest.mark.parametrize(
    "name",
    [
        "nothing.js",
        "swagger-editor-bundle.js",  # in the package, not in the list
        "oauth2-redirect.html",
        "swagger-initializer.js",
        "..%2Fapidocs.py",
        "..%2F..%2F..%2Fpyproject.toml",
        "%2Fetc%2Fpasswd",
        "SWAGGER-UI.CSS",
    ],
)
def test_only_the_listed_files_are_served(app_client: Any, name: str) -> None:
    body = problem(app_client.get(f"/schema/assets/{name}"), 404, "not_found")
    assert "passwd" not in body["detail"] and "root:" not in str(body)


def test_the_openapi_document_is_served_as_before_without_the_documentation_routes(app_client: Any) -> None:
    answer = app_client.get("/schema/openapi.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/vnd.oai.openapi+json"
    document = answer.json()
    assert document["info"]["title"] == "fieldcheck API"
    assert "/api/v1/auth/token" in document["paths"]
    assert not [path for path in document["paths"] if path.startswith("/schema")]
    problem(app_client.get("/schema/openapi.yaml"), 404, "not_found")  # never served, still not


# Every character Python's str.strip() and str.split() treat as whitespace, and a few they keep.
PYTHON_SPACES = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())


@given(st.text(alphabet=st.sampled_from(PYTHON_SPACES + "a\u200b\x00\u00e9")))
def test_the_not_blank_pattern_says_what_the_validators_do(value: str) -> None:
    assert bool(value.strip()) == bool(" ".join(value.split()))
    assert bool(re.search(NOT_BLANK, value)) == (bool(value.strip()) and "\x00" not in value)


def test_the_openapi_document_says_which_texts_must_not_be_blank(app_client: Any) -> None:
    """So a client (and the contract tests) knows that a name of separators is refused."""
    schemas = app_client.get("/schema/openapi.json").json()["components"]["schemas"]
    fields = [
        ("StoreCreate", "name"),
        ("OrganizationCreate", "name"),
        ("CampaignCreate", "title"),
        ("CampaignCreate", "instructions"),
        ("RegisterIn", "display_name"),
    ]
    for schema, field in fields:
        declared = schemas[schema]["properties"][field]
        assert declared.get("pattern") == NOT_BLANK, (schema, field, declared)
