"""/docs in a real browser with the internet out of reach (issue #8 §6): every request the page makes
goes to 127.0.0.1, the page renders the service's operations, and the console shows no error."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.async_api import Page

from tests.browser.conftest import LiveService, LiveServices, PageLog

SERVICES = ["enrollment", "claims", "payments", "notifications"]
# An operation each service's page must show once rendered (from its OpenAPI document).
OPERATION = {"enrollment": "/api/v1/auth/token", "claims": "/api/v1/claims", "payments": "/api/v1/payment-batches",
             "notifications": "/api/v1/me/notifications"}


def assert_stayed_local(log: PageLog, service: LiveService) -> None:
    assert log.requests, "the page made no request at all"
    outside = [url for url in log.requests if urlsplit(url).hostname != "127.0.0.1"]
    assert outside == [], f"{service.name}: requests leaving the machine: {outside}"
    assert log.failed == [], log.failed
    assert log.console_errors == [], log.console_errors


@pytest.mark.parametrize("name", SERVICES)
async def test_swagger_ui_renders_every_operation_from_the_service_alone(
        live_services: LiveServices, page: tuple[Page, PageLog], name: str) -> None:
    service = await live_services(name)
    browser_page, log = page
    response = await browser_page.goto(f"{service.url}/docs", wait_until="networkidle")
    assert response is not None and response.status == 200
    await browser_page.wait_for_selector(".opblock-summary", state="visible", timeout=20_000)
    paths = await browser_page.locator(".opblock-summary-path").all_inner_texts()
    assert any(OPERATION[name] in p.replace("\u200b", "") for p in paths), paths
    assert len(paths) >= 3
    loaded = {urlsplit(u).path for u in log.requests}
    assert {"/docs", "/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css", "/openapi.json"} <= loaded
    assert_stayed_local(log, service)

