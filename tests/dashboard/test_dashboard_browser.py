"""The ops dashboard page in headless Chromium: the centre and an office log in, the figures on the page equal
what the services' APIs say for the same user (and what the world built), no console errors, screenshots."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest

from deploy.client import Session
from deploy.localstack import Stack
from tests.dashboard.conftest import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, PASSWORD, DashWorld

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def zh_money(value: str | Decimal) -> str:
    """What the page shows for an amount: 1,234.50元 below 10,000, 12.35万元 from there on."""
    v = Decimal(value)
    if abs(v) >= 10000:
        return f"{(v / 10000).quantize(Decimal('0.01'), ROUND_HALF_UP):,}万元"
    return f"{v.quantize(Decimal('0.01'), ROUND_HALF_UP):,}元"


def test_zh_money_matches_the_pages_rule() -> None:
    assert zh_money("1950.00") == "1,950.00元"
    assert zh_money("123456.78") == "12.35万元"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "Debian's chromium is missing: `make browser-deps` installs it"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


class Page:
    """One logged-in page with every console error and uncaught exception collected."""

    def __init__(self, browser: Any, stack: Stack, viewport: dict[str, int]) -> None:
        self.context = browser.new_context(viewport=viewport, locale="zh-CN", timezone_id="Asia/Shanghai")
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.stack = stack

    def login(self, username: str, period: str) -> None:
        self.page.goto(f"{self.stack.dashboard_url()}/?period={period}")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("form#login button[type=submit]")
        self.page.wait_for_selector(f"body[data-loaded='{period}']", timeout=30000)

    def value(self, element_id: str) -> str:
        return str(self.page.get_attribute(f"#{element_id}", "data-value"))

    def text(self, element_id: str) -> str:
        return str(self.page.text_content(f"#{element_id}")).strip()

    def column(self, table_id: str, key: str) -> list[str]:
        return [str(v) for v in self.page.eval_on_selector_all(
            f"#{table_id} tbody td[data-key='{key}']", "cells => cells.map(c => c.dataset.sort)")]

    def close(self) -> None:
        self.context.close()


def same_number(shown: str, value: str) -> bool:
    """The page keeps raw values as JavaScript prints them (20.0 is "20"); amounts stay decimal strings."""
    if shown == value:
        return True
    try:
        return Decimal(shown) == Decimal(value)
    except ArithmeticError:
        return False


def api_figures(session: Session, period: str) -> dict[str, Any]:
    return {"overdue": [c for c in session.get("claims", "/api/v1/claims/overdue") if c["period"] == period],
            "enrollment": session.get("enrollment", f"/api/v1/stats/periods/{period}/enrollment"),
            "remittance": session.get("enrollment", f"/api/v1/periods/{period}/remittance-report")["totals"],
            "claims": session.get("claims", f"/api/v1/stats/periods/{period}/claims"),
            "payments": session.get("payments", f"/api/v1/stats/periods/{period}/payments")}


def check_page_matches_api(page: Page, figures: dict[str, Any]) -> None:
    e, r, c, p = figures["enrollment"]["totals"], figures["remittance"], figures["claims"], figures["payments"]
    expected = {
        "k-members": (str(e["members"]), str(e["members"])),
        "k-members-prev": (str(e["members_previous"]), None),
        "k-fees-due": (e["fees_due"], zh_money(e["fees_due"])),
        "k-fees-received": (e["fees_received"], "已收 " + zh_money(e["fees_received"])),
        "k-gap": (r["gap"], zh_money(r["gap"])),
        "k-remitted": (r["remitted"], "已上解 " + zh_money(r["remitted"])),
        "k-claims": (str(c["total"]), str(c["total"])),
        "k-overdue": (str(c["overdue"]["count"]), f"超期 {c['overdue']['count']} 件"),
        "k-approved": (c["aid"]["approved"], zh_money(c["aid"]["approved"])),
        "k-paid": (p["paid"]["amount"], "已支付 " + zh_money(p["paid"]["amount"])),
        "d-median": (str(c["days_to_payment"]["median"]), None),
        "d-p90": (str(c["days_to_payment"]["p90"]), None),
        "ds-median": (str(c["days_to_submission"]["median"]), None),
        "ds-p90": (str(c["days_to_submission"]["p90"]), None),
        "da-median": (str(c["days_to_approval"]["median"]), None),
        "da-p90": (str(c["days_to_approval"]["p90"]), None),
        "b-count": (str(c["bureau"]["from_bureau"]), None),
        "b-total": (str(c["bureau"]["claims"]), None),
        "p-batches": (str(p["awaiting_release"]["batches"]), None),
        "p-awaiting": (str(p["awaiting_release"]["instructions"]), None),
        "p-awaiting-amount": (p["awaiting_release"]["amount"], zh_money(p["awaiting_release"]["amount"])),
        "p-failed": (str(p["failed_to_fix"]["count"]), None),
        "p-recoveries": (str(p["recoveries_due"]["count"]), None),
    }
    for element_id, (value, text) in expected.items():
        shown = page.value(element_id)
        assert same_number(shown, value), (element_id, shown, value)
        if text is not None:
            assert page.text(element_id) == text, (element_id, page.text(element_id), text)
    units = figures["enrollment"]["units"]
    assert sorted(page.column("t-units", "unit")) == sorted(u["unit"] for u in units)
    assert sorted(page.column("t-units", "members")) == sorted(str(u["members"]) for u in units)
    statuses = {k: v for k, v in c["by_status"].items()}
    assert page.page.evaluate("Chart.getChart('chart-status').data.datasets[0].data") == list(statuses.values())
    assert page.column("t-overdue", "claim_id") == [o["claim_id"] for o in figures["overdue"]]
    assert page.column("t-overdue", "org") == [o["org"] for o in figures["overdue"]]
    failed_claims = page.column("t-failed", "claim_id")
    assert failed_claims == [i["claim_id"] for i in p["failed_to_fix"]["items"]]


def test_the_centre_sees_every_office_and_the_figures_match_the_api(
        browser: Any, dash_stack: Stack, dash_world: DashWorld) -> None:
    page = Page(browser, dash_stack, {"width": 1366, "height": 900})
    try:
        page.login("centre", dash_world.period)
        figures = api_figures(dash_world.login("centre"), dash_world.period)
        check_page_matches_api(page, figures)
        # What the world built (so the comparison above cannot pass on two empty pages).
        assert page.value("k-members") == "15" and page.value("k-members-prev") == "5"
        assert page.value("k-fees-due") == "2250.00" and page.value("k-gap") == "950.00"
        assert page.value("k-claims") == "5" and page.value("d-median") == "20"
        assert sorted(page.column("t-units", "unit")) == sorted(dash_world.units.values())
        overview = httpx.get(f"{dash_stack.dashboard_url()}/api/overview", params={"period": dash_world.period},
                             headers={"Authorization": f"Bearer {dash_world.login('centre').token}"}, timeout=30).json()
        assert same_number(page.value("k-ratio"), str(overview["payout"][-1]["payout_ratio_to_date"]))
        assert "𠮷" in page.text("t-units") and "䶮" in page.text("t-units")
        health = page.page.eval_on_selector_all("#t-health tbody td[data-key='service']",
                                                "cells => cells.map(c => c.textContent)")
        assert health == ["enrollment", "claims", "payments", "notifications"]
        assert page.column("t-health", "up") == ["true"] * 4
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.page.screenshot(path=str(ARTIFACTS / "dashboard-centre.png"), full_page=True)
        page.page.screenshot(path=str(ARTIFACTS / "dashboard-centre-top.png"))  # the first screen (README)
        assert page.errors == []
    finally:
        page.close()


def test_an_office_sees_its_branch_only_and_the_tables_sort(
        browser: Any, dash_stack: Stack, dash_world: DashWorld) -> None:
    page = Page(browser, dash_stack, {"width": 1280, "height": 900})
    try:
        page.login("office", dash_world.period)
        check_page_matches_api(page, api_figures(dash_world.login("office"), dash_world.period))
        assert page.value("k-members") == "10" and page.value("k-members-prev") == "3"
        assert page.value("k-fees-due") == "1500.00" and page.value("k-gap") == "200.00"
        assert page.value("k-claims") == "4" and page.value("p-awaiting") == "1" and page.value("p-failed") == "1"
        assert page.value("b-count") == "1" and page.value("b-total") == "4"
        # The overdue claim waits at the agency point: the agency point must act, the office sees it.
        assert page.value("k-overdue") == "1"
        assert page.column("t-overdue", "org") == [f"{dash_world.office}-WH"]
        assert page.column("t-overdue", "current_level") == ["agency_point"]
        assert dash_world.units["u3"] not in page.page.content()  # the office "…-KM0" is not "…-KM"'s
        page.page.click("#t-units th:nth-child(3)")  # 本期人数, ascending
        assert page.column("t-units", "members") == ["4", "6"]
        page.page.click("#t-units th:nth-child(3)")
        assert page.column("t-units", "members") == ["6", "4"]
        page.page.screenshot(path=str(ARTIFACTS / "dashboard-office.png"), full_page=True)
        assert page.errors == []
    finally:
        page.close()


def test_an_agency_point_on_a_phone_sees_its_units_without_remittances(
        browser: Any, dash_stack: Stack, dash_world: DashWorld) -> None:
    page = Page(browser, dash_stack, {"width": 390, "height": 844})
    try:
        page.login("agency", dash_world.period)
        figures = dash_world.login("agency").get("enrollment", f"/api/v1/stats/periods/{dash_world.period}/enrollment")
        assert page.value("k-members") == str(figures["totals"]["members"]) == "10"
        assert page.value("k-fees-due") == figures["totals"]["fees_due"] == "1500.00"
        assert page.text("k-gap") == "—"  # remittances are an office's business (remittance-report)
        assert sorted(page.column("t-fees", "unit")) == sorted([dash_world.units["u1"], dash_world.units["u2"]])
        claims = dash_world.login("agency").get("claims", f"/api/v1/stats/periods/{dash_world.period}/claims")
        assert page.value("k-claims") == str(claims["total"]) == "4"
        width = page.page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways on a phone: {width}px"
        page.page.screenshot(path=str(ARTIFACTS / "dashboard-agency-phone.png"), full_page=True)
        page.page.screenshot(path=str(ARTIFACTS / "dashboard-agency-phone-top.png"))
        assert page.errors == []
    finally:
        page.close()


def test_a_unit_agent_is_refused_and_nothing_is_served_from_elsewhere(
        browser: Any, dash_stack: Stack, dash_world: DashWorld) -> None:
    page = Page(browser, dash_stack, {"width": 1280, "height": 800})
    requests: list[str] = []
    page.page.on("request", lambda req: requests.append(req.url))
    try:
        page.page.goto(dash_stack.dashboard_url() + "/")
        page.page.fill("input[name=username]", "agent1")
        page.page.fill("input[name=password]", PASSWORD)
        page.page.click("form#login button[type=submit]")
        page.page.wait_for_selector("#login-error:not(:empty)", timeout=15000)
        assert "看板仅供" in page.text("login-error")
        assert page.page.is_hidden("#board")
        assert requests and all(u.startswith(dash_stack.dashboard_url()) for u in requests), requests
    finally:
        page.close()
    r = httpx.get(f"{dash_stack.dashboard_url()}/api/overview", params={"period": dash_world.period}, timeout=10)
    assert r.status_code == 401 and r.json()["code"] == "missing_token"
