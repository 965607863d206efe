"""Real-browser tests: Debian's headless Chromium driven by the `playwright` package (never `playwright
install`: the browser comes from `apt-get install chromium`, which `make test` runs when it is missing).

`browser` is one Chromium for the session, started with its background traffic switched off, so that every
request a page makes is one the page asked for. `live_service` serves a service's real app over HTTP on a
free port of 127.0.0.1 (uvicorn in a thread, its own migrated database; the Kafka workers are not started,
the pages under test do not need them). Screenshots go to tests/artifacts/ (not committed).
"""

from __future__ import annotations

import asyncio
import importlib
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import uvicorn
from playwright.async_api import Browser, ConsoleMessage, Page, Route, async_playwright

from deploy.infra import Postgres, free_port
from shared.migrate import upgrade
from shared.service import build_app
from shared.settings import SETTINGS_BY_SERVICE
from tests.conftest import ROOT, fresh_database

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                                    headless=True)
        yield chromium
        await chromium.close()


@dataclass
class PageLog:
    """What a page did: every request it made, every console error, every uncaught exception."""

    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url}: {r.failure}"))
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.console_errors.append(f"uncaught: {e}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)


@pytest.fixture
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[tuple[Page, PageLog]]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = await context.new_page()
    log = PageLog()
    log.watch(page)

    async def stay_local(route: Route) -> None:  # recorded by PageLog; never let it leave the machine
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            await route.abort("blockedbyclient")

    await page.route("**/*", stay_local)
    yield page, log
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)
    await context.close()


@dataclass
class LiveService:
    name: str
    url: str


LiveServices = Callable[[str], Awaitable[LiveService]]


@pytest.fixture(scope="session")
async def live_services(pg: Postgres) -> AsyncIterator[LiveServices]:
    """Start (once per session) a service's app under uvicorn on 127.0.0.1 and give its base URL."""
    running: dict[str, tuple[LiveService, uvicorn.Server, threading.Thread]] = {}

    async def start(name: str) -> LiveService:
        if name in running:
            return running[name][0]
        database_url = fresh_database(pg, f"browser_{name}")
        await asyncio.to_thread(upgrade, ROOT / "services" / name / "migrations", database_url)
        port = free_port()
        settings = SETTINGS_BY_SERVICE[name](local_stack=True, database_url=database_url, port=port)
        app = build_app(importlib.import_module(f"services.{name}.app").spec(settings), run_workers=False)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, name=f"browser-{name}", daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start for the browser test")
            await asyncio.sleep(0.05)
        service = LiveService(name, f"http://127.0.0.1:{port}")
        running[name] = (service, server, thread)
        return service

    yield start
    for _service, server, thread in running.values():
        server.should_exit = True
        thread.join(timeout=10)
