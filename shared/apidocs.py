"""API documentation pages that work on a network cut off from the internet (issue #8 §6).

FastAPI's own `/docs` and `/redoc` load Swagger UI and ReDoc from a CDN; union intranets often cannot reach
one. Every service serves `/docs` itself instead: the HTML comes from FastAPI's helper, and each script,
style sheet and icon it names comes from this service, from the files the `fastapi-offline` package ships
(its `static/` folder: swagger-ui-bundle.js, swagger-ui.css, favicon.png). Swagger UI is told not to call the
public validator. There is no `/redoc`: ReDoc's bundle fetches its own logo from the vendor's CDN whatever it
is told (tests/browser caught it), so it cannot work cut off from the internet.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["ASSETS_DIR", "ASSETS_PATH", "install_api_docs"]

ASSETS_PATH = "/docs-assets"  # where the files are served, same origin as the pages
ASSETS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"


def install_api_docs(app: FastAPI, title: str) -> None:
    """`/docs` (Swagger UI), every asset from `ASSETS_PATH`. The app must be built with `docs_url=None,
    redoc_url=None` so that FastAPI's CDN-based pages are not registered as well."""
    if not (ASSETS_DIR / "swagger-ui-bundle.js").is_file():  # a broken install: say so at start-up
        raise RuntimeError(f"API documentation assets missing in {ASSETS_DIR}")
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} - API",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon.png",
            oauth2_redirect_url=OAUTH2_REDIRECT,
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(OAUTH2_REDIRECT, include_in_schema=False, response_class=HTMLResponse)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
