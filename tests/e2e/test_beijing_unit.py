"""A Beijing unit end to end through the real stack (seed 002 暖·互助, rulebooks/beijing-2014.yaml, issue #16):
a roster with plans per row, several shares ("多买几份") and the unit's payers ("费用交纳有5种方式"), a man on the
women's plan refused by row first; the fees paid; then an allowance (per_day), an accident (graded), a child's
accident (graded, the child the beneficiary) and a 京卡 outpatient claim (every_union_member, no fee), each
approved through its tiers to a payment instruction of the exact amount, the shares applied (京卡 not).

Amounts from the rulebook (ASSUMED there): allowance 50.00 a day after 3 deductible days; accident 五级伤残
5,000; child 十级伤残 600; inpatient 50% over 1,300; 京卡 50% over 1,800. Tiers: agency point up to 3,000,
office up to 10,000, then the centre."""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from deploy.client import ApiError, wait_for
from deploy.localstack import Stack
from deploy.people import certno, person
from shared.rulebook import RULEBOOKS_DIR, load_rulebook
from tests.e2e.conftest import World
from tests.e2e.test_claim_journey import approve_all_levels, instructions

pytestmark = pytest.mark.e2e
TODAY = date.today()


def beijing_period(code: str) -> dict[str, Any]:
    """beijing-2014 with windows around today (enrolment open, cover from 60 days ago)."""
    document = load_rulebook((RULEBOOKS_DIR / "beijing-2014.yaml").read_bytes()).to_document()
    document.update(code=code, windows={
        "enrolment": {"from": (TODAY - timedelta(days=5)).isoformat(), "to": (TODAY + timedelta(days=30)).isoformat()},
        "coverage": {"from": (TODAY - timedelta(days=60)).isoformat(), "to": (TODAY + timedelta(days=300)).isoformat()},
        "claims": {"from": (TODAY - timedelta(days=60)).isoformat(), "to": (TODAY + timedelta(days=500)).isoformat()},
    })
    return document


def worker(rng: random.Random, sex: str) -> dict[str, Any]:
    while True:
        p = person(rng)
        if p["sex"] == sex:
            return p


def settlement(med_type: str, psn_part_amt: str) -> dict[str, str]:
    return {"setl_id": f"S-BJ-{uuid.uuid4().hex[:12]}", "med_type": med_type, "medfee_sumamt": "20000.00",
            "fund_pay_sumamt": f"{Decimal('20000.00') - Decimal(psn_part_amt):.2f}", "psn_part_amt": psn_part_amt,
            "fulamt_ownpay_amt": "0.00"}


