"""once_per: term (seed 002 重大疾病 "三年90元"; issue #16 item 3), with rulebooks/beijing-2014.yaml's critical-illness
plan (term_periods: 3, 50,000 for a listed disease, the amount ASSUMED): one payment in the member's term. A term
is the member's first period under the plan and the next two periods of the scheme; the first period joined
after it begins the next term (services/claims/domain/benefits.term_of). Periods are ordered by the first day of
their coverage."""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI

from deploy.people import certno as make_certno
from shared.events import MemberCovered, PeriodPublished
from shared.rulebook import load_rulebook
from tests.conftest import RULEBOOKS, ServiceClient, apply_event
from tests.service.test_claims import TODAY, Branch, Member, claim_body, decide, get_claim, short


def start_of(k: int) -> date:
    """The first day of cover of period k of four, the last (k = 3) covering today."""
    return TODAY - timedelta(days=180 + 365 * (3 - k))


async def four_periods(app: FastAPI) -> list[str]:
    """Four consecutive yearly Beijing periods of a scheme of this test's own (other tests publish theirs)."""
    scheme = f"beijing-{short()}"
    codes = []
    for k in range(4):
        code = f"bj-{short()}-{k}"
        doc = load_rulebook((RULEBOOKS / "beijing-2014.yaml").read_text(encoding="utf-8")).to_document()
        doc["code"], doc["scheme"] = code, scheme
        start = start_of(k)
        doc["windows"] = {
            "enrolment": {"from": (start - timedelta(days=40)).isoformat(), "to": (start - timedelta(days=10)).isoformat()},
            "coverage": {"from": start.isoformat(), "to": (start + timedelta(days=364)).isoformat()},
            "claims": {"from": start.isoformat(), "to": (TODAY + timedelta(days=365)).isoformat()},
        }
        assert await apply_event(app, PeriodPublished(period=code, rulebook=doc))
        codes.append(code)
    return codes


async def covered(app: FastAPI, periods: list[str], first: int, name: str) -> Member:
    branch = Branch()
    rng = random.Random(uuid.uuid4().int)
    member = Member(member_id=f"M{short()}", certno=make_certno(rng, region="110105", sex="male"),
                    period=periods[-1], branch=branch)
    for k in range(first, 4):
        assert await apply_event(app, MemberCovered(
            member_id=member.member_id, period=periods[k], plans=["critical"], coverage_from=start_of(k),
            coverage_to=start_of(k) + timedelta(days=364), name=name, certno=member.certno, sex="male",
            member_type="in_service", unit=branch.unit, unit_path=branch.path,
            bank_account="6222020200112233445", bank_name="中国工商银行北京朝阳支行", phone="13910012345",
            renewing=k > first, fee=Decimal("90.00") if k == first else Decimal("0.00")))
    return member


async def critical(client: httpx.AsyncClient, member: Member, k: int, icd10: str = "C34.1") -> dict[str, Any]:
    body = claim_body(member, base="80000.00", own_pay="0.00", discharge=start_of(k) + timedelta(days=100))
    body["plan"] = "critical"
    body["diagnosis"] = {"icd10": icd10, "name": "支气管和肺恶性肿瘤"}
    r = await client.post("/api/v1/claims", json=body, headers=member.branch.unit_agent())
    assert r.status_code == 201, r.text
    return await get_claim(client, r.json()["claim_id"], member.token())


async def test_the_lump_sum_is_paid_once_in_a_three_period_term_and_again_in_the_next_term(
        rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("claims")
    periods = await four_periods(app)
    member = await covered(app, periods, 0, "欧阳𫄸")  # first under the plan in period 0: term 0-2, then 3-5
    paid = await critical(client, member, 1)
    assert paid["aid_amount"] == "50000.00" and paid["period"] == periods[1]
    again = await critical(client, member, 2, icd10="I21.0")
    assert again["aid_amount"] == "0.00"
    assert "已给付" in again["explanation"] and all(p in again["explanation"] for p in periods[:3])
    next_term = await critical(client, member, 3)
    assert next_term["aid_amount"] == "50000.00"


async def test_a_term_begins_with_the_members_first_period_and_a_rejected_payment_does_not_use_it(
        rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("claims")
    periods = await four_periods(app)
    member = await covered(app, periods, 1, "张绍衡")  # first in period 1: term 1-3
    first = await critical(client, member, 1)
    assert first["aid_amount"] == "50000.00"
    later = await critical(client, member, 3)
    assert later["aid_amount"] == "0.00"  # the same term
    # The payment in period 1 rejected: the term's next live claim, in period 3, is assessed again and paid.
    r = await decide(client, first["claim_id"], member.branch.agency_reviewer(), "reject", reason="病理报告不符")
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    later = await get_claim(client, later["claim_id"], member.token())
    assert later["aid_amount"] == "50000.00"
    assert [(a["amount"], a["cause"]) for a in later["adjustments"]] == [("50000.00", "late_rejection")]
    assert (await critical(client, member, 2))["aid_amount"] == "0.00"  # paid in period 3 of the same term
