"""Beijing 暖·互助 (seed 002) per-day allowance claimed through intake (issue #16), with rulebooks/beijing-2014.yaml:
50.00 a day after 3 deductible days, at most 180 paid days a period (the rulebook's ASSUMED figures)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from fastapi import FastAPI

from shared.events import MemberCovered
from tests.conftest import ServiceClient, apply_event
from tests.service.test_claims import TODAY, Member, claim_body, cover, decide, get_claim, publish_rulebook


async def beijing_member(app: FastAPI) -> Member:
    code = await publish_rulebook(app, "beijing-2014.yaml", "bj14", cover_from=TODAY - timedelta(days=380),
                                  enrolment=(TODAY - timedelta(days=420), TODAY - timedelta(days=400)))
    member = await cover(app, code)
    assert await apply_event(app, MemberCovered(
        member_id=member.member_id, period=code, plans=["allowance"],
        coverage_from=TODAY - timedelta(days=380), coverage_to=TODAY + timedelta(days=180), name="欧阳𠮷",
        certno=member.certno, sex="male", member_type="in_service", unit=member.branch.unit,
        unit_path=member.branch.path, bank_account="6222020200112233445", bank_name="工行", phone="13812345678",
        renewing=True, fee=Decimal("30.00")))
    return member


def allowance_body(member: Member, days: int, discharge_ago: int) -> dict[str, object]:
    discharge = TODAY - timedelta(days=discharge_ago)
    body = claim_body(member, discharge=discharge)
    body["plan"] = "allowance"
    body["admission_date"] = (discharge - timedelta(days=days)).isoformat()
    return body


async def test_a_per_day_allowance_pays_the_rate_for_days_past_the_deductible_until_the_period_cap(
        rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("claims")
    member = await beijing_member(app)
    r = await client.post("/api/v1/claims", json=allowance_body(member, 10, 300), headers=member.branch.unit_agent())
    assert r.status_code == 201, r.text
    claim = await get_claim(client, r.json()["claim_id"], member.token())
    assert claim["status"] == "in_review" and claim["aid_amount"] == "350.00"  # (10 - 3) x 50.00
    # A long second stay: 200 days - 3 = 197 counted, but only 180 - 7 = 173 paid days remain in the period.
    r = await client.post("/api/v1/claims", json=allowance_body(member, 200, 20), headers=member.branch.unit_agent())
    assert r.status_code == 201, r.text
    assert r.json()["aid_amount"] == "8650.00"  # 173 x 50.00
    # The period's 180 paid days are used up: a third stay pays nothing; an outpatient settlement is not this
    # plan's (第十二条(四), med_types).
    r = await client.post("/api/v1/claims", json=allowance_body(member, 10, 15), headers=member.branch.unit_agent())
    assert r.status_code == 201 and r.json()["aid_amount"] == "0.00"
    body = allowance_body(member, 5, 12)
    body["settlement"]["med_type"] = "11"  # type: ignore[index]
    r = await client.post("/api/v1/claims", json=body, headers=member.branch.unit_agent())
    assert r.json()["rejection"]["code"] == "med_type_not_covered"


async def test_rejecting_an_earlier_allowance_stay_frees_its_paid_days_for_the_later_stay(
        rolled_back: ServiceClient) -> None:
    app, client = await rolled_back("claims")
    member = await beijing_member(app)
    first = await client.post("/api/v1/claims", json=allowance_body(member, 10, 300), headers=member.branch.unit_agent())
    second = await client.post("/api/v1/claims", json=allowance_body(member, 200, 20),
                               headers=member.branch.unit_agent())
    assert (first.json()["aid_amount"], second.json()["aid_amount"]) == ("350.00", "8650.00")
    r = await decide(client, first.json()["claim_id"], member.branch.agency_reviewer(), "reject", reason="材料不实")
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    later = await get_claim(client, second.json()["claim_id"], member.token())
    # Alone, the 197 counted days are paid up to the period's 180: 9000.00, a top-up of 350.00.
    assert later["aid_amount"] == "9000.00"
    [adjustment] = later["adjustments"]
    assert (adjustment["amount"], adjustment["cause"]) == ("350.00", "late_rejection")
