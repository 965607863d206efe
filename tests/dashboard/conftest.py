"""The ops dashboard in a real browser (issue #14): the real stack on free ports with the dashboard process,
a world with two periods, offices, rosters, claims through approval and payment, and headless Chromium.

Chromium is Debian's (/usr/bin/chromium, `make browser-deps` installs it with apt-get when missing), driven by
Playwright's Python API with ``executable_path``: `playwright install` (a downloaded browser) is never used.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from deploy.client import Huzhu, Session, wait_for
from deploy.demo_data import open_period_document
from deploy.infra import free_port
from deploy.localstack import SERVICES, Stack
from deploy.people import person

PASSWORD = "dash-password"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
REVIEWER = {"agency_point": "agency", "office": "office", "centre": "centre"}


@pytest.fixture(scope="session")
def dash_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(home=tmp_path_factory.mktemp("dash-stack"), pg_port=free_port(), kafka_port=free_port(),
              ports={name: free_port() for name in SERVICES}, partitions=3, dashboard_port=free_port())
    try:
        s.start()
        yield s
    finally:
        s.stop()


@dataclass
class DashWorld:
    api: Huzhu
    period: str
    previous: str
    centre: str
    office: str
    trap_office: str  # an office whose code starts with the other's: the office must not see it
    units: dict[str, str]
    claims: dict[str, str] = field(default_factory=dict)

    def login(self, username: str) -> Session:
        return self.api.login(username, PASSWORD)


def claim_body(member_id: str, psn_part_amt: str, discharged_days_ago: int, setl_id: str) -> dict[str, Any]:
    discharge = date.today() - timedelta(days=discharged_days_ago)
    return {"member_id": member_id, "plan": "inpatient",
            "admission_date": (discharge - timedelta(days=6)).isoformat(), "discharge_date": discharge.isoformat(),
            "diagnosis": {"icd10": "I21.9", "name": "急性心肌梗死"},
            "settlement": settlement(setl_id, psn_part_amt)}


def settlement(setl_id: str, psn_part_amt: str) -> dict[str, Any]:
    """A stay's settlement whose parts add up (the bill is what the funds paid plus what the person bore)."""
    return {"setl_id": setl_id, "med_type": "21", "medfee_sumamt": "50000.00",
            "fund_pay_sumamt": f"{Decimal('50000.00') - Decimal(psn_part_amt):.2f}", "psn_part_amt": psn_part_amt,
            "fulamt_ownpay_amt": "0.00"}


def _roster(api: Huzhu, agent: str, period: str, unit: str, people: list[dict[str, Any]], pay: str | None,
            reference: str) -> list[str]:
    session = api.login(agent, PASSWORD)
    n = len(people)
    roster = session.post("enrollment", f"/api/v1/periods/{period}/units/{unit}/rosters",
                          json={"staff": {"total": n, "in_service": n, "basic_insured_in_service": n},
                                "members": people})
    if pay is not None:
        session.post("enrollment", f"/api/v1/rosters/{roster['roster_id']}/payments",
                     json={"amount": pay, "reference": reference, "paid_at": date.today().isoformat()})
    return [session.get("enrollment", "/api/v1/members", params={"certno": p["certno"]})[0]["member_id"]
            for p in people]


def _approve(world: DashWorld, claim_id: str) -> dict[str, Any]:
    agent = world.login("agent1")
    detail = agent.get("claims", f"/api/v1/claims/{claim_id}")
    while detail["status"] == "in_review":
        reviewer = world.login(REVIEWER[detail["approval"]["current_level"]])
        detail = reviewer.post("claims", f"/api/v1/claims/{claim_id}/decisions", json={
            "decision": "approve", "exclusions_checklist": {i["code"]: False for i in detail["exclusions_checklist"]}})
    return detail


def _instruction(finance: Session, claim_id: str) -> dict[str, Any]:
    found = wait_for(f"the instruction of {claim_id}", lambda: [
        i for i in finance.get("payments", "/api/v1/payment-instructions", params={"claim_id": claim_id})
        if i["status"] == "pending"], 60)
    return dict(found[0])


