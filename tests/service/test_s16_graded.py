"""Graded plans claimable (seed 002, Beijing 暖·互助 意外伤害 and 子女意外伤害; issue #16 item 2), with
rulebooks/beijing-2014.yaml: accident grades death 10,000 / disability-1 10,000 / disability-5 5,000 /
disability-10 1,000 within 10,000 a member and period; the child's plan 6,653 / 6,653 / 600 within 6,653, for a
child under 18 on the day of the accident (the rulebook's ASSUMED amounts, its cap sums from the source).

A graded claim names `grade` and `event_date` and no settlement; the child's plan names the child
(`beneficiary: {name, certno}`), whose birth date comes from the ID number."""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI

from deploy.people import certno as make_certno
from shared.events import MemberCovered
from tests.conftest import ServiceClient, apply_event
from tests.service.test_claims import TODAY, Branch, Member, claim_body, decide, get_claim, publish_rulebook, short

COVER_FROM = TODAY - timedelta(days=200)


async def beijing_member(app: FastAPI) -> Member:
    code = await publish_rulebook(app, "beijing-2014.yaml", "bj14", cover_from=COVER_FROM, claims_from=COVER_FROM,
                                  cover_to=TODAY + timedelta(days=160),
                                  enrolment=(TODAY - timedelta(days=240), TODAY - timedelta(days=210)))
    branch = Branch()
    rng = random.Random(uuid.uuid4().int)
    member = Member(member_id=f"M{short()}", certno=make_certno(rng, region="110102", sex="female",
                                                                born=date(1984, 3, 17)),
                    period=code, branch=branch)
    assert await apply_event(app, MemberCovered(
        member_id=member.member_id, period=code, plans=["accident", "child-accident", "jingka"],
        coverage_from=COVER_FROM, coverage_to=TODAY + timedelta(days=160), name="臧会兰", certno=member.certno,
        sex="female", member_type="in_service", unit=branch.unit, unit_path=branch.path,
        bank_account="6222020200112233445", bank_name="中国工商银行北京西单支行", phone="13601012345",
        renewing=True, fee=Decimal("40.00")))
    return member


def child_certno(born: date) -> str:
    return make_certno(random.Random(uuid.uuid4().int), region="110102", sex="male", born=born)


async def claim(client: httpx.AsyncClient, member: Member, plan: str, grade: str, days_ago: int,
                beneficiary: dict[str, str] | None = None) -> httpx.Response:
    body: dict[str, Any] = {"member_id": member.member_id, "plan": plan, "grade": grade,
                            "event_date": (TODAY - timedelta(days=days_ago)).isoformat()}
    if beneficiary is not None:
        body["beneficiary"] = beneficiary
    return await client.post("/api/v1/claims", json=body, headers=member.branch.unit_agent())


def field_of(r: httpx.Response) -> list[Any]:
    return [e["loc"] for e in r.json()["errors"]]