def test_a_beijing_unit_roster_with_shares_and_payers_then_four_claims_paid_times_the_shares(
        stack: Stack, world: World) -> None:
    rng = random.Random(uuid.uuid4().int)
    period = f"bj-{uuid.uuid4().hex[:6]}"
    world.admin.post("enrollment", "/api/v1/periods", json=beijing_period(period))
    agent = world.login("agent")
    liu, zang, ouyang, chen = worker(rng, "male"), worker(rng, "female"), worker(rng, "male"), worker(rng, "female")
    rows = [
        {**liu, "plans": ["inpatient", "allowance", "accident", "child-accident"], "shares": 2},  # 120 x 2
        {**zang, "plans": ["women", "critical"]},  # 20 + 90 ("三年90元")
        {**ouyang, "plans": ["women"]},  # a man on the women's plan: refused by row
        {**chen, "plans": ["allowance"], "shares": 3},  # 30 x 3
    ]
    # Four staff, below 30: all four must join (100%); the unit's payers split each fee 5:3:2.
    body = {"staff": {"total": 4, "in_service": 4, "basic_insured_in_service": 4}, "members": rows,
            "payers": {"employer": "0.5", "union": "0.3", "member": "0.2"}}
    url = f"/api/v1/periods/{period}/units/{world.unit}/rosters"
    with pytest.raises(ApiError) as refused:
        agent.post("enrollment", url, json=body)
    assert refused.value.status == 422 and refused.value.body["code"] == "roster_rejected"
    assert [(e["loc"], e["code"]) for e in refused.value.body["errors"]] == [(["members", 2, "plans"],
                                                                              "plan_sex_mismatch")]
    assert agent.get("enrollment", "/api/v1/members", params={"certno": liu["certno"]}) == []  # nothing stored
    rows[2] = {**ouyang}  # no premium plan: 京卡 only, fee 0.00
    roster = agent.post("enrollment", url, json=body)
    assert roster["status"] == "awaiting_payment" and roster["fee_total"] == "440.00"  # 240 + 110 + 0 + 90
    assert roster["fee_split"] == {"employer": "220.00", "union": "132.00", "member": "88.00"}
    paid = agent.post("enrollment", f"/api/v1/rosters/{roster['roster_id']}/payments",
                      json={"amount": "440.00", "reference": "BJ-E2E-1", "paid_at": TODAY.isoformat()})
    assert paid["status"] == "active"
    [liu_id] = [m["member_id"] for m in agent.get("enrollment", "/api/v1/members", params={"certno": liu["certno"]})]
    wait_for("claims to learn the Beijing coverage", lambda: [
        c for c in agent.get("claims", "/api/v1/coverages", params={"member_id": liu_id}) if c["period"] == period], 60)

    discharge = TODAY - timedelta(days=2)
    stay = {"admission_date": (discharge - timedelta(days=10)).isoformat(), "discharge_date": discharge.isoformat(),
            "diagnosis": {"icd10": "S72.0", "name": "股骨颈骨折"}}
    claims = {
        # 10 days - 3 deductible = 7 days x 50.00 x 2 shares
        "allowance": {"member_id": liu_id, "plan": "allowance", **stay, "settlement": settlement("21", "6000.00")},
        # 五级伤残 5,000 x 2 shares
        "accident": {"member_id": liu_id, "plan": "accident", "grade": "disability-5",
                     "event_date": (TODAY - timedelta(days=12)).isoformat()},
        # the son, 9 on the day: 十级伤残 600 x 2 shares
        "child-accident": {"member_id": liu_id, "plan": "child-accident", "grade": "disability-10",
                           "event_date": (TODAY - timedelta(days=20)).isoformat(),
                           "beneficiary": {"name": "刘𬱖", "certno": certno(rng, region="110102", sex="male",
                                                                             born=TODAY - timedelta(days=9 * 366))}},
        # an outpatient visit: (2,800 - 1,800) x 50%, whatever the shares
        "jingka": {"member_id": liu_id, "plan": "jingka", "admission_date": (TODAY - timedelta(days=8)).isoformat(),
                   "discharge_date": (TODAY - timedelta(days=8)).isoformat(),
                   "diagnosis": {"icd10": "J06.9", "name": "急性上呼吸道感染"}, "settlement": settlement("11", "2800.00")},
    }
    expected = {"allowance": ("700.00", ["agency_point"]), "accident": ("10000.00", ["agency_point", "office"]),
                "child-accident": ("1200.00", ["agency_point"]), "jingka": ("500.00", ["agency_point"])}
    ids = {}
    for plan, claim_body in claims.items():
        claim = agent.post("claims", "/api/v1/claims", json=claim_body)
        assert (claim["status"], claim["aid_amount"]) == ("in_review", expected[plan][0]), (plan, claim)
        detail = approve_all_levels(world, claim["claim_id"])
        assert detail["status"] == "approved", (plan, detail)
        assert [s["level"] for s in detail["approval"]["steps"] if s["decision"] == "approve"] == expected[plan][1]
        ids[plan] = claim["claim_id"]
    paid_out = {plan: wait_for(f"the {plan} instruction", lambda i=claim_id: instructions(world, i))  # type: ignore[misc]
                for plan, claim_id in ids.items()}
    assert {plan: [(i["amount"], i["status"]) for i in found] for plan, found in paid_out.items()} == {
        plan: [(amount, "pending")] for plan, (amount, _) in expected.items()}
    assert {found[0]["payee_name"] for found in paid_out.values()} == {liu["name"]}