@pytest.fixture(scope="session")
def dash_world(dash_stack: Stack) -> DashWorld:
    api = Huzhu({name: dash_stack.url(name) for name in SERVICES})
    admin = api.login("admin", "admin")
    tag = uuid.uuid4().hex[:4].upper()
    c = f"D{tag}"
    tree = [(c, "云南省职工医疗互助中心", "centre", None),
            (f"{c}-KM", "昆明市办事处", "office", c), (f"{c}-KM0", "曲靖市办事处", "office", c),
            (f"{c}-KM-WH", "五华区代办点", "agency_point", f"{c}-KM"),
            (f"{c}-KM0-QL", "麒麟区代办点", "agency_point", f"{c}-KM0"),
            (f"{c}-KM-WH-001", "云南𠮷祥机械厂工会", "unit", f"{c}-KM-WH"),
            (f"{c}-KM-WH-002", "昆明䶮华印务公司工会", "unit", f"{c}-KM-WH"),
            (f"{c}-KM0-QL-001", "曲靖麒麟水泥厂工会", "unit", f"{c}-KM0-QL")]
    for code, name, level, parent in tree:
        admin.post("enrollment", "/api/v1/orgs", json={"code": code, "name": name, "level": level, "parent": parent})
    units = {"u1": f"{c}-KM-WH-001", "u2": f"{c}-KM-WH-002", "u3": f"{c}-KM0-QL-001"}
    staff = {"centre": ("centre_reviewer", c), "office": ("office_reviewer", f"{c}-KM"),
             "office0": ("office_reviewer", f"{c}-KM0"), "agency": ("agency_reviewer", f"{c}-KM-WH"),
             "agent1": ("unit_agent", units["u1"]), "agent2": ("unit_agent", units["u2"]),
             "agent3": ("unit_agent", units["u3"]), "finance": ("finance", c), "finance2": ("finance", c),
             "bureau": ("bureau", c)}
    for username, (role, org) in staff.items():
        admin.post("enrollment", "/api/v1/users", json={"username": username, "password": PASSWORD, "role": role,
                                                        "org": org})
    previous, period = f"dash-{tag.lower()}-prev", f"dash-{tag.lower()}"
    admin.post("enrollment", "/api/v1/periods", json=open_period_document(previous))
    current = open_period_document(period)
    current["previous_period"] = previous
    admin.post("enrollment", "/api/v1/periods", json=current)
    rng = random.Random(tag)
    # The previous period: 3 members in unit 1, 2 in unit 3 (other people: one coverage per discharge date).
    _roster(api, "agent1", previous, units["u1"], [person(rng) for _ in range(3)], "450.00", "P-1")
    _roster(api, "agent3", previous, units["u3"], [person(rng) for _ in range(2)], "300.00", "P-3")
    # This period: 6 in unit 1 (paid), 4 in unit 2 (half paid), 5 in unit 3 (paid).
    u1_people = [person(rng) for _ in range(6)]
    u1 = _roster(api, "agent1", period, units["u1"], u1_people, "900.00", "D-1")
    _roster(api, "agent2", period, units["u2"], [person(rng) for _ in range(4)], "300.00", "D-2")
    u3 = _roster(api, "agent3", period, units["u3"], [person(rng) for _ in range(5)], "750.00", "D-3")
    finance, finance2 = api.login("finance", PASSWORD), api.login("finance2", PASSWORD)
    finance.post("enrollment", f"/api/v1/periods/{period}/remittances",
                 json={"office": f"{c}-KM", "amount": "1000.00", "reference": "REM-1",
                       "remitted_at": date.today().isoformat()})
    agent1, agent3 = api.login("agent1", PASSWORD), api.login("agent3", PASSWORD)
    wait_for("claims to learn the coverage", lambda: agent1.get("claims", "/api/v1/coverages",
                                                                params={"member_id": u1[-1]}), 60)
    wait_for("claims to learn the coverage", lambda: agent3.get("claims", "/api/v1/coverages",
                                                                params={"member_id": u3[-1]}), 60)
    world = DashWorld(api=api, period=period, previous=previous, centre=c, office=f"{c}-KM",
                      trap_office=f"{c}-KM0", units=units)
    # One settlement the bureau sent before the claim: that claim is "built from bureau data".
    bureau_setl = f"S-{uuid.uuid4().hex[:12]}"
    api.login("bureau", PASSWORD).post("claims", "/api/v1/settlements", json=[{
        **settlement(bureau_setl, "3000.00"), "certno": u1_people[0]["certno"], "insutype": "310",
        "setl_time": f"{date.today() - timedelta(days=20)} 10:00:00"}])
    plan = {"paid": (u1[0], "3000.00", 20, bureau_setl), "failed": (u1[1], "5000.00", 12, None),
            "awaiting": (u1[2], "2500.00", 6, None), "in_review": (u1[3], "2000.00", 3, None),
            "other_office": (u3[0], "4000.00", 4, None)}
    for key, (member, amount, days_ago, setl) in plan.items():
        agent = agent3 if key == "other_office" else agent1
        claim = agent.post("claims", "/api/v1/claims", json=claim_body(
            member, amount, days_ago, setl or f"S-{uuid.uuid4().hex[:12]}"))
        assert claim["status"] == "in_review", claim
        world.claims[key] = claim["claim_id"]
    for key in ("paid", "failed"):
        assert _approve(world, world.claims[key])["status"] == "approved"
    lines = {key: _instruction(finance, world.claims[key]) for key in ("paid", "failed")}
    batch = finance.post("payments", "/api/v1/payment-batches", json={"format": "bank_csv"})
    finance2.post("payments", f"/api/v1/payment-batches/{batch['batch_id']}/release")
    finance.post("payments", f"/api/v1/payment-batches/{batch['batch_id']}/results", json=[
        {"instruction_id": lines["paid"]["instruction_id"], "status": "paid", "reason": ""},
        {"instruction_id": lines["failed"]["instruction_id"], "status": "failed", "reason": "AC04 账户已销户"}])
    assert _approve(world, world.claims["awaiting"])["status"] == "approved"
    _instruction(finance, world.claims["awaiting"])
    finance.post("payments", "/api/v1/payment-batches", json={"format": "bank_csv"})  # left awaiting release
    wait_for("claims to learn the payment results", lambda: (
        agent1.get("claims", f"/api/v1/claims/{world.claims['paid']}")["status"] == "paid"
        and agent1.get("claims", f"/api/v1/claims/{world.claims['failed']}")["status"] == "payment_failed"), 60)
    # Time passes for one claim: its agency point has let its 第十条 deadline go by ten days. (Test set-up
    # only: nothing at run time reads another service's database.)
    assert dash_stack.pg is not None
    dash_stack.pg.sql("claims", "UPDATE claims SET due_date = current_date - 10 "
                                f"WHERE id = '{world.claims['in_review']}' AND status = 'in_review'")
    # Every service's consumer has caught up before the page is compared with the API.
    time.sleep(0.5)
    return world
