"""The plan's settlement_source (seed 003 第九条 "凭医保部门提供的住院结算数据"; seed 001: Yuncheng's uninsured
workers claim on hospital receipts): what happens to a claim whose settlement the bureau has not sent
(``unverified``). Real PostgreSQL, the claims service in-process; bureau records through the real feed."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI

from deploy.people import certno as make_certno
from deploy.people import luhn_account
from deploy.people import name as make_name
from shared.events import MemberCovered, PeriodPublished
from tests.conftest import ServiceClient, apply_event
from tests.service.test_claims import TODAY, Branch, Member, claim_body, decide, get_claim, period_document, short
from tests.service.test_claims_bureau_check import feed, record


async def publish_period(app: FastAPI, **plan: Any) -> str:
    """yunnan-18 under a fresh code around today, its inpatient plan changed by ``plan`` (settlement_source,
    auto_claim): a test-only rulebook."""
    code = f"yn18-{short()}"
    doc = period_document("yunnan-18.yaml", code)
    doc["plans"][0].update(plan)
    assert await apply_event(app, PeriodPublished(period=code, rulebook=doc))
    return code


async def cover(app: FastAPI, period: str, branch: Branch | None = None, *, seed: int | None = None) -> Member:
    """A member covered from 180 days ago to 180 days ahead, with an ID number and name as people have them."""
    branch = branch or Branch()
    rng = random.Random(seed if seed is not None else uuid.uuid4().int)
    member = Member(member_id=f"M{short()}", certno=make_certno(rng), period=period, branch=branch)
    assert await apply_event(app, MemberCovered(
        member_id=member.member_id, period=period, plans=["inpatient"],
        coverage_from=TODAY - timedelta(days=180), coverage_to=TODAY + timedelta(days=180),
        name=make_name(rng), certno=member.certno, sex="female", member_type="in_service", unit=branch.unit,
        unit_path=branch.path, bank_account=luhn_account(rng), bank_name="富滇银行昆明分行",
        phone="13987106423", renewing=True, fee=Decimal("120.00")))
    return member


async def setup(rolled_back: ServiceClient, **plan: Any) -> tuple[FastAPI, httpx.AsyncClient, Member]:
    app, client = await rolled_back("claims")
    return app, client, await cover(app, await publish_period(app, **plan))


async def submit_unverified(client: httpx.AsyncClient, member: Member, base: str = "5000.00") -> dict[str, Any]:
    r = await client.post("/api/v1/claims", json=claim_body(member, base=base), headers=member.branch.unit_agent())
    assert r.status_code == 201, r.text
    assert r.json()["settlement_check"]["status"] == "unverified"
    return r.json()


async def queue_item(client: httpx.AsyncClient, member: Member, claim_id: str) -> dict[str, Any]:
    r = await client.get("/api/v1/review-queue", headers=member.branch.agency_reviewer())
    assert r.status_code == 200, r.text
    [item] = r.json()  # the branch's queue holds this claim alone
    assert item["claim_id"] == claim_id
    return dict(item)


async def test_bureau_required_holds_final_approval_of_an_unverified_claim_until_the_record_arrives(
        rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back, settlement_source="bureau_required")
    claim = await submit_unverified(client, member)  # aid 1,260: final at the agency point (第十条)
    item = await queue_item(client, member, claim["claim_id"])
    assert item["settlement_check"]["status"] == "unverified" and "不能终审批准" in item["settlement_warning"]
    r = await decide(client, claim["claim_id"], member.branch.agency_reviewer())
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "settlement_unverified" and "第九条" in r.json()["detail"]
    assert r.json()["title"] and r.json()["status"] == 409
    after = await get_claim(client, claim["claim_id"], member.branch.agency_reviewer())
    assert (after["status"], after["approval"]["current_level"]) == ("in_review", "agency_point")
    assert [s["decision"] for s in after["approval"]["steps"]] == ["submit"]  # nothing half-stored
    # the record arriving later releases it: tests/service/test_a12_recheck.py


async def test_bureau_preferred_approves_an_unverified_claim_and_warns_the_reviewer(
        rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back, settlement_source="bureau_preferred")
    claim = await submit_unverified(client, member)
    item = await queue_item(client, member, claim["claim_id"])
    assert "医院收据" in item["settlement_warning"]
    r = await decide(client, claim["claim_id"], member.branch.agency_reviewer())
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text


async def test_paper_allowed_approves_an_unverified_claim_without_a_warning(rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back, settlement_source="paper_allowed")
    claim = await submit_unverified(client, member)
    assert (await queue_item(client, member, claim["claim_id"]))["settlement_warning"] is None
    r = await decide(client, claim["claim_id"], member.branch.agency_reviewer())
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text


async def test_bureau_required_approves_a_claim_the_bureau_sent_before_it(rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back, settlement_source="bureau_required")
    setl_id = f"S{uuid.uuid4().hex}"
    await feed(client, member, record(member, setl_id, base="5000.00"))
    r = await client.post("/api/v1/claims", json={"member_id": member.member_id, "plan": "inpatient",
                                                  "setl_id": setl_id}, headers=member.branch.unit_agent())
    assert r.status_code == 201 and r.json()["settlement_check"]["status"] == "verified", r.text
    assert (await queue_item(client, member, r.json()["claim_id"]))["settlement_warning"] is None
    approved = await decide(client, r.json()["claim_id"], member.branch.agency_reviewer())
    assert approved.status_code == 200 and approved.json()["status"] == "approved", approved.text
