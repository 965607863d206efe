"""Shares in claims (seed 002 "自己是不是可以多买几份", issue #16): a Beijing member who bought 2 shares is paid twice
each plan's aid, 京卡 (every_union_member, no fee) once; re-assessment keeps the shares. rulebooks/beijing-2014.yaml
(amounts ASSUMED there): allowance 50.00 a day after 3 deductible days, accident grades within 10,000 a period,
child accident 600 for disability-10, inpatient 50% over 1,300, 京卡 50% over 1,800; domain/shares.py."""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from deploy.people import certno as make_certno
from services.claims.models import Claim, ClaimAdjustment, Coverage
from shared.events import MemberCovered, PeriodPublished
from tests.conftest import ServiceClient, apply_event
from tests.service.test_claims import TODAY, Branch, Member, claim_body, decide, get_claim, period_document, short
from tests.service.test_claims_beijing_16 import allowance_body

COVER_FROM = TODAY - timedelta(days=200)
PLANS = ["inpatient", "allowance", "accident", "child-accident", "jingka"]


def beijing_document(code: str) -> dict[str, Any]:
    return period_document("beijing-2014.yaml", code, cover_from=COVER_FROM, claims_from=COVER_FROM,
                           cover_to=TODAY + timedelta(days=160),
                           enrolment=(TODAY - timedelta(days=240), TODAY - timedelta(days=210)))


def covered(member: Member, shares: int, version: int) -> MemberCovered:
    return MemberCovered(
        member_id=member.member_id, period=member.period, plans=PLANS, coverage_from=COVER_FROM,
        coverage_to=TODAY + timedelta(days=160), name="刘明", certno=member.certno, sex="male",
        member_type="in_service", unit=member.branch.unit, unit_path=member.branch.path,
        bank_account="6222020200112233445", bank_name="中国工商银行北京西单支行", phone="13601012345",
        renewing=True, fee=Decimal("140.00") * shares, member_version=version, shares=shares)


async def member_with_shares(app: FastAPI, shares: int, period: str | None = None) -> Member:
    code = period or f"bj14-{short()}"
    if period is None:
        assert await apply_event(app, PeriodPublished(period=code, rulebook=beijing_document(code)))
    rng = random.Random(uuid.uuid4().int)
    member = Member(member_id=f"M{short()}", certno=make_certno(rng, region="110102", sex="male",
                                                                born=date(1990, 7, 9)),
                    period=code, branch=Branch())
    assert await apply_event(app, covered(member, shares, version=2))
    return member


async def post(client: httpx.AsyncClient, member: Member, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post("/api/v1/claims", json={"member_id": member.member_id, **body},
                          headers=member.branch.unit_agent())
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_two_shares_pay_twice_each_plan_and_jingka_once(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("claims")
    member = await member_with_shares(app, 2)
    # A replayed older copy with one share changes nothing; the coverage keeps 2 (issue #11 order-proof).
    assert await apply_event(app, covered(member, 1, version=1))
    async with app.state.db.transaction() as session:
        stored = await session.get(Coverage, (member.member_id, member.period))
        assert stored is not None and stored.shares == 2
    aids = {
        "allowance": (await post(client, member, allowance_body(member, 10, 60)))["aid_amount"],  # 7 days x 100.00
        "accident": (await post(client, member, {"plan": "accident", "grade": "disability-5",
                                                 "event_date": (TODAY - timedelta(days=50)).isoformat()}))["aid_amount"],
        "child-accident": (await post(client, member, {
            "plan": "child-accident", "grade": "disability-10", "event_date": (TODAY - timedelta(days=40)).isoformat(),
            "beneficiary": {"name": "刘𬱖", "certno": make_certno(random.Random(7), region="110102", sex="female",
                                                                   born=date(2016, 2, 29))}}))["aid_amount"],
        "inpatient": (await post(client, member, claim_body(member, base="3300.00", med_type="21",
                                                            discharge=TODAY - timedelta(days=30))))["aid_amount"],
    }
    jingka = claim_body(member, base="2800.00", med_type="11", discharge=TODAY - timedelta(days=20))
    jingka["plan"] = "jingka"
    aids["jingka"] = (await post(client, member, jingka))["aid_amount"]
    assert aids == {"allowance": "700.00", "accident": "10000.00", "child-accident": "1200.00",
                    "inpatient": "2000.00", "jingka": "500.00"}
    async with app.state.db.transaction() as session:
        assert (await session.execute(select(func.count()).select_from(Claim).where(
            Claim.member_id == member.member_id))).scalar_one() == 5


async def test_the_doubled_cap_holds_and_a_rejection_reassesses_with_the_shares(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("claims")
    member = await member_with_shares(app, 2)

    def accident(grade: str, days_ago: int) -> dict[str, Any]:
        return {"plan": "accident", "grade": grade, "event_date": (TODAY - timedelta(days=days_ago)).isoformat()}

    first = await post(client, member, accident("disability-5", 90))    # 5,000 x 2
    second = await post(client, member, accident("death", 30))          # 20,000, capped at 20,000 - 10,000
    assert (first["aid_amount"], second["aid_amount"]) == ("10000.00", "10000.00")
    shown = await get_claim(client, first["claim_id"], member.token())
    assert shown["explanation"] == "按 2 份计（每份的金额、比例和限额乘以 2）；五级伤残，给付 10000.00 元；本次补助 10000.00 元"
    third = await post(client, member, accident("disability-10", 10))   # the year's 20,000 is used up
    assert third["aid_amount"] == "0.00"
    r = await decide(client, first["claim_id"], member.branch.agency_reviewer(), "reject", reason="非意外事故")
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    later = await get_claim(client, second["claim_id"], member.token())
    assert later["aid_amount"] == "20000.00"  # death at 2 shares, whole now
    assert [(a["amount"], a["cause"]) for a in later["adjustments"]] == [("10000.00", "late_rejection")]
    assert later["explanation"].startswith("按 2 份计")
    last = await get_claim(client, third["claim_id"], member.token())
    assert last["aid_amount"] == "0.00" and last["adjustments"] == []
    async with app.state.db.transaction() as session:
        assert (await session.execute(select(func.count()).select_from(ClaimAdjustment).where(
            ClaimAdjustment.member_id == member.member_id))).scalar_one() == 1


async def test_a_rulebook_correction_reassesses_banded_aid_with_the_shares(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("claims")
    member = await member_with_shares(app, 3)
    other = await member_with_shares(app, 1, period=member.period)  # one share, the same period
    mine = await post(client, member, claim_body(member, base="3300.00", discharge=TODAY - timedelta(days=30)))
    theirs = await post(client, other, claim_body(other, base="3300.00", discharge=TODAY - timedelta(days=30)))
    assert (mine["aid_amount"], theirs["aid_amount"]) == ("3000.00", "1000.00")
    doc = beijing_document(member.period)
    inpatient = next(p for p in doc["plans"] if p["code"] == "inpatient")
    inpatient["bands"] = [{"over": "1300.00", "rate": "0.60"}]  # corrected: 60% over 1,300
    assert await apply_event(app, PeriodPublished(period=member.period, rulebook=doc, revision=2, reason="比例更正"))
    mine_now = await get_claim(client, mine["claim_id"], member.token())
    theirs_now = await get_claim(client, theirs["claim_id"], other.token())
    assert (mine_now["aid_amount"], theirs_now["aid_amount"]) == ("3600.00", "1200.00")  # 2,000 x 60% x 3 and x 1
    assert [a["amount"] for a in mine_now["adjustments"]] == ["600.00"]
    assert [a["amount"] for a in theirs_now["adjustments"]] == ["200.00"]
