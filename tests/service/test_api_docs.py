"""/docs of every service loads every script, style and image from the service itself (issue #8 §6): union
intranets are often cut off from the internet, so nothing may come from a CDN. There is no /redoc (ReDoc
fetches its logo from its vendor's CDN, shared/apidocs.py).

The real browser's view (every request it makes, the page rendering) is tests/browser/test_api_docs_browser.py.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest

from tests.conftest import ServiceClient

SERVICES = ["enrollment", "claims", "payments", "notifications"]
MEDIA_TYPES = {".js": ("text/javascript", "application/javascript"), ".css": ("text/css",), ".png": ("image/png",)}


class _References(HTMLParser):
    """Every URL a page names: src, href, ReDoc's spec-url, and URLs or paths in inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_script = tag == "script"
        for name, value in attrs:
            if name in ("src", "href", "spec-url") and value:
                self.urls.append(value)

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:  # inline set-up code: any absolute URL or quoted path in it
            self.urls += re.findall(r"""https?://[^\s'"]+""", data)
            self.urls += re.findall(r"""['"](/[^'"\s]*)['"]""", data)


def references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    return parser.urls


@pytest.mark.parametrize("name", SERVICES)
async def test_the_docs_page_names_only_same_origin_urls_and_each_is_served(rolled_back: ServiceClient,
                                                                           name: str) -> None:
    _, client = await rolled_back(name)
    page = "/docs"
    r = await client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    urls = references(r.text)
    assets = [u for u in urls if urlsplit(u).path.rsplit(".", 1)[-1] in ("js", "css", "png")]
    assert assets, f"{page} names no script or style: {urls}"
    assert "/openapi.json" in urls
    origin = str(client.base_url)
    for url in urls:
        absolute = urljoin(origin + page, url)
        assert urlsplit(absolute).netloc == urlsplit(origin).netloc, f"{page} of {name} names {url}"
    for url in assets:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        suffix = "." + urlsplit(url).path.rsplit(".", 1)[-1]
        assert asset.headers["content-type"].split(";")[0] in MEDIA_TYPES[suffix], (url, asset.headers)
        assert len(asset.content) > 1000, url  # the real file, not an empty placeholder


async def test_the_swagger_page_loads_the_bundle_its_style_and_icon(rolled_back: ServiceClient) -> None:
    _, client = await rolled_back("enrollment")
    html = (await client.get("/docs")).text
    for asset in ("/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css", "/docs-assets/favicon.png"):
        assert asset in html
    assert (await client.get("/redoc")).status_code == 404
    bundle = await client.get("/docs-assets/swagger-ui-bundle.js")
    assert b"SwaggerUIBundle" in bundle.content


async def test_an_asset_that_does_not_exist_is_404(rolled_back: ServiceClient) -> None:
    _, client = await rolled_back("claims")
    assert (await client.get("/docs-assets/nothing.js")).status_code == 404
    assert (await client.get("/docs-assets/../../pyproject.toml")).status_code == 404


async def test_the_openapi_document_lists_the_api_but_not_the_docs_pages(rolled_back: ServiceClient) -> None:
    _, client = await rolled_back("payments")
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/api/v1/payment-batches" in paths
    assert not {"/docs", "/docs/oauth2-redirect"} & set(paths)
