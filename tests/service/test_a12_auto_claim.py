"""Claims with no application (issue #12 item 2, 免申即享): on a plan whose rulebook says ``auto_claim: true``
each accepted bureau record of a member covered by the plan on the discharge date, with a med_type the plan
takes, becomes a claim of that plan (source ``bureau``), assessed on the record and entering review like any
claim; the member is told (``claim.submitted``). One record, one claim, however often it is sent.

No seed of ours pays without an application (seed 004's 乌海 only looks settlements up, "医保云专线 … 实时查询"),
so the plan here is a test-only rulebook: yunnan-18 with ``auto_claim: true``, as Shanghai's 职保会 pays its
per-day benefit (issue #12)."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from deploy.people import certno as make_certno
from deploy.people import name as make_name
from tests.conftest import ServiceClient
from tests.service.test_a12_settlement_source import cover, publish_period, setup
from tests.service.test_claims import TODAY, Branch, Member, bureau, claim_body, get_claim, outbox_events
from tests.service.test_claims_bureau_check import record


async def send(client: httpx.AsyncClient, member: Member, *records: dict[str, Any]) -> dict[str, Any]:
    r = await client.post("/api/v1/settlements", json=list(records), headers=bureau(member.branch))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def claims_of(client: httpx.AsyncClient, member: Member) -> list[dict[str, Any]]:
    r = await client.get("/api/v1/claims", params={"member_id": member.member_id, "limit": 500},
                         headers=member.branch.agency_reviewer())
    assert r.status_code == 200, r.text
    return [await get_claim(client, item["claim_id"], member.branch.agency_reviewer())
            for item in reversed(r.json()["items"])]


def setl() -> str:
    return f"S{uuid.uuid4().hex}"


async def test_each_record_of_a_covered_member_becomes_one_claim_in_review(rolled_back: ServiceClient) -> None:
    app, client, member = await setup(rolled_back, auto_claim=True)
    stay, maternity, outpatient = setl(), setl(), setl()
    answer = await send(client, member, record(member, stay, base="5000.00"),
                        {**record(member, maternity, base="3000.00"), "med_type": "52"},  # 第十二条 生育住院
                        {**record(member, outpatient, base="900.00"), "med_type": "11"})  # 第十二条 门诊
    assert (answer["accepted"], answer["claims_made"]) == (3, 1), answer
    [claim] = await claims_of(client, member)
    assert (claim["setl_id"], claim["source"], claim["status"]) == (stay, "bureau", "in_review")
    assert (claim["aid_amount"], claim["base"]) == ("1260.00", "5000.00")  # (5000 - 800) x 30%, 第七条
    assert claim["settlement_check"] == {"status": "verified", "differences": {}}
    assert claim["unit"] == member.branch.unit and claim["approval"]["current_level"] == "agency_point"
    assert claim["discharge_date"] == (TODAY - timedelta(days=12)).isoformat()
    assert claim["diagnosis"] == {"icd10": "I63.9", "name": "脑梗死"}
    assert claim["clock"]["days_to_submission"] == 12
    [told] = await outbox_events(app, claim["claim_id"], "claim.submitted")  # the member's usual notification
    assert (told["payload"]["member_id"], told["payload"]["aid_amount"]) == (member.member_id, "1260.00")

    # one record, one claim: the same file again, and an application on the same settlement
    again = await send(client, member, record(member, stay, base="5000.00"))
    assert (again["duplicates"], again["claims_made"]) == (1, 0)
    r = await client.post("/api/v1/claims", json=claim_body(member, base="5000.00", setl_id=stay),
                          headers=member.branch.unit_agent())
    assert r.status_code == 201 and r.json()["rejection"]["code"] == "duplicate_settlement", r.text
    assert [c["source"] for c in await claims_of(client, member)].count("bureau") == 1

    # the excluded records stay on the unclaimed list, with the exclusion shown
    r = await client.get("/api/v1/settlements/unclaimed", params={"unit": member.branch.unit},
                         headers=member.branch.agency_reviewer())
    shown = {i["setl_id"]: i["exclusion"] for i in r.json()["items"]}
    assert shown == {maternity: "excluded_maternity", outpatient: "excluded_outpatient"}


async def test_records_of_one_member_in_one_feed_accumulate_their_bases(rolled_back: ServiceClient) -> None:
    """第八条: the second stay is assessed on top of the first, in settlement order."""
    _, client, member = await setup(rolled_back, auto_claim=True)
    first, second = record(member, setl(), base="5000.00"), record(member, setl(), base="8000.00")
    second["setl_time"] = f"{(TODAY - timedelta(days=5)).isoformat()} 09:00:00"
    second["enddate"] = f"{(TODAY - timedelta(days=5)).isoformat()} 08:00:00"
    second["begndate"] = f"{(TODAY - timedelta(days=8)).isoformat()} 08:00:00"
    answer = await send(client, member, second, first)
    assert answer["claims_made"] == 2
    assert [(c["setl_id"], c["aid_amount"]) for c in sorted(await claims_of(client, member),
                                                            key=lambda c: c["discharge_date"])] == [
        (first["setl_id"], "1260.00"), (second["setl_id"], "3600.00")]  # F(13000) - F(5000) = 4860 - 1260


async def test_no_claim_without_auto_claim_or_outside_the_cover(rolled_back: ServiceClient) -> None:
    app: FastAPI
    app, client, member = await setup(rolled_back)  # yunnan-18 as written: auto_claim is off
    answer = await send(client, member, record(member, setl()))
    assert (answer["accepted"], answer["claims_made"]) == (1, 0)
    assert await claims_of(client, member) == []
    # a member of an auto_claim period whose record's stay ended before their cover began
    period = await publish_period(app, auto_claim=True)
    covered = await cover(app, period)
    early = record(covered, setl())
    day = TODAY - timedelta(days=200)
    early.update(setl_time=f"{day.isoformat()} 10:30:00", enddate=f"{day.isoformat()} 10:00:00",
                 begndate=f"{(day - timedelta(days=5)).isoformat()} 08:00:00")
    answer = await send(client, covered, early)
    assert answer["claims_made"] == 0 and await claims_of(client, covered) == []


async def test_another_branchs_bureau_makes_no_claim_for_a_member_it_does_not_cover(
        rolled_back: ServiceClient) -> None:
    _, client, member = await setup(rolled_back, auto_claim=True)
    stranger = Member(member.member_id, member.certno, member.period, type(member.branch)())  # another tree
    r = await client.post("/api/v1/settlements", json=[record(member, setl())], headers=bureau(stranger.branch))
    assert r.status_code == 200 and (r.json()["not_members"], r.json()["claims_made"]) == (1, 0), r.text
    assert await claims_of(client, member) == []


async def test_a_batch_of_records_of_many_members_makes_a_claim_each_in_one_go(rolled_back: ServiceClient) -> None:
    """More claims than one INSERT's parameters allow (32,767 / 30 columns): the batch still makes each once.
    The members' coverages are written straight into claims' copy (as enrollment's member.covered would)."""
    app, client = await rolled_back("claims")
    period = await publish_period(app, auto_claim=True)
    branch = Branch()
    rng = random.Random(1207)
    members = list({m.certno: m for m in (
        Member(f"M{uuid.uuid4().hex[:12]}", make_certno(rng), period, branch) for _ in range(1200))}.values())
    async with app.state.db.transaction() as session:
        raw = (await (await session.connection()).get_raw_connection()).driver_connection
        assert raw is not None
        await raw.copy_records_to_table("coverages", records=[
            (m.member_id, period, ["inpatient"], TODAY - timedelta(days=180), TODAY + timedelta(days=180), m.certno,
             make_name(rng), "male", branch.unit, branch.path) for m in members],
            columns=("member_id", "period", "plans", "coverage_from", "coverage_to", "certno", "name", "sex", "unit",
                     "unit_path"))
    records = [record(m, setl(), base="5000.00") for m in members]
    answer = await send(client, members[0], *records)
    assert (answer["accepted"], answer["claims_made"]) == (len(members), len(members))
    again = await send(client, members[0], *records)
    assert (again["duplicates"], again["claims_made"]) == (len(members), 0)
    async with app.state.db.transaction() as session:  # the test's rows alone: every claim is one of the batch
        made = (await session.execute(text(
            "SELECT count(*), count(*) FILTER (WHERE period = :p AND source = 'bureau'), count(DISTINCT setl_id), "
            "min(aid_amount), max(aid_amount) FROM claims"), {"p": period})).one()
        steps = (await session.execute(text("SELECT count(*) FROM claim_steps"))).scalar_one()
    assert tuple(made) == (len(members), len(members), len(members), Decimal("1260.00"), Decimal("1260.00"))
    assert steps == len(members)
    assert len(await outbox_events(app, str((await claims_of(client, members[0]))[0]["claim_id"]),
                                   "claim.submitted")) == 1