async def test_an_accident_pays_its_grade_within_the_yearly_cap_per_member(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("claims")
    member = await beijing_member(app)
    r = await claim(client, member, "accident", "disability-5", 90)
    assert r.status_code == 201, r.text
    first = await get_claim(client, r.json()["claim_id"], member.token())
    assert first["status"] == "in_review" and first["aid_amount"] == "5000.00"
    assert first["diagnosis"]["grade"] == "disability-5" and first["diagnosis"]["name"] == "五级伤残"
    assert first["setl_id"] == "" and first["discharge_date"] == (TODAY - timedelta(days=90)).isoformat()
    assert first["approval"]["final_level"] == "office"  # 5,000: beijing-2014's office tier (up to 10,000)
    # A second accident in the period: death is 10,000, but only 5,000 of the year's 10,000 is left.
    r = await claim(client, member, "accident", "death", 30)
    second = r.json()
    assert r.status_code == 201 and second["aid_amount"] == "5000.00"
    r = await claim(client, member, "accident", "disability-10", 10)
    assert r.json()["aid_amount"] == "0.00"
    # The first claim rejected: its 5,000 leaves the period, the second claim's death grade is paid whole.
    r = await decide(client, first["claim_id"], member.branch.agency_reviewer(), "reject", reason="非意外事故")
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    later = await get_claim(client, second["claim_id"], member.token())
    assert later["aid_amount"] == "10000.00"
    assert [(a["amount"], a["cause"]) for a in later["adjustments"]] == [("5000.00", "late_rejection")]


async def test_a_grade_the_plan_does_not_have_or_a_missing_event_date_is_422_naming_the_field(
        rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("claims")
    member = await beijing_member(app)
    r = await claim(client, member, "accident", "disability-3", 30)
    assert r.status_code == 422 and r.json()["code"] == "grade_unknown"
    assert field_of(r) == [["body", "grade"]]
    r = await client.post("/api/v1/claims", json={"member_id": member.member_id, "plan": "accident",
                                                  "grade": "death"}, headers=member.branch.unit_agent())
    assert r.status_code == 422 and field_of(r) == [["body", "event_date"]]
    # A settlement is not how a graded plan is claimed.
    body = claim_body(member, discharge=TODAY - timedelta(days=20), med_type="21")
    body["plan"] = "accident"
    r = await client.post("/api/v1/claims", json=body, headers=member.branch.unit_agent())
    assert r.status_code == 422 and r.json()["code"] == "grade_required"


async def test_an_event_outside_the_members_cover_is_refused_not_covered(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("claims")
    member = await beijing_member(app)
    r = await claim(client, member, "accident", "death", 215)  # 15 days before the cover began
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "rejected" and r.json()["rejection"]["code"] == "not_covered"
    r = await claim(client, member, "accident", "death", 200)  # its first day
    assert r.json()["status"] == "in_review" and r.json()["aid_amount"] == "10000.00"


async def test_a_childs_accident_pays_for_a_child_under_18_named_in_the_claim(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("claims")
    member = await beijing_member(app)
    child = {"name": "欧阳𬌗", "certno": child_certno(date(2015, 6, 1))}
    r = await claim(client, member, "child-accident", "disability-10", 40, beneficiary=child)
    assert r.status_code == 201, r.text
    stored = await get_claim(client, r.json()["claim_id"], member.token())
    assert stored["aid_amount"] == "600.00"
    assert stored["diagnosis"]["beneficiary"]["name"] == "欧阳𬌗"
    assert stored["diagnosis"]["beneficiary"]["certno"] == child["certno"][:6] + "********" + child["certno"][-4:]
    assert stored["diagnosis"]["beneficiary"]["birth_date"] == "2015-06-01"
    # Then death of the same plan: 6,653, of which 6,053 is left in the year.
    r = await claim(client, member, "child-accident", "death", 20, beneficiary=child)
    assert r.json()["aid_amount"] == "6053.00"


async def test_the_child_must_be_under_18_on_the_event_date_and_named_with_a_valid_id_number(
        rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("claims")
    member = await beijing_member(app)
    event = TODAY - timedelta(days=30)
    eighteenth = date(event.year - 18, event.month, 28 if (event.month, event.day) == (2, 29) else event.day)
    # 18 on the day of the accident: no longer a child of the plan.
    grown = {"name": "王𠮷", "certno": child_certno(eighteenth)}
    r = await claim(client, member, "child-accident", "death", 30, beneficiary=grown)
    assert r.status_code == 422 and r.json()["code"] == "beneficiary_not_minor"
    assert field_of(r) == [["body", "beneficiary", "certno"]]
    # One day younger: still 17 on that day.
    young = {"name": "王𠮷", "certno": child_certno(eighteenth + timedelta(days=1))}
    r = await claim(client, member, "child-accident", "disability-10", 30, beneficiary=young)
    assert r.status_code == 201 and r.json()["aid_amount"] == "600.00"
    # A wrong check digit; no child named; a child named for the member's own plan.
    number = child_certno(date(2016, 2, 29))
    wrong = number[:17] + ("0" if number[17] != "0" else "1")
    r = await claim(client, member, "child-accident", "death", 30, beneficiary={"name": "李娜", "certno": wrong})
    assert r.status_code == 422 and r.json()["code"] == "invalid_certno"
    assert field_of(r) == [["body", "beneficiary", "certno"]]
    r = await claim(client, member, "child-accident", "death", 30)
    assert r.status_code == 422 and r.json()["code"] == "beneficiary_required"
    r = await claim(client, member, "accident", "death", 30, beneficiary={"name": "李娜", "certno": number})
    assert r.status_code == 422 and r.json()["code"] == "beneficiary_not_allowed"
    # A child born after the accident.
    unborn = {"name": "李娜", "certno": child_certno(event + timedelta(days=3))}
    r = await claim(client, member, "child-accident", "death", 30, beneficiary=unborn)
    assert r.status_code == 422 and r.json()["code"] == "beneficiary_not_born"


async def test_fields_of_one_kind_of_claim_are_refused_on_another(rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("claims")
    member = await beijing_member(app)
    with_settlement = claim_body(member, discharge=TODAY - timedelta(days=20))
    for extra in ({"grade": "death"}, {"period": member.period}, {"other_assistance": "10.00"}):
        r = await client.post("/api/v1/claims", json={**with_settlement, **extra}, headers=member.branch.unit_agent())
        assert r.status_code == 422, (extra, r.text)
    r = await client.post("/api/v1/claims", json={"member_id": member.member_id, "plan": "accident", "grade": "death",
                                                  "event_date": (TODAY - timedelta(days=5)).isoformat(),
                                                  "other_assistance": "10.00"}, headers=member.branch.unit_agent())
    assert r.status_code == 422
    r = await client.post("/api/v1/claims", json={"member_id": member.member_id, "plan": "second-aid",
                                                  "period": member.period, "grade": "death"},
                          headers=member.branch.unit_agent())
    assert r.status_code == 422
